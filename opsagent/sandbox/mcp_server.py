"""A local stand-in for the AWS MCP Server: its read tools, over streamable HTTP, SigV4-checked.

What the real server offers and how it answers, as found (and matched here):

* Tool names carry the ``aws___`` prefix of the managed AWS MCP Server
  (https://aws-mcp.us-east-1.api.aws/mcp): the AWS agent-toolkit user guide page
  "understanding-mcp-server-tools" lists ``aws___list_regions`` among the knowledge tools and
  ``aws___call_aws``, ``aws___run_script`` among the API tools. mcp-proxy-for-aws's
  integration test (tests/integ/test_aws_mcp_server_happy_path.py) calls
  ``aws___call_aws`` with ``{"cli_command": "aws lambda list-functions", "max_results": 10}``
  and ``aws___list_regions`` with ``{}`` and expects JSON text back.
* The same user guide says ``aws___call_aws`` was deprecated on 15 July 2026 and will be
  removed on 31 August 2026 in favour of ``aws___run_script`` (Python with a ``call_boto3``
  helper, input ``{"code": str}``). It is offered here because the agent is built on it;
  ``aws___run_script`` is not (it executes arbitrary code; see the report).
* ``aws___call_aws``'s input schema and result follow the open-source server it comes from,
  awslabs/mcp src/aws-api-mcp-server (server.py ``call_aws``; core/common/models.py):
  ``cli_command: str | list[str]``, ``max_results: int | None``; the result is a list of
  ``CallAWSResponse``, each serialized as ``{"cli_command", "response": {"error",
  "status_code", "error_code", "pagination_token", "as_json"}, "metadata": {"service",
  "service_full_name", "operation", "region_name"}, "validation_failures",
  "missing_context_failures", "failed_constraints"}`` (the API answer is the JSON *string*
  ``response.as_json``; "as_json" because the model is dumped without aliases), or
  ``{"cli_command", "error"}`` when the call itself failed. ``--region *`` runs the command
  in every enabled region, as the real one does.
  Where this differs from the newest open-source server, which always answers a list (even
  for one command): one command run answers its object itself (text = that JSON object,
  ``structuredContent`` = the object), as the single-command ``cli_command: str`` tool did;
  several (a list input, or ``--region *``) answer the array (text = JSON array,
  ``structuredContent = {"result": [...]}``, FastMCP's wrapping of non-object results). And a
  command that cannot be run at all (not AWS CLI syntax, unknown service or operation, bad
  arguments) is an MCP tool error (``isError: true``) whose text says why, rather than a
  per-command ``error`` entry.
* ``aws___list_regions`` answers ``{"content": {"result": [{"region_id",
  "region_long_name"}]}}`` in its text, the shape a public client of the real server parses;
  the regions come from botocore's partition data.

Every request must be SigV4-signed for service ``aws-mcp`` in ``us-east-1`` (sigv4.py); the
access key in the signature decides the identity, and the command runs with the caller's own
credentials against the AWS endpoint the server was given, never with an identity of its own.
The stand-in has no read-only guard of its own: the agent's client-side guard is the
product's promise, as it would be against the real server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable
from typing import Annotated, Any

import anyio
import botocore.session
import uvicorn
from mcp.server.fastmcp import Context, FastMCP
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from opsagent.sandbox.aws_cli import (
    AwsExecutor,
    CallerCredentials,
    CliParser,
    CommandError,
)
from opsagent.sandbox.identity import resolve_access_key
from opsagent.sandbox.moto_server import require_loopback
from opsagent.sandbox.sigv4 import (
    CALLER_SCOPE_KEY,
    Caller,
    SecretResolver,
    SigV4Middleware,
    SigV4Verifier,
)

log = logging.getLogger(__name__)

MCP_SERVICE = "aws-mcp"
MCP_REGION = "us-east-1"
MCP_PATH = "/mcp"
MAX_BATCH_COMMANDS = 20
_REGION_WILDCARD = re.compile(r"--region\s+\*(?=\s|$)")
# moto ignores signatures; when the caller's secret cannot be resolved, any value signs.
_UNRESOLVED_SECRET = "secret-not-resolvable-by-the-sandbox"

_CALL_AWS_DESCRIPTION = """Run AWS CLI commands and return the API responses as JSON.
- cli_command: one command or a list of commands; each MUST start with "aws" and follow AWS CLI
  syntax (aws SERVICE OPERATION [--options]). Shell features (pipes, redirection, variables)
  are not supported.
- Commands run in us-east-1 unless they carry --region; use --region * to run a command in
  every enabled region.
- max_results limits the number of items of paginated operations; a truncated result carries
  a pagination_token to pass back with --starting-token.
- --query (JMESPath) filters the result client-side; its value is returned under "Result".
Each command's answer has the API response as a JSON string under response.as_json, or the
service error under response.error / status_code / error_code."""

_LIST_REGIONS_DESCRIPTION = "List all AWS regions with their identifiers and names."


class CommandRunner:
    """Runs call_aws commands for verified callers against one AWS endpoint."""

    def __init__(self, aws_endpoint: str) -> None:
        self.aws_endpoint = aws_endpoint
        self.parser = CliParser()
        self.executor = AwsExecutor(aws_endpoint)

    def credentials(self, caller: Caller) -> CallerCredentials:
        return CallerCredentials(
            access_key_id=caller.access_key_id,
            secret_access_key=caller.secret_access_key or _UNRESOLVED_SECRET,
            session_token=caller.session_token,
        )

    def expand_regions(self, cli_command: str, caller: Caller) -> list[str]:
        """``--region *`` becomes one command per enabled region of the caller's account."""
        if _REGION_WILDCARD.search(cli_command) is None:
            return [cli_command]
        regions = self.executor.enabled_regions(self.credentials(caller))
        return [_REGION_WILDCARD.sub(f"--region {region}", cli_command) for region in regions]

    def run(self, cli_command: str, caller: Caller, max_results: int | None) -> dict[str, Any]:
        parsed = self.parser.parse(cli_command)
        started = time.perf_counter()
        result = self.executor.run(parsed, self.credentials(caller), max_results)
        response = result.get("response") or {}
        log.info(
            "aws call",
            extra={
                "caller": caller.arn or caller.access_key_id,
                "account": caller.account_id,
                "command": cli_command,
                "status_code": response.get("status_code"),
                "error_code": response.get("error_code") or result.get("error"),
                "elapsed_ms": round((time.perf_counter() - started) * 1000),
            },
        )
        return result


def _caller(ctx: Context) -> Caller:
    request = ctx.request_context.request
    caller = request.scope.get(CALLER_SCOPE_KEY) if request is not None else None
    if not isinstance(caller, Caller):
        # Cannot happen behind SigV4Middleware; refuse rather than act as nobody.
        raise PermissionError("request is not authenticated")
    return caller


def _tool_error(message: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=message)], isError=True)


def _region_list() -> list[dict[str, str]]:
    loader = botocore.session.get_session().get_component("data_loader")
    partitions = loader.load_data("endpoints")["partitions"]
    regions = next(p for p in partitions if p["partition"] == "aws")["regions"]
    return [
        {"region_id": region, "region_long_name": data.get("description", region)}
        for region, data in sorted(regions.items())
    ]


def build_mcp(runner: CommandRunner, host: str = "127.0.0.1") -> FastMCP:
    """The MCP server with the AWS MCP Server's tool names, schemas and result shapes."""
    mcp = FastMCP(
        name="aws-mcp",
        instructions="Local stand-in for the AWS MCP Server (opsagent sandbox).",
        host=host,
        # No server-side sessions: each signed request stands alone, as each carries its caller.
        stateless_http=True,
        log_level="WARNING",
    )
    regions = _region_list()

    @mcp.tool(
        name="aws___call_aws",
        description=_CALL_AWS_DESCRIPTION,
        annotations=ToolAnnotations(
            title="Execute AWS CLI commands", readOnlyHint=False, openWorldHint=True
        ),
    )
    async def call_aws(
        cli_command: Annotated[
            str | list[str],
            Field(description="A single command or a list of complete AWS CLI commands to execute"),
        ],
        ctx: Context,
        max_results: Annotated[
            int | None,
            Field(description="Optional limit for number of results (useful for pagination)"),
        ] = None,
    ) -> CallToolResult:
        caller = _caller(ctx)
        commands = [cli_command] if isinstance(cli_command, str) else list(cli_command)
        if not commands:
            return _tool_error("No command given: cli_command must name at least one command.")
        if len(commands) > MAX_BATCH_COMMANDS:
            return _tool_error(
                f"Number of batch commands exceeds the maximum limit of {MAX_BATCH_COMMANDS}."
            )
        if max_results is not None and max_results < 1:
            return _tool_error("max_results must be a positive number.")
        results: list[dict[str, Any]] = []
        try:
            for command in commands:
                expanded = await anyio.to_thread.run_sync(runner.expand_regions, command, caller)
                for one in expanded:
                    results.append(
                        await anyio.to_thread.run_sync(runner.run, one, caller, max_results)
                    )
        except CommandError as error:
            return _tool_error(f"Error while validating the command: {error}")
        except Exception as error:  # the stand-in must answer, never crash
            log.exception("call_aws failed", extra={"command": commands})
            return _tool_error(f"Error while executing the command: {error}")
        # One command run: its CallAWSResponse itself. Several (a list, or --region *): the
        # array, wrapped as FastMCP wraps non-object results.
        if len(results) == 1:
            return CallToolResult(
                content=[TextContent(type="text", text=json.dumps(results[0]))],
                structuredContent=results[0],
            )
        return CallToolResult(
            content=[TextContent(type="text", text=json.dumps(results))],
            structuredContent={"result": results},
        )

    @mcp.tool(
        name="aws___list_regions",
        description=_LIST_REGIONS_DESCRIPTION,
        annotations=ToolAnnotations(title="List AWS regions", readOnlyHint=True),
    )
    async def list_regions() -> CallToolResult:
        payload = {"content": {"result": regions}}
        return CallToolResult(
            content=[TextContent(type="text", text=json.dumps(payload))],
            structuredContent=payload,
        )

    return mcp


def build_app(
    aws_endpoint: str,
    resolver: SecretResolver | None,
    host: str = "127.0.0.1",
) -> tuple[Callable[..., Any], FastMCP]:
    """The ASGI app: SigV4 in front of FastMCP's streamable-HTTP app (path /mcp)."""
    mcp = build_mcp(CommandRunner(aws_endpoint), host=host)
    verifier = SigV4Verifier(MCP_SERVICE, MCP_REGION, resolver)
    return SigV4Middleware(mcp.streamable_http_app(), verifier), mcp


class McpServer:
    """The stand-in under uvicorn on loopback, in a background thread with its own event loop."""

    def __init__(
        self,
        aws_endpoint: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        resolver: SecretResolver | None = resolve_access_key,
    ) -> None:
        require_loopback(host)
        self.aws_endpoint = aws_endpoint
        self._host = host
        self._port = port
        self._resolver = resolver
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._error: BaseException | None = None

    @property
    def endpoint(self) -> str:
        if self._socket is None:
            raise RuntimeError("the MCP server is not running")
        host, port = self._socket.getsockname()[:2]
        return f"http://{host}:{port}{MCP_PATH}"

    def start(self, timeout: float = 15.0) -> None:
        if self._server is not None:
            return
        app, _ = build_app(self.aws_endpoint, self._resolver, host=self._host)
        _log_verification_mode(self._resolver, self.aws_endpoint)
        # Bind first, so the port is known (port 0 = a free one) before the loop starts.
        self._socket = socket.socket(socket.AF_INET6 if ":" in self._host else socket.AF_INET)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((self._host, self._port))
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

        self._thread = threading.Thread(target=serve, name="opsagent-sandbox-mcp", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the MCP server did not start: {self._error!r}")
            time.sleep(0.005)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._server = None
        self._thread = None
        self._socket = None


def _log_verification_mode(resolver: SecretResolver | None, aws_endpoint: str) -> None:
    if resolver is None:
        log.warning(
            "SigV4 signatures are checked for structure, scope and time only: secrets of "
            "access keys cannot be resolved for %s, so signatures are not recomputed",
            aws_endpoint,
        )
    else:
        log.info("SigV4 signatures are verified against moto's in-process access keys")


def serve_forever(aws_endpoint: str, host: str = "127.0.0.1", port: int = 0) -> None:
    """Run only the MCP stand-in, in the foreground, against an AWS endpoint it did not seed.

    Secrets cannot be resolved for a moto in another process, so signatures get the
    structural checks only (logged at start).
    """
    require_loopback(host)
    app, _ = build_app(aws_endpoint, None, host=host)
    _log_verification_mode(None, aws_endpoint)
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        bound_host, bound_port = sock.getsockname()[:2]
        log.warning("AWS MCP stand-in on http://%s:%s%s", bound_host, bound_port, MCP_PATH)
        config = uvicorn.Config(app, log_level="info", access_log=False, lifespan="on")
        uvicorn.Server(config).run(sockets=[sock])
