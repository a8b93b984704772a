"""`opsagent chat` end to end: a real process on the session sandbox, questions on standard
input (a pipe) and, for the interactive path, under a pseudo-terminal; the tables it prints
are checked against moto's ground truth."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import OPSAGENT, ROOT

DEMO_REGISTRY = ROOT / "opsagent" / "sandbox" / "demo-registry.json"
WORKLOAD = {"222222222222": "production", "333333333333": "staging", "444444444444": "development"}
RDS_QUESTION = "How many RDS instances are running in each account?"
THREAD = re.compile(r"thread ([0-9a-f-]{36}) \(resume with: opsagent chat --thread \1\)")


@pytest.fixture
def env(external_env, tmp_path) -> dict[str, str]:
    """The session sandbox as any AWS; threads kept in a SQLite file, as by default."""
    return {
        **external_env,
        "OPSAGENT_CHECKPOINT_URL": f"sqlite:///{tmp_path}/threads.sqlite",
        "COLUMNS": "200",  # wide tables: no id folded over two lines
        "PYTHONIOENCODING": "utf-8",
    }


def chat_args(sandbox, *args: str) -> list[str]:
    return [
        "chat",
        "--registry",
        str(DEMO_REGISTRY),
        "--mcp-endpoint",
        sandbox.mcp_endpoint,
        *args,
    ]


def chat(sandbox, env, lines: list[str] | bytes, *args: str) -> subprocess.CompletedProcess:
    """`opsagent chat` with these lines on standard input (not a terminal)."""
    data = lines if isinstance(lines, bytes) else "".join(f"{line}\n" for line in lines).encode()
    done = subprocess.run(
        [OPSAGENT, *chat_args(sandbox, *args)],
        input=data,
        capture_output=True,
        env=env,
        timeout=180,
        cwd=ROOT,
    )
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
    )


def sections(transcript: str) -> dict[str, str]:
    """A piped chat's stdout by question: each question is a rule line with it as title."""
    found: dict[str, str] = {}
    current = None
    for line in transcript.splitlines():
        rule = re.fullmatch(r"─+ (.+?) ─+", line.strip())
        if rule:
            current = rule.group(1)
            found[current] = ""
        elif current is not None:
            found[current] += line + "\n"
    return found


def table(text: str) -> list[dict[str, str]]:
    """The rows of the (last) table printed in this text, as column -> cell."""
    header: list[str] = []
    rows: list[dict[str, str]] = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("┃"):
            header, rows = [c.strip() for c in line.strip("┃").split("┃")], []
        elif line.startswith("│") and header:
            cells = [c.strip() for c in line.strip("│").split("│")]
            rows.append(dict(zip(header, cells, strict=True)))
    return rows


def running_rds(truth, account: str) -> set[str]:
    return {db for db, status in truth.rds_instances(account).items() if status == "available"}


# ----------------------------------------------------------------- questions on a pipe


def test_a_conversation_on_standard_input_follows_up_in_one_thread(sandbox, env, truth):
    done = chat(sandbox, env, [RDS_QUESTION, "and in staging?", "/thread", "exit"])
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    threads = THREAD.findall(done.stdout)
    assert len(threads) == 2 and threads[0] == threads[1], done.stdout  # at start and at exit
    assert done.stdout.splitlines()[0].startswith("New conversation, thread ")
    assert done.stdout.rstrip().splitlines()[-1].startswith("Leaving the conversation, thread ")

    answers = sections(done.stdout)
    assert list(answers) == [RDS_QUESTION, "and in staging?"]
    first, second = answers[RDS_QUESTION], answers["and in staging?"]
    # Progress: each account started, then finished with its count and time.
    for account, alias in WORKLOAD.items():
        assert f"… {alias} ({account})" in first
        assert re.search(
            rf"✓ {alias} \({account}\) {len(running_rds(truth, account))} found in \d+ ms", first
        ), first
    expected = {(WORKLOAD[a], db) for a in WORKLOAD for db in running_rds(truth, a)}
    assert sum(1 for _ in expected) > 0
    assert {(r["Account"], r["ID"]) for r in table(first)} == expected
    assert {r["State"] for r in table(first)} == {"available"}
    assert f"There are {len(expected)} available RDS instances" in first
    # The follow-up: the same question, in staging only.
    assert {(r["Account"], r["ID"]) for r in table(second)} == {
        ("staging", db) for db in running_rds(truth, "333333333333")
    }
    assert "production (222222222222)" not in second
    # /thread prints the id alone, after the follow-up's answer.
    assert f"\n{threads[0]}\n" in second


def test_a_refusal_and_bad_input_are_messages_and_the_chat_goes_on(sandbox, env, truth):
    before = {a: truth.buckets(a) for a in WORKLOAD}
    lines = (
        b"delete every bucket\n"
        b"\n"
        b"   \n"
        b"/bogus\n"
        b"list \x1b[2J buckets\n"
        b"list buckets \xff\xfe\n"
        b"Show me S3 buckets across all accounts\n"
        b"quit\n"
        b"List EC2 instances in production\n"  # after quit: never asked
    )
    done = chat(sandbox, env, lines)
    assert done.returncode == 0, done.stderr
    answers = sections(done.stdout)
    assert list(answers) == ["delete every bucket", "Show me S3 buckets across all accounts"]
    refusal = answers["delete every bucket"]
    assert "opsagent is read-only" in refusal and "plan:" not in refusal
    assert {
        (r["Account"], r["ID"]) for r in table(answers["Show me S3 buckets across all accounts"])
    } == {(alias, bucket) for account, alias in WORKLOAD.items() for bucket in before[account]}
    assert {a: truth.buckets(a) for a in WORKLOAD} == before
    errors = done.stderr.splitlines()
    assert errors == [
        "error: unknown command /bogus: /help lists the commands",
        "error: the question holds a control character U+001B at character 6",
        "error: that line is not UTF-8 text (byte 0xff at offset 13); type it again",
    ]
    assert "\x1b" not in done.stdout


def test_a_new_chat_is_resumed_with_the_thread_id_it_printed(sandbox, env, truth):
    first = chat(sandbox, env, ["List EC2 instances in production"])  # ends at end of input
    assert first.returncode == 0, first.stderr
    (thread,) = set(THREAD.findall(first.stdout))

    done = chat(
        sandbox, env, ["only the running ones", "/new", "only the running ones"], "--thread", thread
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == (
        f"Resuming thread {thread}: 1 earlier question, the last: List EC2 instances in production"
    )
    follow_up = done.stdout.split("─ only the running ones ─")[1]
    running = {i for i, s in truth.ec2_instances("222222222222").items() if s == "running"}
    assert running
    assert {(r["Account"], r["ID"]) for r in table(follow_up)} == {
        ("production", i) for i in running
    }
    assert {r["State"] for r in table(follow_up)} == {"running"}
    # /new: another thread, where the same words have nothing to follow.
    new_threads = set(THREAD.findall(done.stdout)) - {thread}
    assert len(new_threads) == 1
    after_new = done.stdout.split("─ only the running ones ─")[2]
    assert "no earlier question in this conversation" in after_new
    assert "Leaving the conversation, thread " + new_threads.pop() in done.stdout


def test_a_bad_thread_id_or_registry_is_one_line_and_no_chat(sandbox, env, tmp_path):
    done = chat(sandbox, env, ["list buckets"], "--thread", "a#b")
    assert done.returncode == 2
    assert done.stderr.startswith("error: --thread 'a#b': a thread id is")
    assert done.stderr.count("\n") == 1 and done.stdout == ""
    registry = tmp_path / "registry.json"
    registry.write_text('{"accounts": [{"id": "12", "name": "x", "environment": "y"}]}')
    done = chat(sandbox, env, ["list buckets"], "--registry", str(registry))
    assert done.returncode == 1
    assert "12 digits" in done.stderr and "Traceback" not in done.stderr


# ----------------------------------------------------------------- under a terminal

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[=>]|\r")
# The child makes the pseudo-terminal its controlling terminal, so ^C on it is a SIGINT.
CONTROLLING_TTY = (
    "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


class Terminal:
    """A process on a pseudo-terminal: what it printed (escape sequences removed), and keys."""

    def __init__(self, args: list[str], env: dict[str, str], rows: int = 60, cols: int = 200):
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        env = {k: v for k, v in env.items() if k not in ("COLUMNS", "LINES")}
        env["TERM"] = "xterm-256color"
        self.process = subprocess.Popen(
            [sys.executable, "-c", CONTROLLING_TTY, OPSAGENT, *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            cwd=ROOT,
            start_new_session=True,
        )
        os.close(slave)
        self.master = master
        self.text = ""  # everything printed so far
        self.seen = 0  # where the next expect starts looking

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: the process is gone
            return False
        if not data:
            return False
        self.text += ANSI.sub("", data.decode("utf-8", "replace"))
        return True

    def expect(self, pattern: str, timeout: float = 90) -> str:
        """Wait for the pattern (a regex) after what was expected last; what came before it."""
        deadline = time.monotonic() + timeout
        while True:
            found = re.compile(pattern).search(self.text, self.seen)
            if found:
                before = self.text[self.seen : found.start()]
                self.seen = found.end()
                return before
            alive = self._read(min(0.2, max(deadline - time.monotonic(), 0)))
            if time.monotonic() > deadline or not alive:
                raise AssertionError(f"no {pattern!r} in:\n{self.text[self.seen :]}")

    def send(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def wait(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while self._read(0.2) and time.monotonic() < deadline:
            pass
        return self.process.wait(timeout=max(deadline - time.monotonic(), 1))

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.close(self.master)


@pytest.fixture
def terminal(sandbox, env) -> Iterator[Callable[..., Terminal]]:
    opened: list[Terminal] = []

    def open_(*args: str, endpoint: str | None = None) -> Terminal:
        command = chat_args(sandbox, *args)
        if endpoint is not None:
            command[command.index("--mcp-endpoint") + 1] = endpoint
        opened.append(Terminal(command, env))
        return opened[-1]

    yield open_
    for term in opened:
        term.close()


PROMPT = r"opsagent> "


def test_interactive_chat_on_a_terminal(terminal, truth):
    term = terminal()
    start = term.expect(PROMPT)
    (thread,) = THREAD.findall(start)
    assert "/help for commands" in start

    term.send(RDS_QUESTION + "\n")
    first = term.expect(PROMPT)
    # The live board ends with every account's outcome, count and time.
    for account, alias in WORKLOAD.items():
        assert re.search(
            rf"✓ {alias} \({account}\) {len(running_rds(truth, account))} found in \d+ ms", first
        ), first
    expected = {(WORKLOAD[a], db) for a in WORKLOAD for db in running_rds(truth, a)}
    assert {(r["Account"], r["ID"]) for r in table(first)} == expected

    term.send("and in staging?\n")
    second = term.expect(PROMPT)
    assert {(r["Account"], r["ID"]) for r in table(second)} == {
        ("staging", db) for db in running_rds(truth, "333333333333")
    }
    assert "production (222222222222)" not in second

    term.send("/help\n")
    assert "/new" in term.expect(PROMPT)
    term.send("delete every bucket\n")
    assert "opsagent is read-only" in term.expect(PROMPT)
    term.send("\x04")  # Ctrl-D
    assert term.wait() == 0
    assert f"Leaving the conversation, thread {thread}" in term.text[term.seen :]


@pytest.fixture
def slow_mcp(sandbox) -> Iterator[str]:
    """An AWS MCP Server stand-in on the sandbox's AWS whose scripts take 30 s."""
    from opsagent.sandbox.mcp_server import McpServer

    server = McpServer(sandbox.aws_endpoint, script_latency_ms=30_000)
    server.start()
    yield server.endpoint
    server.stop()


def test_ctrl_c_stops_the_running_question_not_the_chat(terminal, slow_mcp, truth):
    term = terminal(endpoint=slow_mcp)
    term.expect(PROMPT)
    term.send("Show me S3 buckets in staging\n")
    term.expect(r"… staging \(333333333333\) querying")
    started = time.monotonic()
    term.send("\x03")  # Ctrl-C
    cancelled = term.expect(PROMPT, timeout=20)
    assert time.monotonic() - started < 10  # not the script's 30 s
    assert "Cancelled: the question was stopped" in cancelled
    assert "staging (333333333333) cancelled" in cancelled
    term.send("/thread\n")
    assert re.search(r"[0-9a-f-]{36}", term.expect(PROMPT))
    # A SIGINT in the instant between readline printing its prompt and waiting for a key
    # is seen only at the next key (CPython's readline loop): give it that instant.
    time.sleep(0.5)
    term.send("\x03")  # at the prompt: leave
    assert term.wait() == 0
    assert "Leaving the conversation" in term.text[term.seen :]


# ----------------------------------------------------------------- the board alone


def _finished(account: str, status: str, count: int = 0, error: str | None = None) -> dict:
    return {
        "event": "account_finished",
        "account_id": account,
        "alias": f"acct-{account[-3:]}",
        "status": status,
        "count": count,
        "elapsed_ms": 12,
        "error": error,
    }


@pytest.mark.parametrize("accounts", [4, 40])
def test_the_board_says_each_accounts_outcome_in_words_and_as_text(accounts):
    """On a terminal: one line per account, or over more accounts than it has lines, a
    summary and the failures; error messages (AWS's words) are text, never markup or
    escape sequences."""
    import io

    from opsagent.registry import load_registry
    from opsagent.service.chat import ProgressBoard
    from opsagent.service.cli import TextConsole

    printed = io.StringIO()
    console = TextConsole(file=printed, force_terminal=True, width=160, height=20)
    board = ProgressBoard(console, load_registry(DEMO_REGISTRY), live=True)
    ids = [f"{n:012d}" for n in range(1, accounts + 1)]
    board.event({"event": "plan", "plan": {"summary": "list [bold]things", "accounts": ids}})
    for account in ids:
        board.event({"event": "account_started", "account_id": account, "alias": "x"})
    denied = "AccessDenied: not authorized to perform sts:AssumeRole [link=https://x]x\x1b[2J"
    board.event(_finished(ids[0], "denied", error=denied))
    board.event(_finished(ids[1], "timeout", error="no answer within 90 s"))
    for account in ids[2:-1]:
        board.event(_finished(account, "ok", count=2))
    board.close(ended="cancelled")  # the last one never finished
    text = ANSI.sub("", printed.getvalue())
    final = text[text.rindex("plan: list [bold]things") :]
    assert "\x1b[2J" not in printed.getvalue() and "\\x1b[2J" in final
    assert f"✗ acct-001 ({ids[0]}) denied: {denied[:-4]}" in final  # markup kept as text
    assert f"✗ acct-002 ({ids[1]}) timeout: no answer within 90 s in 12 ms" in final
    last = ids[-1]
    if accounts == 4:
        assert f"✓ acct-003 ({ids[2]}) 2 found in 12 ms" in final
        assert f"- {last} ({last}) cancelled" in final
    else:
        summary = f"{accounts - 1} of {accounts} accounts done: 1 denied, {accounts - 3} ok, "
        assert summary + "1 timeout; 1 cancelled" in text
        assert "2 found" not in text.rsplit("accounts done", 1)[1]  # ok ones are counted
