"""How many accounts are worked on at once, across every question the process is answering.

Each account in flight holds an MCP session, an HTTP connection, a thread for its
AssumeRole and a server-side script; on real AWS, STS and the AWS MCP Server throttle a
caller that opens hundreds at once. So an account worker waits for a slot first, and only
then starts its deadline (``OPSAGENT_ACCOUNT_TIMEOUT``): an account that waited behind 499
others has had no less time to answer than the first one. The default
(``OPSAGENT_MAX_ACCOUNTS_IN_FLIGHT``, 512) is measured: ``service/settings.py`` says how.

One semaphore per event loop: a CLI runs ``asyncio.run`` per question, the service one loop.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class AccountSlots:
    """At most ``limit`` accounts in flight at once; the rest wait their turn in order."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("the number of accounts in flight must be at least 1")
        self.limit = limit
        self._semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore]
        self._semaphores = weakref.WeakKeyDictionary()
        self.in_flight = 0
        self.most_in_flight = 0  # the high-water mark, for benchmarks and tests

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        semaphore = self._semaphores.get(loop)
        if semaphore is None:
            semaphore = self._semaphores[loop] = asyncio.Semaphore(self.limit)
        async with semaphore:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            try:
                yield
            finally:
                self.in_flight -= 1


__all__ = ["AccountSlots"]
