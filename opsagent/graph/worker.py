"""The account worker: run a plan's queries in one account, in every planned region.

Errors are values here: whatever goes wrong in one account becomes that account's status
and message, never an exception that fails the whole question.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from opsagent.access import AccessError
from opsagent.graph.resources import GLOBAL, GLOBAL_REGION, KINDS, matches
from opsagent.graph.state import AccountResult, Plan, Resource
from opsagent.registry import Account

# (account, user, cli_command) -> parsed AWS response; AccountSessions.call_aws fits.
RunCommand = Callable[[Account, str, str], Awaitable[dict[str, Any]]]


async def run_account(
    account: Account, plan: Plan, user: str, run: RunCommand, *, deadline_s: float,
    freeform: Callable[[Account, str, str], Awaitable[str]] | None = None,
) -> AccountResult:
    started = time.monotonic()
    note: str | None = None

    async def call(cli_command: str) -> dict[str, Any]:
        return await run(account, user, cli_command)

    regions = plan.regions or account.regions

    async def one_query(query) -> list[Resource]:
        kind = KINDS[query.resource_type]
        if kind.is_global:
            rows = await kind.fetch(call, account, GLOBAL_REGION, query)
            if plan.regions:  # a global service's rows may still live in a region (S3)
                rows = [r for r in rows if r.region in (GLOBAL, *plan.regions)]
        else:
            per_region = await asyncio.gather(
                *(kind.fetch(call, account, region, query) for region in regions)
            )
            rows = [r for region_rows in per_region for r in region_rows]
        return [r for r in rows if matches(r, query)]

    status, error, rows = "ok", None, []
    try:
        async with asyncio.timeout(deadline_s):
            found = await asyncio.gather(*(one_query(q) for q in plan.queries))
            rows = [r for query_rows in found for r in query_rows]
            if plan.freeform:
                if freeform is None:
                    raise RuntimeError("this question needs a model; none is configured")
                note = await freeform(account, user, plan.freeform)
    except AccessError as exc:  # denied, timeout, unreachable, AWS error, guard refusal
        status, error = exc.status, str(exc)
    except TimeoutError:
        status, error = "timeout", f"no answer from {account.alias} within {deadline_s:g}s"
    except Exception as exc:  # any other failure stays this account's failure
        status, error = "error", str(exc) or type(exc).__name__
    return AccountResult(
        account_id=account.id,
        alias=account.alias,
        status=status,
        rows=sorted(rows, key=lambda r: (r.resource_type, r.region, r.name or "", r.id)),
        error=error,
        elapsed_ms=int((time.monotonic() - started) * 1000),
        note=note,
    )
