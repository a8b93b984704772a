"""The tools: list_accounts, query_account, query_accounts (published in ``tools.json``).

A query runs the way the agent runs one, with the same parts:

* a **plan** goes through ``graph.worker.run_account``, the agent's account worker: every
  query × region of the account as ONE ``aws___run_script`` built from catalogue reads the
  guard has checked against the catalogue's allow-list, rows filtered in one place, status
  and message as the agent's answers have them;
* **reads** go through ``AccountSessions.run_reads`` (behind the same ``ReadCache``) under one
  of the guard's two policies: reads that are all the catalogue's own operations (what the
  agent's Gateway client sends for a plan) under the catalogue policy, as on the agent's
  direct path: only the catalogue's allow-list, and the script deletes every secret member
  (Lambda environment variables...) from the answers; any other reads under the model
  policy: read-only operations whose answers carry no secret at all. Either way no write and
  no secret. The reads are checked once before any account is touched: a refused read (a
  write, a secret) fails the call with the guard's message and nothing is sent anywhere,
  not even AssumeRole.

Accounts are the registry's, as the caller may see them (``caller.py``): references resolve
in the caller's part of the registry, so "all" means all of theirs; a reference to an account
hidden from them is refused saying which groups would open it, as the agent's denials do.
Several accounts run IN PARALLEL, each in a slot of the process-wide ``AccountSlots``
(``OPSAGENT_MAX_ACCOUNTS_IN_FLIGHT``, the agent's bound), each within its own deadline
(``OPSAGENT_ACCOUNT_TIMEOUT`` from when it gets its slot) and within the time the Lambda
invocation has left. One account failing never fails another: each has its status
(ok | denied | error | timeout), message and elapsed time.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from opsagent.access import AccessError, Read, ReadOnlyViolation, ReadResult, check_read, is_denied
from opsagent.bridge.args import (
    ArgumentError,
    ListAccountsArgs,
    QueryAccountArgs,
    QueryAccountsArgs,
    parse,
)
from opsagent.bridge.caller import Caller
from opsagent.bridge.service import BridgeService
from opsagent.graph.catalogue import CATALOGUE_READS, shown_details
from opsagent.graph.models import (
    AccountResult,
    AccountStatus,
    Plan,
    Resource,
    ResourceQuery,
)
from opsagent.graph.worker import run_account
from opsagent.registry import Account, Registry, UnknownAccountError

# How many failed reads an account's message names before "and N more".
_SHOWN_FAILURES = 3


class ToolError(Exception):
    """The call as a whole cannot be answered: ``code`` (bad_arguments, unknown_account,
    forbidden, read_only…) and a message saying why and what would work."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Call:
    """One invocation: what it may use, who asks, and when its time is up."""

    service: BridgeService
    caller: Caller
    # time.monotonic() by which the answer must be back (the Lambda's remaining time less a
    # margin); None: no limit beyond each account's own deadline.
    end: float | None = None

    def left(self) -> float | None:
        return None if self.end is None else self.end - time.monotonic()


Work = Callable[[Account, float], Awaitable[dict[str, Any]]]
Tool = Callable[[Call, Any], Awaitable[dict[str, Any]]]


# ----- the tools -----


async def list_accounts(call: Call, event: Any) -> dict[str, Any]:
    parse(ListAccountsArgs, event)
    registry = await call.service.registry()
    visible = call.caller.visible_accounts(registry)
    view = registry if visible is None else registry.visible_part(visible)
    return {
        "accounts": [
            {
                "account_id": account.id,
                "name": account.name,
                "alias": account.alias,
                "environment": account.environment,
                "role": "central" if account.is_central else "workload",
                "regions": account.regions,
            }
            for account in view.all_accounts
        ]
    }


async def query_account(call: Call, event: Any) -> dict[str, Any]:
    args = parse(QueryAccountArgs, event)
    registry = await call.service.registry()
    accounts = resolve(registry, call.caller, [args.account])
    if len(accounts) > 1:
        names = ", ".join(f"{a.name} ({a.id})" for a in accounts)
        raise ToolError(
            "bad_arguments",
            f"{args.account!r} names {len(accounts)} accounts ({names}): query_account takes "
            "one; use query_accounts for several",
        )
    return await _query(call, accounts, args)


async def query_accounts(call: Call, event: Any) -> dict[str, Any]:
    args = parse(QueryAccountsArgs, event)
    registry = await call.service.registry()
    return await _query(call, resolve(registry, call.caller, args.accounts), args)


TOOLS: dict[str, Tool] = {
    "list_accounts": list_accounts,
    "query_account": query_account,
    "query_accounts": query_accounts,
}


# ----- accounts -----


def resolve(registry: Registry, caller: Caller, references: Sequence[str]) -> list[Account]:
    """The accounts the references mean, in the caller's part of the registry, in order and
    without repeats. ToolError ``forbidden`` for accounts hidden from the caller, naming the
    groups that would open them; ``unknown_account`` for references nobody knows."""
    visible = caller.visible_accounts(registry)
    if visible is not None and not visible:
        why = (
            f"none of your groups ({', '.join(caller.groups)}) opens one"
            if caller.groups
            else "your token names no groups"
        )
        raise ToolError("forbidden", f"You may not query any account: {why}.")
    view = registry if visible is None else registry.visible_part(visible)
    found: dict[str, Account] = {}
    hidden: list[str] = []
    unknown: list[str] = []
    for reference in references:
        try:
            accounts = view.resolve(reference)
        except UnknownAccountError:
            others: list[str] = []
            if visible is not None:
                try:
                    others = [a.id for a in registry.resolve(reference) if a.id not in visible]
                except UnknownAccountError:
                    pass
            if others:
                hidden.extend(a for a in others if a not in hidden)
            else:
                unknown.append(reference)
            continue
        for account in accounts:
            found.setdefault(account.id, account)
    if hidden:
        raise ToolError("forbidden", _denial(registry, caller, hidden))
    if unknown:
        said = ", ".join(repr(ref) for ref in unknown)
        raise ToolError(
            "unknown_account",
            f"Unknown account {said}. Known accounts: {', '.join(view.known_names())}.",
        )
    if not found:
        raise ToolError("unknown_account", "The references name no account.")
    return list(found.values())


def _denial(registry: Registry, caller: Caller, hidden: list[str]) -> str:
    """As the agent says it (graph/graph.py): which accounts, and which groups would open them."""
    names, openers = [], []
    for account_id in hidden:
        account = registry.get(account_id)
        names.append(f"{account.name} ({account.id})")
        would = registry.groups_including(account_id)
        openers.append(f"{account.name}: {', '.join(would) if would else 'no group yet'}")
    it = "it" if len(hidden) == 1 else "them"
    why = (
        f"your groups ({', '.join(caller.groups)}) do not include {it}"
        if caller.groups
        else "your token names no groups"
    )
    return f"You may not query {', '.join(names)}: {why}. Groups that may: {'; '.join(openers)}."


# ----- one query over its accounts -----


async def _query(
    call: Call, accounts: list[Account], args: QueryAccountArgs | QueryAccountsArgs
) -> dict[str, Any]:
    asker = call.caller.asker
    run = call.service.run_reads
    work: Work
    if args.plan is not None:
        plan_arg = args.plan
        queries = [q.query() for q in plan_arg.queries]

        async def work(account: Account, deadline_s: float) -> dict[str, Any]:
            plan = Plan(accounts=[account.id], regions=plan_arg.regions, queries=queries)
            result = await run_account(
                account, plan, asker, run, deadline_s=deadline_s, fresh=args.fresh
            )
            return _plan_json(account, result, queries)

    else:
        reads = args.reads or []
        allowed = catalogue_policy(reads)
        await _guard(reads, asker.user, allowed)

        async def work(account: Account, deadline_s: float) -> dict[str, Any]:
            return await _run_reads(call, account, reads, deadline_s, allowed, fresh=args.fresh)

    results = await asyncio.gather(*(_in_slot(call, account, work) for account in accounts))
    return {
        "accounts": results,
        "summary": dict(Counter(result["status"] for result in results)),
    }


async def _in_slot(call: Call, account: Account, work: Work) -> dict[str, Any]:
    """The account's work once it has a fan-out slot; its deadline starts then, and never
    outlasts the invocation."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(call.left()), call.service.slots.hold():
            deadline = call.service.settings.account_timeout
            left = call.left()
            if left is not None:
                deadline = min(deadline, left)
            if deadline <= 0:
                raise TimeoutError
            return await work(account, deadline)
    except TimeoutError:
        status, error = "timeout", "the invocation's time ran out before the account answered"
    except Exception as exc:  # noqa: BLE001 - a bug in one account's work stays its own
        status, error = "error", f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return {
        **_head(account),
        "status": status,
        "error": f"{account.alias} ({account.id}): {error}",
        "elapsed_ms": int((time.monotonic() - started) * 1000),
    }


def _head(account: Account) -> dict[str, Any]:
    return {
        "account_id": account.id,
        "alias": account.alias,
        "name": account.name,
        "environment": account.environment,
    }


def _row_json(row: Resource, queries: list[ResourceQuery]) -> dict[str, Any]:
    data = row.model_dump(mode="json", exclude={"details"})
    details = shown_details(row, queries)
    if details:
        data["details"] = details
    return data


def _plan_json(
    account: Account, result: AccountResult, queries: list[ResourceQuery]
) -> dict[str, Any]:
    """An account's answer to a plan, as the agent's JSON has it (details with describe,
    and the attributes the queries asked about)."""
    return {
        **_head(account),
        "status": result.status,
        "error": result.error,
        "elapsed_ms": result.elapsed_ms,
        "count": result.count,
        "rows": [_row_json(row, queries) for row in result.rows],
        "read_at": result.read_at.isoformat() if result.read_at else None,
        "reused": result.reused,
        "regions_not_enabled": result.regions_not_enabled,
        "reads": result.reads,
    }


# ----- reads as data -----


def catalogue_policy(reads: Sequence[Read]) -> frozenset[tuple[str, str]] | None:
    """The catalogue's allow-list when every read (fan-outs included) is one of its
    operations, else None (the model policy)."""
    operations = {(r.service, r.operation) for read in reads for r in read.walk()}
    return CATALOGUE_READS if operations <= CATALOGUE_READS else None


async def _guard(
    reads: Sequence[Read], user: str, allowed: frozenset[tuple[str, str]] | None
) -> None:
    """Every read (fan-outs included) through the guard, before any account is touched: a
    refused one fails the whole call with the guard's message."""
    try:
        # The guard loads botocore's service models on first use: off the event loop.
        await asyncio.to_thread(_check_all, reads, user, allowed)
    except ReadOnlyViolation as exc:
        raise ToolError("read_only", str(exc)) from None


def _check_all(
    reads: Sequence[Read], user: str, allowed: frozenset[tuple[str, str]] | None
) -> None:
    for read in reads:
        check_read(read, allowed=allowed, user=user)


async def _run_reads(
    call: Call,
    account: Account,
    reads: list[Read],
    deadline_s: float,
    allowed: frozenset[tuple[str, str]] | None,
    *,
    fresh: bool,
) -> dict[str, Any]:
    """The reads in one account as one script; whatever goes wrong is the account's status."""
    started = time.monotonic()
    status: AccountStatus = "ok"
    error: str | None = None
    results: list[ReadResult] = []
    try:
        async with asyncio.timeout(deadline_s):
            results = await call.service.run_reads(
                account, call.caller.asker, reads, allowed=allowed, fresh=fresh
            )
        status, error = _reads_status(reads, results)
    except asyncio.CancelledError:
        raise
    except AccessError as exc:  # denied, timeout, unreachable, script failed
        status, error = exc.status, str(exc)
    except TimeoutError:
        status = "timeout"
        error = f"no answer from {account.alias} within {deadline_s:g}s (OPSAGENT_ACCOUNT_TIMEOUT)"
    except Exception as exc:  # any other failure stays this account's
        status, error = "error", f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return {
        **_head(account),
        "status": status,
        "error": error,
        "elapsed_ms": int((time.monotonic() - started) * 1000),
        "results": [result.model_dump(mode="json") for result in results],
    }


def _reads_status(
    reads: Sequence[Read], results: Sequence[ReadResult]
) -> tuple[AccountStatus, str | None]:
    """ok with a message naming the reads that failed; denied or error when none answered."""
    failed: list[tuple[Read, str | None, str]] = []
    for read, result in zip(reads, results, strict=True):
        expected = {code for r in read.walk() for code in r.expected_errors}
        for node in result.walk():
            if node.error is not None and node.error.code not in expected:
                failed.append((read, node.error.code, node.error.message))
    if not failed:
        return "ok", None
    shown = "; ".join(
        f"{read.label()}: {code or 'error'}: {message}"
        for read, code, message in failed[:_SHOWN_FAILURES]
    )
    more = len(failed) - _SHOWN_FAILURES
    shown += f"; and {more} more" if more > 0 else ""
    if not any(result.ok for result in results):
        status: AccountStatus = "denied" if all(is_denied(c) for _, c, _ in failed) else "error"
        return status, f"every read failed: {shown}"
    return "ok", f"{len(failed)} read{'s' if len(failed) != 1 else ''} failed: {shown}"


__all__ = ["TOOLS", "ArgumentError", "Call", "ToolError", "resolve"]
