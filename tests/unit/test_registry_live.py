"""LiveRegistry: the last good registry, reloaded in the background without making callers wait.

Time is a fake clock the tests move; a reload in progress is held open by an event the test
releases, so "callers do not wait" is shown by order of events, never by timing.
"""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from opsagent.registry import Registry, RegistryError, parse_registry
from opsagent.registry.live import LiveRegistry

REFRESH = 300.0


def registry(*workloads: str) -> Registry:
    accounts = [{"id": "111111111111", "name": "Central", "environment": "ops", "role": "central"}]
    accounts += [
        {"id": account, "name": f"Account {account}", "environment": "production"}
        for account in workloads
    ]
    return parse_registry({"accounts": accounts})


FIRST = registry("222222222222")
SECOND = registry("222222222222", "333333333333")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeDiscovery:
    """Answers with the queued registries (or raises the queued errors), one a call; while
    ``hold`` is set, each call waits in its worker thread until ``release``."""

    def __init__(self, *answers: Registry | Exception) -> None:
        self.answers = list(answers)
        self.calls = 0
        self.started = threading.Event()
        self._gate = threading.Event()
        self._gate.set()

    def hold(self) -> None:
        self._gate.clear()
        self.started.clear()

    def release(self) -> None:
        self._gate.set()

    def __call__(self) -> Registry:
        self.calls += 1
        self.started.set()
        assert self._gate.wait(timeout=30), "the test never released the discovery"
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def test_the_first_call_loads_and_later_calls_reuse_it(clock: Clock) -> None:
    load = FakeDiscovery(FIRST)
    live = LiveRegistry(load, REFRESH, clock=clock)
    assert live.registry is None
    assert await live.current() is FIRST
    clock.now += REFRESH - 1
    assert await live.current() is FIRST
    assert load.calls == 1
    assert not live.refreshing


async def test_concurrent_first_callers_share_one_load(clock: Clock) -> None:
    load = FakeDiscovery(FIRST)
    live = LiveRegistry(load, REFRESH, clock=clock)
    answers = await asyncio.gather(*(live.current() for _ in range(5)))
    assert all(answer is FIRST for answer in answers)
    assert load.calls == 1


async def test_a_failing_first_load_raises_and_the_next_call_tries_again(clock: Clock) -> None:
    load = FakeDiscovery(RegistryError("no organization"), FIRST)
    live = LiveRegistry(load, REFRESH, clock=clock)
    with pytest.raises(RegistryError, match="no organization"):
        await live.current()
    assert live.registry is None
    assert await live.current() is FIRST


async def test_a_due_refresh_runs_in_the_background_once(clock: Clock) -> None:
    load = FakeDiscovery(FIRST, SECOND)
    live = LiveRegistry(load, REFRESH, clock=clock)
    await live.current()
    clock.now += REFRESH
    load.hold()
    # The callers get the registry held while the reload waits in its thread.
    assert await live.current() is FIRST
    assert await asyncio.to_thread(load.started.wait, 30)
    assert live.refreshing
    assert await live.current() is FIRST
    assert await live.current() is FIRST
    assert load.calls == 2  # one reload, however many callers saw it due
    load.release()
    assert await live.settled() is SECOND
    assert await live.current() is SECOND
    assert not live.refreshing


async def test_a_failed_refresh_keeps_the_last_good_registry_and_warns(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    load = FakeDiscovery(FIRST, RegistryError("Organizations is down"), SECOND)
    live = LiveRegistry(load, REFRESH, clock=clock)
    await live.current()
    clock.now += REFRESH
    with caplog.at_level(logging.WARNING, logger="opsagent.registry.live"):
        assert await live.current() is FIRST
        assert await live.settled() is FIRST
    assert "keeping the last good registry" in caplog.text
    assert str(live.last_error) == "Organizations is down"
    # Not asked again at once: the next reload is due a whole interval after the failure.
    assert await live.current() is FIRST
    assert not live.refreshing
    clock.now += REFRESH
    await live.current()
    assert await live.settled() is SECOND
    assert live.last_error is None
    assert load.calls == 3


async def test_aclose_stops_waiting_for_a_reload(clock: Clock) -> None:
    load = FakeDiscovery(FIRST, SECOND)
    live = LiveRegistry(load, REFRESH, clock=clock)
    await live.current()
    clock.now += REFRESH
    load.hold()
    await live.current()
    await asyncio.to_thread(load.started.wait, 30)
    await live.aclose()
    assert not live.refreshing
    assert live.registry is FIRST
    load.release()


def test_the_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="refresh_seconds"):
        LiveRegistry(FakeDiscovery(FIRST), 0)
