"""The account worker: run a plan's queries in one account, in every planned region.

All of the account's reads (every query × region, fan-outs included) go out as ONE
``run_reads`` call, i.e. one ``aws___run_script`` per account per question. Each read
fails on its own: a read AWS refuses in one region loses no other read's rows, and the
account's message says which reads failed.

Errors are values here: whatever goes wrong in one account (an access error, a timeout, a
bug, even ``SystemExit`` raised from a parser or a model) becomes that account's status and
message, never an exception that fails the whole question or ends the process. Only
cancellation passes through.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from opsagent.access import (
    REGION_MAYBE_NOT_ENABLED_CODES,
    REGION_NOT_ENABLED,
    AccessError,
    Asker,
    Read,
    ReadResult,
    RunReads,
    is_denied,
)
from opsagent.graph.catalogue import CATALOGUE, CATALOGUE_READS, GLOBAL, GLOBAL_REGION, matches
from opsagent.graph.models import AccountResult, AccountStatus, Plan, Resource, ResourceQuery
from opsagent.registry import Account

# (account, asker, task) -> the worker's conclusion: a tool-calling loop over the account's
# guarded tools, for a Plan.freeform task. None when no model is configured.
FreeformWorker = Callable[[Account, Asker, str], Awaitable[str]]

# How many failed reads an account's message names before "and N more".
_SHOWN_FAILURES = 3


async def run_account(
    account: Account,
    plan: Plan,
    asker: Asker,
    run: RunReads,
    *,
    deadline_s: float,
    freeform: FreeformWorker | None = None,
    fresh: bool = False,
) -> AccountResult:
    """The account's answer within ``deadline_s`` from now (OPSAGENT_ACCOUNT_TIMEOUT), read
    as ``asker`` (the user and their groups, whom the member account's CloudTrail names)."""
    started = time.monotonic()
    asked_at = datetime.now(UTC)
    note: str | None = None
    status: AccountStatus = "ok"
    error: str | None = None
    found = _Found()
    try:
        async with asyncio.timeout(deadline_s):
            found = await _query(account, plan, asker, run, fresh, asked_at)
            status, error = found.status, found.error
            if plan.freeform:
                if freeform is None:
                    raise RuntimeError("this question needs a model; none is configured")
                note = await freeform(account, asker, plan.freeform)
    except asyncio.CancelledError:
        raise
    except AccessError as exc:  # denied, timeout, unreachable, script failed, guard refusal
        status, error = exc.status, str(exc)
    except TimeoutError:
        status, error = (
            "timeout",
            f"no answer from {account.alias} within {deadline_s:g}s (OPSAGENT_ACCOUNT_TIMEOUT)",
        )
    except BaseException as exc:  # noqa: BLE001 - any other failure stays this account's
        status, error = "error", f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    read_ats = [r for r in found.read_at if r is not None]
    return AccountResult(
        account_id=account.id,
        alias=account.alias,
        status=status,
        rows=sorted(found.rows, key=lambda r: (r.resource_type, r.region, r.name or "", r.id)),
        error=error,
        elapsed_ms=int((time.monotonic() - started) * 1000),
        note=note,
        read_at=min(read_ats) if read_ats else None,
        reused=any(r < asked_at for r in read_ats),
        reads=sum(r >= asked_at for r in read_ats),
        regions_not_enabled=sorted(found.regions_not_enabled),
    )


@dataclass
class _Found:
    """What the account's reads gave: its rows, status and message, and where the data is from."""

    rows: list[Resource] = field(default_factory=list)
    status: AccountStatus = "ok"
    error: str | None = None
    read_at: list[datetime | None] = field(default_factory=list)
    regions_not_enabled: set[str] = field(default_factory=set)


async def _query(
    account: Account, plan: Plan, asker: Asker, run: RunReads, fresh: bool, asked_at: datetime
) -> _Found:
    """Every query in every region as one run; rows, the account's status and message."""
    regions = plan.regions or account.regions
    planned: list[tuple[ResourceQuery, str, Read]] = []
    for query in plan.queries:
        kind = CATALOGUE[query.resource_type]
        for region in [GLOBAL_REGION] if kind.is_global else regions:
            planned.append((query, region, kind.read(region, query)))
    if not planned:
        return _Found()
    results = await run(
        account, asker, [read for _, _, read in planned], allowed=CATALOGUE_READS, fresh=fresh
    )
    off = _regions_not_enabled(
        [(read, result) for (_, _, read), result in zip(planned, results, strict=True)]
    )
    found = _Found(read_at=[result.read_at for result in results], regions_not_enabled=off)
    failed: list[tuple[Read, str | None, str]] = []  # (read, code, message)
    truncated: list[Read] = []
    answered = 0
    for (query, region, read), result in zip(planned, results, strict=True):
        if region in off and not result.ok:
            continue  # reported once per region, not as a failed read
        expected = {code for r in read.walk() for code in r.expected_errors}
        for node in result.walk():
            if node.error is not None and node.error.code not in expected:
                failed.append((read, node.error.code, node.error.message))
            if node.truncated:
                truncated.append(read)
        if not result.ok:
            continue
        answered += 1
        kind = CATALOGUE[query.resource_type]
        rows = kind.rows(account, region, query, result)
        if kind.is_global and plan.regions:  # a global service's rows may live in a region (S3)
            rows = [r for r in rows if r.region in (GLOBAL, *plan.regions)]
        found.rows.extend(r for r in rows if matches(r, query, kind, asked_at))
    if answered == 0 and failed:  # nothing came back: the account could not be queried
        denied = all(is_denied(code) for _, code, _ in failed)
        found.status = "denied" if denied else "error"
        found.error = _failures(failed, truncated, "every read")
    elif failed or truncated:
        found.error = _failures(failed, truncated, None)
    return found


def _regions_not_enabled(answers: list[tuple[Read, ReadResult]]) -> set[str]:
    """Regions the account has not enabled: a read there said OptInRequired, or failed its
    credentials (AuthFailure, UnrecognizedClientException...) while another region of the same
    account accepted them, so the keys are good and the region is what is missing."""
    answered = {read.region for read, result in answers if result.ok}
    off = set()
    for read, result in answers:
        code = result.error.code if result.error else None
        if code == REGION_NOT_ENABLED or (
            code in REGION_MAYBE_NOT_ENABLED_CODES and answered - {read.region}
        ):
            off.add(read.region)
    return off - answered


def _failures(
    failed: list[tuple[Read, str | None, str]], truncated: list[Read], every: str | None
) -> str:
    """'2 reads failed: us-west-2 ec2 DescribeInstances: AccessDenied: …' (shortest first)."""
    parts = []
    if failed:
        shown = [
            f"{read.region} {read.service} {read.operation}: {code or 'error'}: {message}"
            for read, code, message in failed[:_SHOWN_FAILURES]
        ]
        more = len(failed) - _SHOWN_FAILURES
        what = every or (f"{len(failed)} read{'s' if len(failed) != 1 else ''}")
        parts.append(
            f"{what} failed: " + "; ".join(shown) + (f"; and {more} more" if more > 0 else "")
        )
    if truncated:
        names = sorted({f"{r.region} {r.service} {r.operation}" for r in truncated})
        parts.append("stopped at the page limit, more exist: " + ", ".join(names))
    return ". ".join(parts)
