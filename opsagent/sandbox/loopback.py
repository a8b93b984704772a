"""An ASGI app under uvicorn on a loopback socket, in a background thread with its own event
loop: how the sandbox's stand-ins (the AWS MCP Server's, AgentCore Gateway's) serve.

The socket is bound before the loop starts, so the port is known at once (port 0: a free one).
Their uvicorn logs to the process-wide "uvicorn.error" logger, like the embedding service's
own uvicorn: their start and stop lines would read as the service's, twice. Their records are
told apart by the thread's name and dropped below warnings.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from typing import Any

import uvicorn

from opsagent.sandbox.moto_server import require_loopback

THREAD_PREFIX = "opsagent-sandbox-"


class _QuietStandIns(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        quiet = (record.threadName or "").startswith(THREAD_PREFIX)
        return not quiet or record.levelno >= logging.WARNING


logging.getLogger("uvicorn.error").addFilter(_QuietStandIns())


class LoopbackServer:
    """``app`` served on ``host:port`` (loopback only) from a thread named ``name``."""

    def __init__(self, host: str, port: int, name: str) -> None:
        require_loopback(host)
        self.host = host
        self.port = port
        self.name = THREAD_PREFIX + name
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._error: BaseException | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port)."""
        if self._socket is None:
            raise RuntimeError(f"{self.name} is not running")
        host, port = self._socket.getsockname()[:2]
        return host, port

    def start(self, app: Any, timeout: float = 15.0) -> None:
        self._socket = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((self.host, self.port))
        config = uvicorn.Config(
            app,
            # The embedding process (the CLI or `opsagent serve`) owns logging: without
            # log_config=None uvicorn would reconfigure the process-wide uvicorn loggers.
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        self._server = server
        sock = self._socket

        def serve() -> None:
            try:
                asyncio.run(server.serve(sockets=[sock]))
            except BaseException as error:  # surfaced by start()
                self._error = error

        self._thread = threading.Thread(target=serve, name=self.name, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not start: {self._error!r}")
            time.sleep(0.005)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None
