"""A registry kept fresh while the service runs: the last good one, reloaded in the background.

    live = LiveRegistry(functools.partial(discover_registry, boto3.Session()), 300)
    registry = await live.current()

The first ``current()`` loads and waits (and raises what the load raises: without a registry
there is nothing to serve). After that ``current()`` never waits: it answers with the
registry it holds and, once that is older than ``refresh_seconds``, starts one reload in a
worker thread (a discovery makes blocking boto3 calls for seconds). A reload that fails
keeps the last good registry and logs a warning; the next one is tried ``refresh_seconds``
after it, so an Organizations outage is not asked again on every question.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from opsagent.registry.model import Registry

log = logging.getLogger(__name__)

__all__ = ["LiveRegistry"]


class LiveRegistry:
    """The last good Registry from ``load``, reloaded at most every ``refresh_seconds``."""

    def __init__(
        self,
        load: Callable[[], Registry],
        refresh_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if refresh_seconds <= 0:
            raise ValueError(f"refresh_seconds must be positive, got {refresh_seconds!r}")
        self.refresh_seconds = refresh_seconds
        self._load = load
        self._clock = clock
        self._registry: Registry | None = None
        # When the last load or reload ended, well or not: the next one is due from here.
        self._checked_at = 0.0
        self._first_load = asyncio.Lock()
        self._reload: asyncio.Task[None] | None = None
        # Why the last reload failed; None once one succeeds.
        self.last_error: Exception | None = None

    @property
    def registry(self) -> Registry | None:
        """The registry held now, None before the first load."""
        return self._registry

    @property
    def refreshing(self) -> bool:
        return self._reload is not None

    async def current(self) -> Registry:
        """The registry held; the first call loads it (concurrent first callers share that
        load), later calls start a background reload when it is due and do not wait."""
        if self._registry is None:
            async with self._first_load:
                if self._registry is None:
                    self._registry = await asyncio.to_thread(self._load)
                    self._checked_at = self._clock()
            return self._registry
        if self._reload is None and self._clock() - self._checked_at >= self.refresh_seconds:
            # The task is kept on self: the event loop holds tasks only weakly.
            self._reload = asyncio.create_task(self._reload_once())
        return self._registry

    async def settled(self) -> Registry:
        """Wait for a reload in progress, if any; then the registry held (loading it if none)."""
        if self._reload is not None:
            await asyncio.shield(self._reload)
        return await self.current() if self._registry is None else self._registry

    async def aclose(self) -> None:
        """Stop waiting for a reload in progress (its thread finishes on its own)."""
        task, self._reload = self._reload, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _reload_once(self) -> None:
        try:
            registry = await asyncio.to_thread(self._load)
        except Exception as exc:
            self.last_error = exc
            log.warning(
                "registry refresh failed; keeping the last good registry",
                extra={"error": str(exc) or type(exc).__name__},
            )
        else:
            self._registry = registry
            self.last_error = None
        finally:
            self._checked_at = self._clock()
            self._reload = None
