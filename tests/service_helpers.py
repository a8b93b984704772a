"""What the service tests share: a real `opsagent serve` process, an SSE reader, fixtures.

A helper module, not a test file. Every server is a real uvicorn process on 127.0.0.1
started the way an operator starts it (`opsagent serve`), spoken to with httpx and httpx-sse.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import jwt
from httpx_sse import aconnect_sse

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
OPSAGENT = str(VENV_BIN / "opsagent")
POSTGRES_URL = os.environ.get(
    "OPSAGENT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)

ALL_ACCOUNTS = "Show me S3 buckets across all accounts"
PRODUCTION, STAGING, DEVELOPMENT = "222222222222", "333333333333", "444444444444"
SESSION_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"
USER_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-User-Id"
THREAD_HEADER = "X-Opsagent-Thread-Id"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without anyone's OPSAGENT_/AWS_ settings, plus these."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPSAGENT_", "AWS_", "LANGGRAPH_", "LANGSMITH_"))
    }
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


class ServiceProcess:
    """`opsagent serve` (or another command) as a child process, until stopped."""

    def __init__(
        self,
        env: dict[str, str],
        workdir: Path,
        *,
        command: list[str] | None = None,
        port: int | None = None,
        health: str = "/ping",
        log_dir: Path | None = None,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.workdir = workdir
        self.health = health
        self.command = command or [
            OPSAGENT,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        self.log_path = (log_dir or workdir) / f"service-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120) -> ServiceProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.command, cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"service exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}{self.health}", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"service did not answer /ping in {timeout}s:\n{self.log()}")

    def stop(self, timeout: float = 30) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"service ignored SIGTERM for {timeout}s:\n{self.log()}") from None

    @property
    def stopped_cleanly(self) -> bool:
        """Exited after a graceful shutdown (uvicorn re-raises the SIGTERM it handled)."""
        return (
            self.proc is not None
            and self.proc.returncode in (0, -signal.SIGTERM)
            and '"event": "service_stopped"' in self.log()
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def sandbox_env(checkpoint_url: str | None, **extra: str) -> dict[str, str]:
    """Nothing configured but the checkpoints (None: the default): the embedded sandbox."""
    if checkpoint_url is not None:
        extra["OPSAGENT_CHECKPOINT_URL"] = checkpoint_url
    return clean_env(**extra)


async def ask(
    client: httpx.AsyncClient,
    question: str,
    *,
    thread_id: str | None = None,
    headers: dict[str, str] | None = None,
    key: str = "prompt",
) -> httpx.Response:
    body: dict[str, Any] = {key: question}
    if thread_id:
        body["thread_id"] = thread_id
    return await client.post("/invocations", json=body, headers=headers or {})


async def stream(
    client: httpx.AsyncClient,
    question: str,
    *,
    thread_id: str | None = None,
    headers: dict[str, str] | None = None,
    fresh: bool = False,
) -> list[tuple[str, Any]]:
    """Every SSE event of one question, as (event, parsed data), in order; ``fresh`` reads
    every account again instead of reusing an earlier question's reads."""
    body: dict[str, Any] = {"prompt": question}
    if thread_id:
        body["thread_id"] = thread_id
    if fresh:
        body["fresh"] = True
    events: list[tuple[str, Any]] = []
    async with aconnect_sse(
        client, "POST", "/invocations", json=body, headers=headers or {}
    ) as source:
        source.response.raise_for_status()
        async for sse in source.aiter_sse():
            events.append((sse.event, json.loads(sse.data)))
    return events


def token(
    secret: str,
    sub: str,
    groups: list[str],
    *,
    audience: str = "opsagent",
    # Modules mint their tokens when imported, and the whole suite runs for more than ten
    # minutes: a token must outlive it.
    expires_in: int = 4 * 3600,
    claim: str = "cognito:groups",
) -> str:
    now = int(time.time())
    return jwt.encode(
        {"sub": sub, claim: groups, "aud": audience, "iat": now, "exp": now + expires_in},
        secret,
        algorithm="HS256",
    )


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


class Blackhole:
    """A TCP server on loopback that accepts, reads and never answers: an account that hangs.

    It counts connections, so a test can see whether work against it stopped.
    """

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self.accepted = 0
        self.open = 0
        self._lock = threading.Lock()
        self._stopped = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stopped:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                self.open += 1
            threading.Thread(target=self._hold, args=(conn,), daemon=True).start()

    def _hold(self, conn: socket.socket) -> None:
        with conn:
            try:
                while conn.recv(65536):
                    pass
            except OSError:
                pass
        with self._lock:
            self.open -= 1

    def close(self) -> None:
        self._stopped = True
        self._sock.close()


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's own server (STS, DynamoDB) in a child process on loopback: its endpoint URL.

    A process of its own, not ThreadedMotoServer: moto's state is process-wide, and a sandbox
    stopping in the test process resets it.
    """
    port = free_port()
    proc = subprocess.Popen(
        [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/moto-api/", timeout=1)
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def demo_registry(groups: dict[str, list[str]] | None = None) -> dict[str, Any]:
    registry = json.loads((ROOT / "opsagent" / "sandbox" / "demo-registry.json").read_text())
    if groups is not None:
        registry["groups"] = groups
    return registry
