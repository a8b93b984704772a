"""Where the service listens decides what it may serve, and what it writes down.

The embedded sandbox is the default for `demo`, `ask` and a local `serve`; a service
listening beyond loopback (a deployed container, AgentCore Runtime's 0.0.0.0:8080) refuses to
answer from its made-up accounts unless told it may, and every sandbox answer says so. The
service's log is one stream of JSON lines; the CLI prints no audit lines unless asked to.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import OPSAGENT
from tests.service_helpers import ServiceProcess, free_port, sandbox_env

QUESTION = "How many RDS instances are running in each account?"
NOTICE = "(Sandbox: these are made-up demo accounts, not your AWS.)"


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [OPSAGENT, *args],
        capture_output=True,
        text=True,
        env=sandbox_env("memory://", **env),
        timeout=180,
    )


@pytest.mark.parametrize(
    ("args", "env"),
    [(["--host", "0.0.0.0"], {}), ([], {"OPSAGENT_HOST": "0.0.0.0"})],
    ids=["--host", "OPSAGENT_HOST"],
)
def test_a_service_beyond_loopback_refuses_the_sandbox(args: list[str], env: dict) -> None:
    done = _cli("serve", *args, "--port", str(free_port()), **env)
    assert done.returncode == 1
    assert "refusing to serve the embedded sandbox's made-up accounts on 0.0.0.0" in done.stderr
    assert "OPSAGENT_ALLOW_SANDBOX=true" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) <= 4


@pytest.fixture(scope="module")
def exposed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """The sandbox shown beyond loopback on purpose, without authentication."""
    workdir = tmp_path_factory.mktemp("exposed")
    port = free_port()
    env = sandbox_env("memory://", OPSAGENT_ALLOW_SANDBOX="true")
    command = [OPSAGENT, "serve", "--host", "0.0.0.0", "--port", str(port)]
    with ServiceProcess(env, workdir, command=command, port=port) as proc:
        yield proc


def test_every_sandbox_answer_says_so(exposed: ServiceProcess) -> None:
    body = httpx.post(f"{exposed.url}/invocations", json={"prompt": QUESTION}, timeout=60).json()
    assert body["sandbox"] is True
    assert body["answer"].endswith(NOTICE)


def test_the_service_log_is_one_json_stream_and_warns_without_auth(
    exposed: ServiceProcess,
) -> None:
    httpx.post(f"{exposed.url}/invocations", json={"prompt": QUESTION}, timeout=60)
    lines = [line for line in exposed.log().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line: one JSON object
    assert all({"event", "level", "logger"} <= set(r) for r in records)
    events = [r["event"] for r in records]
    assert sum(e.startswith("Started server process") for e in events) == 1
    assert sum(e == "Application startup complete." for e in events) == 1
    warning = next(r for r in records if r["event"] == "no_authentication")
    assert warning["level"] == "warning" and "any" in warning["message"]
    # The audit trail is on stdout in the service (the log file here holds both).
    assert any(r["event"] == "question" and r["logger"] == "opsagent.audit" for r in records)


def test_the_cli_prints_no_audit_lines_unless_asked() -> None:
    quiet = _cli("ask", QUESTION)
    assert quiet.returncode == 0, quiet.stderr
    assert NOTICE.split(":")[0] in quiet.stdout
    assert '"event"' not in quiet.stderr
    audited = _cli("ask", QUESTION, OPSAGENT_AUDIT_LOG="stderr")
    assert audited.returncode == 0, audited.stderr
    records = [json.loads(x) for x in audited.stderr.splitlines() if x.startswith("{")]
    question = next(r for r in records if r["event"] == "question")
    assert question["question"] == QUESTION and question["outcome"] == "answered"
    assert {r["event"] for r in records} >= {"question", "aws.script", "sts.assume_role"}
