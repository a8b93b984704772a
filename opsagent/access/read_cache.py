"""Reads are not repeated needlessly: recent results are reused, identical reads in flight shared.

On the real AWS MCP Server each script takes about 15 s (awslabs/mcp PR #4584), so a
follow-up that only narrows or regroups the last answer ("only the stopped ones", "by
region", "how many?") should not read every account again: its reads are the same (the
catalogue filters rows after reading, ``graph/catalogue/common.py``), so their results are
taken from here while younger than ``max_age_s`` (``OPSAGENT_DATA_MAX_AGE``). Each result
carries ``read_at``, so the answer can say how old its data is, and ``fresh=True`` (CLI
``--fresh``, request field ``"fresh": true``) reads again.

Results are kept per (account, asker), the asker being the user AND their groups
(``identity.Asker``): what one caller's role session read is never handed to another, not
even to the same user with other groups, whose session carries other session tags and so may
see other things where a member account's policies test them (``aws:PrincipalTag``). Only
reads that answered in full are kept (no error anywhere in them): a failure is asked again
next time. Reads of one account that are missing or too old go out
as one script, and a second request for exactly those reads while the first is in flight
waits for the same script instead of sending its own (two people asking the same question
at once, or one double-clicking); once no request waits for it any more (deadlines passed,
clients gone), the script is cancelled like any abandoned call.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from opsagent.access.identity import Asker
from opsagent.access.reads import Read, ReadResult
from opsagent.registry import Account

# Enough for several all-accounts questions over 500 accounts × a few regions.
DEFAULT_MAX_ENTRIES = 50_000


@runtime_checkable
class RunReads(Protocol):
    """(account, asker, reads, *, allowed, fresh) -> one result per read: AccountSessions.run_reads,
    or a ReadCache over it (``fresh`` reads again instead of reusing recent results). The graph's
    account worker takes one (``graph/worker.py``)."""

    async def __call__(
        self,
        account: Account,
        asker: Asker,
        reads: Sequence[Read],
        *,
        allowed: Collection[tuple[str, str]] | None = None,
        fresh: bool = ...,
    ) -> list[ReadResult]: ...


_Key = tuple[str, Asker, bool, str]  # account id, asker, allow-listed?, the read as JSON


@dataclass
class _Flight:
    """One script in flight and how many requests wait for it."""

    task: asyncio.Future[list[ReadResult]]
    waiters: int = 0


class ReadCache:
    """``run_reads`` with recent results reused and identical in-flight requests shared."""

    def __init__(
        self, run: RunReads, *, max_age_s: float, max_entries: int = DEFAULT_MAX_ENTRIES
    ) -> None:
        self._run = run
        self.max_age_s = max_age_s
        self.max_entries = max_entries
        # Oldest first: kept in the order they were read, so expiry pops from the front.
        self._entries: OrderedDict[_Key, tuple[float, ReadResult]] = OrderedDict()
        self._in_flight: dict[tuple[_Key, ...], _Flight] = {}
        self.scripts_sent = 0  # for tests and benchmarks: how many runs reached AWS
        self.shared = 0  # requests that waited for another's identical script

    async def __call__(
        self,
        account: Account,
        asker: Asker,
        reads: Sequence[Read],
        *,
        allowed: Collection[tuple[str, str]] | None = None,
        fresh: bool = False,
    ) -> list[ReadResult]:
        keys = [(account.id, asker, allowed is not None, read.model_dump_json()) for read in reads]
        now = time.monotonic()
        self._expire(now)
        found: list[ReadResult | None] = [None if fresh else self._recent(key, now) for key in keys]
        missing = [i for i, result in enumerate(found) if result is None]
        if missing:
            wanted = tuple(keys[i] for i in missing)
            answered = await self._shared_run(
                wanted, account, asker, [reads[i] for i in missing], allowed
            )
            for i, result in zip(missing, answered, strict=True):
                found[i] = result
        return [result for result in found if result is not None]

    def __len__(self) -> int:
        return len(self._entries)

    async def _shared_run(
        self,
        wanted: tuple[_Key, ...],
        account: Account,
        asker: Asker,
        reads: list[Read],
        allowed: Collection[tuple[str, str]] | None,
    ) -> list[ReadResult]:
        flight = self._in_flight.get(wanted)
        if flight is None:
            task = asyncio.ensure_future(
                self._read_and_keep(wanted, account, asker, reads, allowed)
            )
            flight = self._in_flight[wanted] = _Flight(task)
            task.add_done_callback(lambda _: self._land(wanted, flight))
            self.scripts_sent += 1
        else:
            self.shared += 1
        flight.waiters += 1
        try:
            # shield: one waiter giving up (its deadline, a client that left) does not cancel
            # the script for the others...
            return await asyncio.shield(flight.task)
        finally:
            flight.waiters -= 1
            if flight.waiters == 0 and not flight.task.done():
                flight.task.cancel()  # ...but once nobody waits for it, it is abandoned

    async def _read_and_keep(
        self,
        wanted: tuple[_Key, ...],
        account: Account,
        asker: Asker,
        reads: list[Read],
        allowed: Collection[tuple[str, str]] | None,
    ) -> list[ReadResult]:
        results = await self._run(account, asker, reads, allowed=allowed)
        read_at = time.monotonic()
        for key, result in zip(wanted, results, strict=True):
            if all(node.error is None for node in result.walk()):
                self._entries[key] = (read_at, result)
                self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return results

    def _land(self, wanted: tuple[_Key, ...], flight: _Flight) -> None:
        if self._in_flight.get(wanted) is flight:
            del self._in_flight[wanted]
        if not flight.task.cancelled():
            flight.task.exception()  # retrieved: each waiter has had it raised already

    def _recent(self, key: _Key, now: float) -> ReadResult | None:
        entry = self._entries.get(key)
        if entry is None or now - entry[0] > self.max_age_s:
            return None
        return entry[1]

    def _expire(self, now: float) -> None:
        while self._entries:
            read_at, _ = next(iter(self._entries.values()))
            if now - read_at <= self.max_age_s:
                break
            self._entries.popitem(last=False)


__all__ = ["DEFAULT_MAX_ENTRIES", "ReadCache", "RunReads"]
