"""`opsagent chat`: the conversation of the web page, in the terminal.

Each line read is a question in one thread, so follow-ups work ("and in staging?", "only the
running ones"). While a question runs, each planned account is shown turning from waiting to
querying to ok, denied, error or timeout with its count and time: a live board when stdout is
a terminal, plain lines as each account starts and finishes when it is not. Then the answer
is printed as `ask` prints it (``render_answer``); a refusal is its message.

The thread is kept where OPSAGENT_CHECKPOINT_URL says, whether it was named with ``--thread``
or not: its id is printed at start and at exit, and ``opsagent chat --thread ID`` (or
``opsagent ask --thread ID``) goes on with it.

How it runs: the prompt (``input()``, with readline's line editing on a terminal) owns the
main thread, so Ctrl-C reaches it; the agent lives in an event loop of its own thread
(``AgentHost``), which keeps running between questions as the HTTP service's does. Ctrl-C
while a question runs cancels that question's task and the chat goes on; at the prompt it
leaves, as do Ctrl-D, ``exit`` and ``quit``.

Everything printed that comes from outside goes through ``TextConsole`` (``cli.out``,
``cli.err``): resource names, tags, account names, error messages, the question itself.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from opsagent.graph.models import Answer
from opsagent.registry import Registry, RegistryError
from opsagent.service.cli import (
    EXIT_CANNOT_ANSWER,
    EXIT_CONFIGURATION,
    _error,
    _progress,
    account_finished_line,
    out,
    render_answer,
)
from opsagent.service.questions import question_problem
from opsagent.service.settings import Settings

if TYPE_CHECKING:
    from opsagent.service.runtime import Agent

T = TypeVar("T")

PROMPT = "opsagent> "
EXIT_INTERRUPTED = 130

HELP = """\
Ask about your AWS accounts in plain English, one question a line, e.g.
  How many RDS instances are running in each account?
Each question can follow up on the ones before it: "and in staging?", "only the running ones".
  /new      start a new conversation (a new thread)
  /thread   print this conversation's thread id
  /help     this help
  exit, quit, Ctrl-D    leave (Ctrl-C stops a running question; at the prompt it leaves)"""


class QuestionCancelled(Exception):
    """Ctrl-C stopped the question in flight; the chat goes on."""


class AgentHost:
    """The agent, open in an event loop on a thread of its own, for a prompt on the main one.

    ``open`` starts the thread and returns once the checkpointer and the agent are open (or
    raises what opening raised); ``run`` runs one coroutine there and returns its result;
    ``close`` closes the agent and ends the thread.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._agent: Agent | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._main, name="opsagent-chat", daemon=True)

    def open(self) -> None:
        self._thread.start()
        self._ready.result()

    @property
    def agent(self) -> Agent:
        assert self._agent is not None, "open() first"
        return self._agent

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            if not self._ready.done():  # opening failed: the main thread is waiting for it
                self._ready.set_exception(exc)
            elif isinstance(exc, Exception):
                _error(f"closing the agent: {type(exc).__name__}: {exc}")

    async def _serve(self) -> None:
        from opsagent.service import logs
        from opsagent.service.checkpoints import open_checkpointer
        from opsagent.service.runtime import open_agent

        logs.configure(self.settings.audit_log, "cli")
        async with (
            open_checkpointer(self.settings.checkpoint_url) as checkpointer,
            open_agent(self.settings, checkpointer=checkpointer) as agent,
        ):
            self._agent = agent
            self._loop = asyncio.get_running_loop()
            self._ready.set_result(None)
            await asyncio.to_thread(self._closing.wait)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """The coroutine's result, run on the agent's loop; Ctrl-C meanwhile cancels it, waits
        until it has stopped and raises QuestionCancelled (a second Ctrl-C stops waiting)."""
        loop = self._loop
        assert loop is not None, "open() first"
        finished = threading.Event()
        started: concurrent.futures.Future[asyncio.Task[T]] = concurrent.futures.Future()

        def start() -> None:
            task = loop.create_task(coro)
            task.add_done_callback(lambda _: finished.set())
            started.set_result(task)

        loop.call_soon_threadsafe(start)
        try:
            finished.wait()
        except KeyboardInterrupt:
            task = started.result()
            loop.call_soon_threadsafe(task.cancel)
            finished.wait()
            if task.cancelled():
                raise QuestionCancelled() from None
        return started.result().result()

    def close(self) -> None:
        self._closing.set()
        if self._thread.is_alive():
            self._thread.join()


@dataclass
class _Account:
    alias: str
    account_id: str
    started: float | None = None  # time.monotonic() at account_started
    status: str | None = None  # once finished
    partial: bool = False
    line: str = ""  # once finished: account_finished_line


class ProgressBoard:
    """One question's accounts as they go: waiting, querying, then ok, denied, error or
    timeout with count and time. Live (redrawn in place) on a terminal; plain lines,
    `ask`'s progress lines, otherwise.

    Over more accounts than the terminal has lines, the board is a summary line and the
    accounts that failed."""

    def __init__(self, console: Console, registry: Registry, *, live: bool) -> None:
        self.console = console
        self.registry = registry
        self.live = live
        self._accounts: dict[str, _Account] = {}
        self._lock = threading.Lock()
        self._display: Live | None = None
        self._ended: str | None = None  # why unfinished accounts did not finish

    def event(self, event: dict) -> None:
        if not self.live:
            _progress(event, self.console)
            return
        kind = event.get("event")
        if kind == "plan":
            plan = event["plan"]
            self.console.print(f"plan: {plan.get('summary') or ''}", style="dim")
            with self._lock:
                for account_id in plan.get("accounts") or []:
                    self._accounts[account_id] = _Account(self._alias(account_id), account_id)
            self._display = Live(
                console=self.console,
                get_renderable=self._render,
                refresh_per_second=8,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._display.start(refresh=True)
        elif kind in ("account_started", "account_finished"):
            with self._lock:
                account = self._accounts.setdefault(
                    event["account_id"], _Account(event["alias"], event["account_id"])
                )
                if kind == "account_started":
                    account.started = time.monotonic()
                else:
                    account.status = event["status"]
                    account.partial = event["status"] == "ok" and bool(event.get("error"))
                    account.line = account_finished_line(event)
            if self._display is not None:
                self._display.refresh()

    def close(self, *, ended: str | None = None) -> None:
        """The board's last state stays on screen; ``ended`` ("cancelled", "stopped"): why
        the accounts still running did not finish."""
        self._ended = ended
        if self._display is not None:
            self._display.stop()
            self._display = None

    def _alias(self, account_id: str) -> str:
        try:
            return self.registry.get(account_id).alias
        except (LookupError, RegistryError, ValueError):
            return account_id

    def _line(self, account: _Account) -> Text:
        name = f"{account.alias} ({account.account_id})"
        if account.line:
            ok = account.status == "ok"
            style = "yellow" if account.partial else "green" if ok else "red"
            return self.console.render_str(account.line, style=style)
        if self._ended:
            return self.console.render_str(f"- {name} {self._ended}", style="dim")
        if account.started is None:
            return self.console.render_str(f"· {name} waiting", style="dim")
        running = time.monotonic() - account.started
        return self.console.render_str(f"… {name} querying {running:.1f} s")

    def _render(self) -> Group:
        with self._lock:
            accounts = list(self._accounts.values())
        room = max(self.console.height - 4, 5)
        if len(accounts) <= room:
            return Group(*(self._line(a) for a in accounts))
        finished = [a for a in accounts if a.status is not None]
        statuses = Counter(a.status for a in finished)
        querying = sum(1 for a in accounts if a.status is None and a.started is not None)
        waiting = len(accounts) - len(finished) - querying
        summary = f"{len(finished)} of {len(accounts)} accounts done"
        if statuses:
            summary += ": " + ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
        if self._ended and (querying or waiting):
            summary += f"; {querying + waiting} {self._ended}"
        elif querying or waiting:
            summary += f"; {querying} querying, {waiting} waiting"
        failed = [a for a in finished if a.status != "ok" or a.partial]
        if self._display is not None and self._display.is_started:
            failed = failed[-(room - 1) :]  # the latest; all of them once it stops
        return Group(self.console.render_str(summary), *(self._line(a) for a in failed))


class Chat:
    """The prompt loop: lines in, answers out, one thread at a time."""

    def __init__(
        self,
        host: AgentHost,
        *,
        thread: str,
        user: str | None,
        fresh: bool,
        console: Console = out,
    ) -> None:
        self.host = host
        self.thread = thread
        self.user = user
        self.fresh = fresh
        self.console = console
        self.interactive = sys.stdin.isatty()

    # ------------------------------------------------------------------ the loop

    def loop(self) -> int:
        while True:
            try:
                line = self._read()
            except KeyboardInterrupt:  # at the prompt: leave
                self.console.print()
                break
            except UnicodeDecodeError as exc:
                _error(
                    f"that line is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at "
                    f"offset {exc.start}); type it again"
                )
                continue
            if line is None:  # Ctrl-D, end of input
                if self.interactive:
                    self.console.print()
                break
            text = line.strip()
            if not text:
                continue
            if text.lower() in {"exit", "quit", "/exit", "/quit"}:
                break
            try:
                if text.startswith("/"):
                    self._command(text)
                else:
                    self._question(text)
            except KeyboardInterrupt:  # while printing an answer: drop the rest of it
                self.console.print()
                self.console.print("(interrupted)", style="yellow")
        self._say_thread("Leaving the conversation")
        return 0

    def _read(self) -> str | None:
        """The next line, or None at end of input."""
        if self.interactive:
            try:
                return input(PROMPT)
            except EOFError:
                return None
        raw = sys.stdin.buffer.readline()
        if not raw:
            return None
        return raw.decode("utf-8").removeprefix("\ufeff")

    def _command(self, text: str) -> None:
        command = text.split()[0].lower()
        if command == "/help":
            self.console.print(HELP)
        elif command == "/thread":
            self.console.print(self.thread)
        elif command == "/new":
            self.thread = new_thread_id()
            self._say_thread("New conversation")
        else:
            _error(f"unknown command {text.split()[0]}: /help lists the commands")

    # ------------------------------------------------------------------ a question

    def _question(self, question: str) -> None:
        problem = question_problem(question)
        if problem is not None:
            _error(problem)
            return
        if not self.interactive:  # a transcript: say which question this is
            self.console.rule(question)
        try:
            answer = self.host.run(self._ask(question))
        except QuestionCancelled:
            self.console.print(
                "Cancelled: the question was stopped. Ask again, or something else.",
                style="yellow",
            )
            return
        except Exception as exc:  # a failed run fails this question, not the chat
            _error(f"the question could not be answered: {type(exc).__name__}: {exc}")
            return
        if answer.refusal is not None:
            self.console.print(answer.text, style="yellow")
        else:
            render_answer(answer, self.console)
        self.console.print()

    async def _ask(self, question: str) -> Answer:
        agent = self.host.agent
        board = ProgressBoard(self.console, agent.registry, live=self.console.is_terminal)
        config = agent.config(thread_id=self.thread, user=self.user, fresh=self.fresh)
        answer: Answer | None = None
        ended = None
        try:
            async for item in agent.stream(question, config):
                if isinstance(item, Answer):
                    answer = item
                else:
                    board.event(item)
        except asyncio.CancelledError:
            ended = "cancelled"
            raise
        except Exception:
            ended = "stopped"
            raise
        finally:
            board.close(ended=ended)
        assert answer is not None
        return answer

    # ------------------------------------------------------------------ the thread

    async def _turns(self) -> list[dict]:
        state = await self.host.agent.graph.aget_state({"configurable": {"thread_id": self.thread}})
        return list((state.values or {}).get("turns") or [])

    def greet(self, *, resumed: bool) -> None:
        if resumed:
            turns = self.host.run(self._turns())
            if turns:
                last = turns[-1].get("question") or ""
                self.console.print(
                    f"Resuming thread {self.thread}: {len(turns)} earlier "
                    f"question{'s' if len(turns) != 1 else ''}, the last: {last}",
                    style="dim",
                    soft_wrap=True,
                )
            else:
                self.console.print(
                    f"Thread {self.thread} has no earlier questions: a new conversation.",
                    style="dim",
                )
        else:
            self._say_thread("New conversation")
        if self.interactive:
            self.console.print(
                "Ask a question in plain English; /help for commands, exit to leave.",
                style="dim",
            )

    def _say_thread(self, what: str) -> None:
        kept = self.host.settings.checkpoint_url
        where = (
            "not kept: OPSAGENT_CHECKPOINT_URL is memory://"
            if kept.lower().startswith("memory:")
            else f"resume with: opsagent chat --thread {self.thread}"
        )
        self.console.print(f"{what}, thread {self.thread} ({where})", style="dim", soft_wrap=True)


def new_thread_id() -> str:
    return str(uuid.uuid4())


def thread_problem(thread: str) -> str | None:
    """Why this cannot be a thread id, or None: the rule the HTTP service applies, so a
    conversation started here can go on over HTTP too."""
    from opsagent.service.http.schemas import THREAD_ID_PATTERN

    if len(thread) > 256 or not re.fullmatch(THREAD_ID_PATTERN, thread):
        return (
            f"--thread {thread!r}: a thread id is 1 to 256 letters, digits and ._:@-, "
            "starting with a letter or digit"
        )
    return None


def run_chat(settings: Settings, *, thread: str | None, user: str | None, fresh: bool) -> int:
    """The chat, from start to exit code."""
    from opsagent.service.runtime import ConfigurationError

    if thread is not None:
        problem = thread_problem(thread)
        if problem is not None:
            _error(problem)
            return EXIT_CANNOT_ANSWER
    if sys.stdin.isatty():
        import readline  # noqa: F401  (line editing and history for input())

    host = AgentHost(settings)
    try:
        try:
            host.open()
        except (RegistryError, ConfigurationError) as exc:
            _error(str(exc))
            return EXIT_CONFIGURATION
        chat = Chat(host, thread=thread or new_thread_id(), user=user, fresh=fresh)
        chat.greet(resumed=thread is not None)
        return chat.loop()
    except (KeyboardInterrupt, QuestionCancelled):
        # while starting or resuming, or a second Ctrl-C while a question was stopping
        return EXIT_INTERRUPTED
    finally:
        try:
            host.close()
        except KeyboardInterrupt:
            pass
