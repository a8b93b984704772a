"""Runs in flight: one question's graph run as a task, the tracker behind /ping and
one-run-per-thread, and the run's Server-Sent Events."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any, Literal, TypeVar

from fastapi import Request
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.types import Receive, Scope, Send

from opsagent.graph.models import Answer
from opsagent.service.http.auth import Caller
from opsagent.service.http.errors import ApiError, internal_error
from opsagent.service.http.schemas import THREAD_HEADER
from opsagent.service.runtime import Agent, RunConfig

log = logging.getLogger("opsagent.service")

T = TypeVar("T")


class RunTracker:
    """The runs in flight: /ping's status, one run per thread, cancellation on shutdown."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._threads: set[str] = set()
        # AgentCore reads this as "when the status last changed", never "now" (a timestamp
        # that moves on every ping would keep an idle session alive until MaxLifetime).
        self.changed_at = int(time.time())

    @property
    def status(self) -> Literal["Healthy", "HealthyBusy"]:
        return "HealthyBusy" if self._tasks else "Healthy"

    def claim(self, thread_id: str) -> None:
        if thread_id in self._threads:
            raise ApiError(
                "thread_busy",
                "a question is already running in this thread; wait for its answer "
                "or ask in another thread",
                thread_id=thread_id,
                headers={THREAD_HEADER: thread_id},
            )
        self._threads.add(thread_id)

    def release(self, thread_id: str) -> None:
        self._threads.discard(thread_id)

    def track(self, task: asyncio.Task[None], thread_id: str) -> None:
        if not self._tasks:
            self.changed_at = int(time.time())
        self._tasks.add(task)

        def finished(_: asyncio.Task[None]) -> None:
            self._tasks.discard(task)
            self._threads.discard(thread_id)
            if not self._tasks:
                self.changed_at = int(time.time())

        task.add_done_callback(finished)

    async def cancel_all(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)


RunItem = tuple[Literal["event", "answer", "error"], Any]


class GraphRun:
    """One question's graph run as a task that feeds a queue, so the HTTP side can stop it.

    The task, not the response, owns the work: whatever happens to the connection, the
    run's end (normal, failed or cancelled) frees the thread and updates /ping.
    """

    def __init__(
        self, agent: Agent, question: str, config: RunConfig, tracker: RunTracker, thread_id: str
    ) -> None:
        self.queue: asyncio.Queue[RunItem] = asyncio.Queue()
        self.started = time.monotonic()
        self.task = asyncio.create_task(
            self._run(agent, question, config), name=f"opsagent run {thread_id}"
        )
        tracker.track(self.task, thread_id)

    async def _run(self, agent: Agent, question: str, config: RunConfig) -> None:
        try:  # the task's own boundary: asyncio ends the process for SystemExit in a task
            async for item in agent.stream(question, config):
                self.queue.put_nowait(
                    ("answer", item) if isinstance(item, Answer) else ("event", item)
                )
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except BaseException as exc:  # one failed run must not take the service with it
            log.error(
                json.dumps(
                    {
                        "event": "run_failed",
                        "question": question,
                        "thread_id": config["configurable"]["thread_id"],
                        "error": f"{type(exc).__name__}: {exc}",
                    }
                ),
                exc_info=exc,
            )
            self.queue.put_nowait(("error", exc))

    async def next(self) -> RunItem:
        return await self.queue.get()

    async def outcome(self) -> RunItem:
        """Skip progress events: the answer, or the error."""
        while True:
            item = await self.next()
            if item[0] != "event":
                return item

    async def cancel(self) -> None:
        if not self.task.done():
            self.task.cancel()
        await asyncio.wait([self.task])


async def until_disconnect(request: Request, work: Awaitable[T]) -> T | None:
    """`work`'s result, or None if the client hangs up first (work is then cancelled)."""

    async def hung_up() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    job = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(hung_up())
    try:
        await asyncio.wait({job, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (job, watch):
            if not task.done():
                task.cancel()
        await asyncio.wait({job, watch})
    return job.result() if not job.cancelled() else None


class RunStream(EventSourceResponse):
    """An SSE response that cancels its run whenever the response ends, however it ends."""

    def __init__(
        self, run: GraphRun, content: AsyncIterator[ServerSentEvent], **kwargs: Any
    ) -> None:
        super().__init__(content, **kwargs)
        self.run = run

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # After a normal end the task is already done; after a disconnect this stops it.
            await self.run.cancel()


def sse(event: str, data: Any) -> ServerSentEvent:
    return ServerSentEvent(event=event, data=json.dumps(data, default=str))


async def events(
    run: GraphRun, thread_id: str, caller: Caller, first: RunItem
) -> AsyncIterator[ServerSentEvent]:
    yield sse("thread", {"thread_id": thread_id})
    try:
        async for event in _run_events(run, thread_id, caller, first):
            yield event
    except (asyncio.CancelledError, GeneratorExit):
        raise
    except BaseException as exc:  # runs in sse-starlette's task: SystemExit would end us
        log.error(
            json.dumps(
                {"event": "stream_failed", "thread_id": thread_id, "error": type(exc).__name__}
            ),
            exc_info=exc,
        )
        yield sse("error", internal_error(exc))
        yield sse("done", {"thread_id": thread_id, "status": "error"})


async def _run_events(
    run: GraphRun, thread_id: str, caller: Caller, first: RunItem
) -> AsyncIterator[ServerSentEvent]:
    kind, value = first
    while True:
        if kind == "event":
            name = str(value.get("event", "progress"))
            if name == "plan":
                yield sse("plan", value.get("plan"))
            else:
                yield sse(name, {k: v for k, v in value.items() if k != "event"})
        elif kind == "answer":
            log_run(run, thread_id, caller, value)
            yield sse("answer", value.to_json())
            status = "refused" if value.refusal else "ok"
            yield sse("done", {"thread_id": thread_id, "status": status})
            return
        else:
            yield sse("error", internal_error(value))
            yield sse("done", {"thread_id": thread_id, "status": "error"})
            return
        kind, value = await run.next()


def log_run(run: GraphRun, thread_id: str, caller: Caller, answer: Answer) -> None:
    log.info(
        json.dumps(
            {
                "event": "answered",
                "thread_id": thread_id,
                "user": caller.user,
                "accounts": len(answer.results),
                "refusal": answer.refusal.kind if answer.refusal else None,
                "elapsed_ms": int((time.monotonic() - run.started) * 1000),
            }
        )
    )
