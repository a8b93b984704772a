"""The Dockerfile, without a Docker engine: its final stage's CMD, run from the venv, serves.

AgentCore Runtime needs linux/arm64, 0.0.0.0:8080, /ping and /invocations; the image must
run as a non-root user and install the package from pyproject.toml.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import httpx

from tests.service_helpers import ROOT, ServiceProcess, clean_env, free_port

DOCKERFILE = ROOT / "Dockerfile"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per logical line: comments dropped, continuations joined."""
    joined: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in joined]


def final_stage() -> list[tuple[str, str]]:
    parsed = instructions(DOCKERFILE.read_text())
    last_from = max(i for i, (name, _) in enumerate(parsed) if name == "FROM")
    return parsed[last_from:]


def stage_env(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for name, args in stage:
        if name == "ENV":
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def test_dockerfile_fits_agentcore_runtime() -> None:
    parsed = instructions(DOCKERFILE.read_text())
    stage = final_stage()
    froms = [args for name, args in parsed if name == "FROM"]
    assert all("python:3.11" in args for args in froms)
    # Nothing pins one architecture: `buildx --platform linux/arm64,linux/amd64` builds both.
    assert not any("linux/amd64" in args or "linux/arm64" in args for args in froms)
    assert any(name == "RUN" and "pip install ." in args for name, args in parsed)
    assert any(name == "COPY" and "pyproject.toml" in args for name, args in parsed)

    [user] = [args for name, args in stage if name == "USER"]
    assert user.split(":")[0] not in {"root", "0"}
    assert ("EXPOSE", "8080") in stage
    env = stage_env(stage)
    assert env["OPSAGENT_HOST"] == "0.0.0.0" and env["OPSAGENT_PORT"] == "8080"
    [cmd] = [args for name, args in stage if name == "CMD"]
    assert json.loads(cmd) == ["opsagent", "serve"]  # exec form: signals reach the server
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".git"} <= set(ignored)


def test_the_dockerfile_command_serves_ping(tmp_path: Path) -> None:
    stage = final_stage()
    [cmd] = [json.loads(args) for name, args in stage if name == "CMD"]
    env = {k: v for k, v in stage_env(stage).items() if k != "PATH"}  # PATH: the venv's
    port = free_port()
    env.update(OPSAGENT_PORT=str(port), OPSAGENT_HOST="127.0.0.1")  # loopback only in tests
    # The working directory stands in for WORKDIR: the default SQLite checkpoints go there.
    with ServiceProcess(clean_env(**env), tmp_path, command=cmd, port=port) as service:
        ping = httpx.get(f"{service.url}/ping", timeout=10)
        assert ping.status_code == 200
        body = ping.json()
        assert body["status"] == "Healthy" and isinstance(body["time_of_last_update"], int)
        answer = httpx.post(
            f"{service.url}/invocations",
            timeout=120,
            json={"prompt": "List EC2 instances in production"},
        )
        assert answer.status_code == 200, answer.text
    assert (tmp_path / ".opsagent" / "checkpoints.sqlite").exists()
