"""Run an ``aws___run_script`` script for a verified caller, as the AWS MCP Server's sandbox does.

The real server runs the script's Python in a server-side sandbox with no file system and no
network; AWS is reached only through ``await call_boto3(service_name=..., operation_name=...,
region_name=..., params=...)``, as the credentials that signed the MCP request; top-level
``await`` works and the value of the script's last expression is returned. This module does
the same for the local stand-in, against the AWS endpoint it was given (moto).

What a script may use is checked first (``opsagent.sandbox.script_checks``, tables in
``opsagent.sandbox.script_globals``); AWS calls go through ``opsagent.sandbox.script_aws``.

``call_boto3`` runs the botocore call in a worker thread, signed with the caller's own access
key, secret and session token. Clients are cached per service and region in a bounded LRU and
shared by all callers: each call binds its caller's credentials to the worker thread for the
time of the call, which is when botocore signs (creating a client per caller would cost 8-25
ms per account, service and region). Operation names are the PascalCase API names
(``DescribeInstances``); an unknown service or operation raises ``UnknownOperation`` (a
``ValueError``); keyword arguments only, as the real one. An AWS error raises botocore's own
``ClientError``:
``str(exc)`` is "An error occurred (Code) when calling the Op operation: message" and
``exc.response["Error"]`` holds ``Code`` and ``Message``. Every call that reached botocore is
recorded in ``api_calls`` as ``{"service", "operation", "region", "status": "success" |
"error", "error_code"}``.

Each script runs in a thread of its own with an event loop of its own, so a script that
spins cannot stall the server, and the loop a script could reach is only its own. A script
that outlives the time limit is cancelled and then interrupted with an asynchronous
exception; a long computation inside one C call (``sum(range(10**12))``) cannot be
interrupted before it returns, and memory is not limited: the real sandbox isolates
processes, this stand-in does not. Format strings built at run time can still *stringify*
attributes of the objects handed to them (``"{0.x}".format(obj)``); literal ones that walk
underscored or frame attributes are refused.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import inspect
import logging
import threading
import time
import types
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from opsagent.sandbox.script_aws import (
    BotoClients,
    CallerCredentials,
    UnknownOperation,
)
from opsagent.sandbox.script_checks import (
    MAX_CODE_CHARS,
    MAX_REPORTED_VIOLATIONS,
    REFUSED,
    RESULT_NAME,
    ScriptRefused,
    prepare,
)
from opsagent.sandbox.script_globals import (
    ALLOWED_MODULES,
    MODULE_MEMBERS,
    REFUSED_ATTRIBUTES,
    REFUSED_BUILTINS,
    SAFE_BUILTIN_NAMES,
    SAFE_BUILTINS,
    _sandbox_globals,
)
from opsagent.sandbox.script_results import ScriptOutcome, to_jsonable

__all__ = [
    "ALLOWED_MODULES",
    "DEFAULT_REGION",
    "DEFAULT_TIMEOUT_S",
    "MAX_CODE_CHARS",
    "MAX_REPORTED_VIOLATIONS",
    "MODULE_MEMBERS",
    "REFUSED",
    "REFUSED_ATTRIBUTES",
    "REFUSED_BUILTINS",
    "RESULT_NAME",
    "SAFE_BUILTINS",
    "SAFE_BUILTIN_NAMES",
    "BotoClients",
    "CallerCredentials",
    "ScriptOutcome",
    "ScriptRefused",
    "ScriptRunner",
    "ScriptTimeout",
    "UnknownOperation",
    "prepare",
    "to_jsonable",
]

log = logging.getLogger(__name__)

DEFAULT_REGION = "us-east-1"
DEFAULT_TIMEOUT_S = 300.0


class ScriptTimeout(BaseException):
    """Raised inside a script thread that outlived its time limit (not catchable as Exception)."""


def _error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


# ----- running -----


class ScriptRunner:
    """Runs scripts for verified callers against one AWS endpoint."""

    def __init__(
        self,
        aws_endpoint: str | None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        latency_ms: float = 0,
        max_clients: int = 256,
        max_workers: int = 32,
    ) -> None:
        self.aws_endpoint = aws_endpoint
        self.timeout_s = timeout_s
        self.latency_ms = latency_ms
        self.clients = BotoClients(
            aws_endpoint, max_clients=max_clients, max_connections=max_workers
        )
        self._pool = ThreadPoolExecutor(max_workers, thread_name_prefix="opsagent-sandbox-boto3")

    async def run(
        self, code: str, creds: CallerCredentials, default_region: str = DEFAULT_REGION
    ) -> ScriptOutcome:
        started = time.perf_counter()
        try:
            compiled = prepare(code)
        except ScriptRefused as refused:
            outcome = ScriptOutcome("error", error=f"{REFUSED}: {refused}")
        except SyntaxError as error:
            outcome = ScriptOutcome(
                "error", error=f"SyntaxError: {error.msg} (line {error.lineno})"
            )
        else:
            outcome = await _Execution(self, compiled, creds, default_region).run(self.timeout_s)
        # The injected latency is the least time an answer takes, work included, as the real
        # server's 13-15 s include running the script: waiting first and working after would
        # make every script of a question do its work at the same moment.
        if self.latency_ms > 0:
            await asyncio.sleep(max(0.0, self.latency_ms / 1000 - (time.perf_counter() - started)))
        outcome.elapsed_s = time.perf_counter() - started
        return outcome

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.clients.close()


class _Execution:
    """One script, in a thread of its own with an event loop of its own."""

    def __init__(
        self,
        runner: ScriptRunner,
        compiled: types.CodeType,
        creds: CallerCredentials,
        default_region: str,
    ) -> None:
        self.runner = runner
        self.compiled = compiled
        self.creds = creds
        self.default_region = default_region
        self.api_calls: list[dict[str, Any]] = []
        self.output: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None
        self._thread: threading.Thread | None = None
        self._interrupts = 0

    async def call_boto3(
        self,
        *,
        service_name: str,
        operation_name: str,
        region_name: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        if not isinstance(service_name, str) or not isinstance(operation_name, str):
            raise TypeError("service_name and operation_name must be strings")
        if region_name is not None and not isinstance(region_name, str):
            raise TypeError("region_name must be a string or None")
        if params is not None and not isinstance(params, dict):
            raise TypeError("params must be a dict or None")
        clients = self.runner.clients
        method = clients.method_name(service_name, operation_name)
        region = region_name or self.default_region
        record: dict[str, Any] = {
            "service": service_name,
            "operation": operation_name,
            "region": region,
            "status": "pending",
            "error_code": None,
        }
        self.api_calls.append(record)
        loop = asyncio.get_running_loop()
        try:
            response = await loop.run_in_executor(
                self.runner._pool,
                functools.partial(
                    clients.call, self.creds, service_name, region, method, dict(params or {})
                ),
            )
        except ClientError as error:
            record["status"] = "error"
            record["error_code"] = error.response.get("Error", {}).get("Code")
            raise
        except BaseException:
            record["status"] = "error"
            raise
        record["status"] = "success"
        return response

    async def _main(self) -> Any:
        async def call_boto3(
            *,
            service_name: str,
            operation_name: str,
            region_name: str | None = None,
            params: dict[str, Any] | None = None,
        ) -> dict[str, Any]:
            return await self.call_boto3(
                service_name=service_name,
                operation_name=operation_name,
                region_name=region_name,
                params=params,
            )

        namespace = _sandbox_globals(call_boto3, self.output)
        # The code was checked by prepare(); it runs with the sandbox's builtins only.
        result = eval(self.compiled, namespace)
        if inspect.iscoroutine(result):
            await result
        return namespace.get(RESULT_NAME)

    def _thread_main(self, done: Callable[[ScriptOutcome], None]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        outcome: ScriptOutcome
        try:
            self._task = loop.create_task(self._main())
            value = loop.run_until_complete(self._task)
            outcome = ScriptOutcome("success", return_value=to_jsonable(value))
        except BaseException as error:  # the script's failure is its answer
            outcome = ScriptOutcome("error", error=_error_text(error))
        try:
            _cancel_leftovers(loop)
        except BaseException:  # a late interrupt must not lose the outcome
            log.debug("script loop cleanup interrupted", exc_info=True)
        finally:
            loop.close()
        outcome.api_calls = self._finished_calls()
        outcome.output = "".join(self.output)
        done(outcome)

    def _finished_calls(self) -> list[dict[str, Any]]:
        calls = [dict(call) for call in self.api_calls]
        for call in calls:
            if call["status"] == "pending":  # still running when the script ended
                call["status"] = "error"
        return calls

    async def run(self, timeout_s: float) -> ScriptOutcome:
        server_loop = asyncio.get_running_loop()
        finished: asyncio.Future[ScriptOutcome] = server_loop.create_future()

        def done(outcome: ScriptOutcome) -> None:
            def settle() -> None:
                if not finished.done():
                    finished.set_result(outcome)

            try:
                server_loop.call_soon_threadsafe(settle)
            except RuntimeError:  # the server loop is gone
                pass

        self._thread = threading.Thread(
            target=self._thread_main, args=(done,), name="opsagent-sandbox-script", daemon=True
        )
        self._thread.start()
        try:
            return await asyncio.wait_for(asyncio.shield(finished), timeout_s)
        except TimeoutError:
            self.abort()
            return ScriptOutcome(
                "error",
                error=f"TimeoutError: the script did not finish within {timeout_s:g} s",
                api_calls=self._finished_calls(),
            )
        except BaseException:  # the MCP request was cancelled: so is the script
            self.abort()
            raise

    def abort(self) -> None:
        """Cancel the script's task; interrupt its thread if it does not stop by itself."""
        loop, task = self._loop, self._task
        if loop is not None and task is not None:
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:  # the loop is already closed: the script ended
                return
        timer = threading.Timer(1.0, self._interrupt)
        timer.daemon = True
        timer.start()

    def _interrupt(self) -> None:
        thread = self._thread
        if thread is None or not thread.is_alive() or self._interrupts >= 20:
            return
        self._interrupts += 1
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(thread.ident or 0), ctypes.py_object(ScriptTimeout)
        )
        timer = threading.Timer(0.5, self._interrupt)
        timer.daemon = True
        timer.start()


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    """Tasks the script started and did not await: cancelled, as the script is over."""
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
