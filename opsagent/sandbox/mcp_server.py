"""A local stand-in for the AWS MCP Server: its eight tools, over streamable HTTP, SigV4-checked.

What the real server offers and how it answers (https://aws-mcp.us-east-1.api.aws/mcp):

* ``aws___call_aws`` is gone. The AWS agent-toolkit user guide page "Understanding the MCP
  Server tools" (https://docs.aws.amazon.com/aws-mcp/latest/userguide/understanding-mcp-server-tools.html)
  deprecated it on 15 July 2026 for removal on 31 August 2026, in favour of
  ``aws___run_script``; since then ``tools/list`` returns eight tools -- ``aws___run_script``,
  ``aws___list_regions``, ``aws___get_regional_availability``, ``aws___search_documentation``,
  ``aws___read_documentation``, ``aws___retrieve_skill``, ``aws___get_presigned_url``,
  ``aws___get_tasks`` -- and ``tools/call aws___call_aws`` answers the JSON-RPC error
  ``{"code": -32600, "message": "The call_aws tool has been removed, use another one."}``
  (awslabs/mcp issue #4581 and PR #4584, which fixes src/aws-api-mcp-server/MIGRATION.md;
  aws/agent-toolkit-for-aws issue #294).
* ``aws___run_script`` takes ``{"code": str}``: Python run in a server-side sandbox with no file
  system and no network; AWS is reached only through ``await call_boto3(service_name=...,
  operation_name=<PascalCase API name>, region_name=..., params={...})`` (keyword arguments),
  as the credentials that signed the MCP request; top-level ``await`` works; the value of the
  script's last expression is returned. The answer is ``{"status", "return_value",
  "api_calls": [{"service", "operation", "status", ...}]}``. A one-call script takes about
  13-15 s on the real server. mcp-proxy-for-aws's client can send ``metadata`` (it lands in
  the JSON-RPC ``params._meta``); ``AWS_REGION`` there is the default region for operations,
  us-east-1 when absent. (In mcp-proxy-for-aws 1.7.0, ``aws_iam_streamablehttp_client(
  metadata=...)`` rewrites the body after signing it and keeps the old Content-Length, so
  the request fails before it leaves; ``ClientSession.call_tool(..., meta={"AWS_REGION":
  ...})`` puts the same ``_meta`` into the signed body and works.)
* The other tools' input schemas, as the glama.ai MCP catalogue lists them for the managed
  server (connector pages of aws-knowledge and of gateways that proxy aws-mcp):
  ``aws___list_regions`` ``{}``; ``aws___get_regional_availability`` ``resource_type``
  (product | api | cfn, required), ``regions`` (at most 10; several need ``filters``),
  ``filters`` (exact catalogue names: 'Amazon Bedrock', 'EC2+DescribeInstances',
  'AWS::EC2::Instance'), ``next_token``, ``region`` (unused); ``aws___search_documentation``
  ``search_phrase`` (required), ``topics``, ``limit``; ``aws___read_documentation``
  ``requests: [{url, max_length?, start_index?}]``; ``aws___retrieve_skill`` ``skill_name``
  (required), ``file``; ``aws___get_presigned_url`` ``requests`` (1-25, required);
  ``aws___get_tasks`` ``task_ids`` (up to 3, required), ``poll_iteration``.

What this stand-in does:

* ``aws___run_script`` runs the script locally (script_runner.py): as the verified caller,
  against the AWS endpoint the server was given (moto), default region from ``_meta``
  ``AWS_REGION``. Its answer is ``CallToolResult(content=[TextContent(json)],
  structuredContent=payload)`` with payload ``{"status": "success", "return_value": <JSON;
  datetimes as ISO strings, anything else non-JSON via str()>, "api_calls": [{"service",
  "operation", "region", "status": "success" | "error", "error_code"}]}``, or, when an
  exception escapes the script or the script is refused, ``{"status": "error", "error":
  "<ExceptionType>: <message>", "api_calls": [...]}`` with ``isError: true``.
* Differences from the real one: what the real sandbox lacks is refused *before* the script
  runs (imports outside a small stdlib allow-list, open/exec/eval/getattr and friends, names
  and attributes starting with an underscore, class definitions, attribute assignment), so
  a script that passes here passes there, while the real sandbox may allow more; the
  per-script time limit defaults to 300 s; the real server's latency is not imitated unless
  ``script_latency_ms`` asks for it (0 by default, the real one is ~13-15 s; it is the least
  time an answer takes, the script's own work included, as on the real server); the
  ``api_calls`` entries carry exactly the five keys above; moto does not evaluate IAM, so
  AccessDenied is never seen for a permission the caller's role lacks.
* ``aws___list_regions`` answers ``{"content": {"result": [{"region_id",
  "region_long_name"}]}}`` from botocore's partition data, the shape a public client of the
  real server parses. The documentation tools, ``aws___retrieve_skill`` and
  ``aws___get_regional_availability`` answer short canned text saying this is the offline
  sandbox (no documentation, skills or availability catalogue here);
  ``aws___get_presigned_url`` is a tool error (the sandbox issues no pre-signed URLs);
  ``aws___get_tasks`` answers no tasks (every tool call here runs to completion).
* ``tools/call aws___call_aws`` answers the real server's JSON-RPC error -32600.

Every request must be SigV4-signed for service ``aws-mcp`` in ``us-east-1`` (sigv4.py); the
access key in the signature decides the identity, and scripts run with the caller's own
credentials, never with an identity of the server's. The stand-in has no read-only guard of
its own: the agent's client-side guard is the product's promise, as it would be against the
real server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal

import botocore.session
import uvicorn
from mcp.server.fastmcp import Context, FastMCP
from mcp.shared.exceptions import McpError
from mcp.types import (
    INVALID_REQUEST,
    CallToolRequest,
    CallToolResult,
    ErrorData,
    TextContent,
    ToolAnnotations,
)
from pydantic import BaseModel, Field

from opsagent.sandbox.identity import resolve_access_key
from opsagent.sandbox.moto_server import require_loopback
from opsagent.sandbox.script_runner import (
    ALLOWED_MODULES,
    DEFAULT_REGION,
    DEFAULT_TIMEOUT_S,
    CallerCredentials,
    ScriptOutcome,
    ScriptRunner,
)
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
REMOVED_TOOL = "aws___call_aws"
REMOVED_TOOL_MESSAGE = "The call_aws tool has been removed, use another one."
# moto ignores signatures; when the caller's secret cannot be resolved, any value signs.
_UNRESOLVED_SECRET = "secret-not-resolvable-by-the-sandbox"
_OFFLINE = "This is the opsagent offline sandbox (a local stand-in for the AWS MCP Server)"

_RUN_SCRIPT_DESCRIPTION = f"""Execute Python code in a sandboxed environment with AWS API \
access via call_boto3. No file system; no network except call_boto3.

async def call_boto3(
    *,
    service_name: str,
    operation_name: str,
    region_name: str | None = None,
    params: dict | None = None,
) -> dict: ...  # the AWS response itself

operation_name MUST be the PascalCase AWS API operation name (e.g. DescribeInstances,
ListBuckets), not the snake_case boto3 method name. region_name defaults to the AWS_REGION
the client sent in its request metadata, else us-east-1. An AWS error raises an exception
whose str() carries the error code; exc.response["Error"] has Code and Message.
Top-level await works; the value of the script's last expression is returned as
return_value, with every AWS call listed in api_calls.
Imports: {", ".join(ALLOWED_MODULES)}."""

_REGIONAL_AVAILABILITY_DESCRIPTION = """AWS resource availability per region.
- Max 10 regions; multi-region needs filters; single-region supports next_token.
- Status: isAvailableIn | isNotAvailableIn | isPlannedIn | Not Found.
- Response key: products | service_apis | cfn_resources.
Filter values must exactly match AWS's catalog names."""

_RESPONSE_KEYS = {"product": "products", "api": "service_apis", "cfn": "cfn_resources"}


class ReadRequest(BaseModel):
    url: Annotated[str, Field(description="Exact URL of an AWS documentation page.")]
    max_length: Annotated[int | None, Field(description="Characters to return (10000).")] = None
    start_index: Annotated[int | None, Field(description="Where to start (0).")] = None


class ScriptLog:
    """Every run_script call of a server, as (account_id, number of API calls); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[tuple[str | None, int]] = []

    def append(self, entry: tuple[str | None, int]) -> None:
        with self._lock:
            self._entries.append(entry)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def snapshot(self) -> list[tuple[str | None, int]]:
        with self._lock:
            return list(self._entries)

    def per_account(self) -> dict[str | None, int]:
        """Number of scripts per account."""
        counts: dict[str | None, int] = {}
        for account, _ in self.snapshot():
            counts[account] = counts.get(account, 0) + 1
        return counts

    def __iter__(self) -> Iterator[tuple[str | None, int]]:
        return iter(self.snapshot())

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __getitem__(self, index: int) -> tuple[str | None, int]:
        with self._lock:
            return self._entries[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ScriptLog):
            return self.snapshot() == other.snapshot()
        if isinstance(other, list):
            return self.snapshot() == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ScriptLog({self.snapshot()!r})"


def _caller(ctx: Context) -> Caller:
    request = ctx.request_context.request
    caller = request.scope.get(CALLER_SCOPE_KEY) if request is not None else None
    if not isinstance(caller, Caller):
        # Cannot happen behind SigV4Middleware; refuse rather than act as nobody.
        raise PermissionError("request is not authenticated")
    return caller


def _credentials(caller: Caller) -> CallerCredentials:
    return CallerCredentials(
        access_key_id=caller.access_key_id,
        secret_access_key=caller.secret_access_key or _UNRESOLVED_SECRET,
        session_token=caller.session_token,
    )


def _metadata_region(ctx: Context) -> str | None:
    """AWS_REGION from the request's ``_meta`` (mcp-proxy-for-aws's ``metadata``), if sent."""
    meta = ctx.request_context.meta
    if meta is None:
        return None
    value = (meta.model_extra or {}).get("AWS_REGION")
    return value if isinstance(value, str) and value else None


def _json_result(payload: dict[str, Any], is_error: bool = False) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=json.dumps(payload))],
        structuredContent=payload,
        isError=is_error,
    )


def _text_result(text: str, is_error: bool = False) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], isError=is_error)


def _region_list() -> list[dict[str, str]]:
    loader = botocore.session.get_session().get_component("data_loader")
    partitions = loader.load_data("endpoints")["partitions"]
    regions = next(p for p in partitions if p["partition"] == "aws")["regions"]
    return [
        {"region_id": region, "region_long_name": data.get("description", region)}
        for region, data in sorted(regions.items())
    ]


def _refuse_removed_tool(mcp: FastMCP) -> None:
    """tools/call of aws___call_aws: the JSON-RPC error of the real server, not a tool result.

    FastMCP's call_tool handler turns every exception into an ``isError`` result; an McpError
    raised before it reaches the handler's try is answered by the low-level server as a
    JSON-RPC error with the McpError's code and message.
    """
    handlers = mcp._mcp_server.request_handlers
    call_tool = handlers[CallToolRequest]

    async def handler(request: CallToolRequest) -> Any:
        if request.params.name == REMOVED_TOOL:
            raise McpError(ErrorData(code=INVALID_REQUEST, message=REMOVED_TOOL_MESSAGE))
        return await call_tool(request)

    handlers[CallToolRequest] = handler


def build_mcp(
    runner: ScriptRunner, host: str = "127.0.0.1", scripts: ScriptLog | None = None
) -> FastMCP:
    """The MCP server with the AWS MCP Server's eight tools."""
    mcp = FastMCP(
        name="aws-mcp",
        instructions="Local stand-in for the AWS MCP Server (opsagent sandbox).",
        host=host,
        # No server-side sessions: each signed request stands alone, as each carries its caller.
        stateless_http=True,
        log_level="WARNING",
    )
    regions = _region_list()
    script_log = scripts if scripts is not None else ScriptLog()

    @mcp.tool(
        name="aws___run_script",
        description=_RUN_SCRIPT_DESCRIPTION,
        annotations=ToolAnnotations(
            title="Run a Python script with AWS API access",
            readOnlyHint=False,
            openWorldHint=True,
        ),
    )
    async def run_script(
        code: Annotated[str, Field(description="Python code to execute")],
        ctx: Context,
    ) -> CallToolResult:
        caller = _caller(ctx)
        region = _metadata_region(ctx) or DEFAULT_REGION
        outcome = await runner.run(code, _credentials(caller), region)
        script_log.append((caller.account_id, len(outcome.api_calls)))
        _log_script(caller, region, outcome)
        return _json_result(outcome.payload(), is_error=outcome.is_error)

    @mcp.tool(
        name="aws___list_regions",
        description="Retrieve a list of all AWS regions, including their identifiers and names.",
        annotations=ToolAnnotations(title="List AWS regions", readOnlyHint=True),
    )
    async def list_regions() -> CallToolResult:
        return _json_result({"content": {"result": regions}})

    @mcp.tool(
        name="aws___get_regional_availability",
        description=_REGIONAL_AVAILABILITY_DESCRIPTION,
        annotations=ToolAnnotations(title="Get regional availability", readOnlyHint=True),
    )
    async def get_regional_availability(
        resource_type: Annotated[
            Literal["product", "api", "cfn"],
            Field(
                description="product (services, features) | api (SDK APIs) | cfn "
                "(CloudFormation resources)"
            ),
        ],
        regions: Annotated[list[str] | None, Field(description="Region codes, at most 10.")] = None,
        filters: Annotated[
            list[str] | None,
            Field(
                description="Exact catalog names: 'Amazon Bedrock', "
                "'EC2+DescribeInstances', 'AWS::EC2::Instance'."
            ),
        ] = None,
        next_token: Annotated[str | None, Field(description="From a previous answer.")] = None,
        region: Annotated[str | None, Field(description="Unused; use `regions`.")] = None,
    ) -> CallToolResult:
        wanted = regions or [DEFAULT_REGION]
        if len(wanted) > 10:
            return _text_result("At most 10 regions per call.", is_error=True)
        if len(wanted) > 1 and not filters:
            return _text_result("Queries over several regions need filters.", is_error=True)
        return _json_result(
            {
                _RESPONSE_KEYS[resource_type]: [],
                "next_token": None,
                "note": f"{_OFFLINE}: it has no regional availability catalogue.",
            }
        )

    @mcp.tool(
        name="aws___search_documentation",
        description="Search across AWS documentation: API references, best practices, "
        "service guides and skills.",
        annotations=ToolAnnotations(title="Search AWS documentation", readOnlyHint=True),
    )
    async def search_documentation(
        search_phrase: Annotated[str, Field(description="Keywords to search for.")],
        topics: Annotated[
            list[str] | None, Field(description='Up to 3 topics; default ["general"].')
        ] = None,
        limit: Annotated[
            int | None, Field(description="Maximum number of results (default 4).")
        ] = None,
    ) -> CallToolResult:
        return _text_result(
            f"{_OFFLINE}: it has no AWS documentation; nothing was found for {search_phrase!r}."
        )

    @mcp.tool(
        name="aws___read_documentation",
        description="Fetch AWS documentation pages as markdown.",
        annotations=ToolAnnotations(title="Read AWS documentation", readOnlyHint=True),
    )
    async def read_documentation(
        requests: Annotated[
            list[ReadRequest] | None,
            Field(description="List of {url, max_length?, start_index?}."),
        ] = None,
    ) -> CallToolResult:
        urls = ", ".join(r.url for r in requests or []) or "no URL"
        return _text_result(f"{_OFFLINE}: it has no AWS documentation pages ({urls}).")

    @mcp.tool(
        name="aws___retrieve_skill",
        description="Retrieve an AWS skill (workflows, references) by the exact skill_name "
        "a search_documentation result gave. Returns SKILL.md, or file if given.",
        annotations=ToolAnnotations(title="Retrieve an AWS skill", readOnlyHint=True),
    )
    async def retrieve_skill(
        skill_name: Annotated[str, Field(description="Exact skill_name from a search result.")],
        file: Annotated[
            str | None, Field(description="File within the skill; omit for SKILL.md.")
        ] = None,
    ) -> CallToolResult:
        return _text_result(f"{_OFFLINE}: it has no skills ({skill_name!r} not found).")

    @mcp.tool(
        name="aws___get_presigned_url",
        description="Generate pre-signed S3 URLs for uploading (PUT) or downloading (GET) files.",
        annotations=ToolAnnotations(title="Get pre-signed S3 URLs", readOnlyHint=True),
    )
    async def get_presigned_url(
        requests: Annotated[
            list[dict[str, Any]], Field(description="Array of 1-25 presigned URL requests.")
        ],
    ) -> CallToolResult:
        return _text_result(f"{_OFFLINE}: it does not issue pre-signed URLs.", is_error=True)

    @mcp.tool(
        name="aws___get_tasks",
        description="Poll the status of long-running tasks. Up to 3 task IDs per call.",
        annotations=ToolAnnotations(title="Get task status", readOnlyHint=True),
    )
    async def get_tasks(
        task_ids: Annotated[
            list[str], Field(description="One or more task IDs (up to 3) from earlier calls.")
        ],
        poll_iteration: Annotated[int | None, Field(description="1, 2, 3, ...")] = None,
    ) -> CallToolResult:
        return _json_result(
            {
                "tasks": [],
                "note": f"{_OFFLINE}: no tasks; every tool call here runs to completion.",
            }
        )

    _refuse_removed_tool(mcp)
    return mcp


def _log_script(caller: Caller, region: str, outcome: ScriptOutcome) -> None:
    log.info(
        "run_script",
        extra={
            "caller": caller.arn or caller.access_key_id,
            "account": caller.account_id,
            "default_region": region,
            "status": outcome.status,
            "api_calls": len(outcome.api_calls),
            "error": outcome.error,
            "elapsed_ms": round(outcome.elapsed_s * 1000),
        },
    )
    if outcome.output:
        log.debug("run_script output: %s", outcome.output[:4000])


def build_app(
    aws_endpoint: str,
    resolver: SecretResolver | None,
    host: str = "127.0.0.1",
    *,
    runner: ScriptRunner | None = None,
    scripts: ScriptLog | None = None,
) -> tuple[Callable[..., Any], FastMCP]:
    """The ASGI app: SigV4 in front of FastMCP's streamable-HTTP app (path /mcp)."""
    mcp = build_mcp(runner or ScriptRunner(aws_endpoint), host=host, scripts=scripts)
    verifier = SigV4Verifier(MCP_SERVICE, MCP_REGION, resolver)
    return SigV4Middleware(mcp.streamable_http_app(), verifier), mcp


class McpServer:
    """The stand-in under uvicorn on loopback, in a background thread with its own event loop.

    ``scripts`` records every run_script call as (account_id, number of API calls).
    """

    def __init__(
        self,
        aws_endpoint: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        resolver: SecretResolver | None = resolve_access_key,
        script_latency_ms: float = 0,
        script_timeout_s: float = DEFAULT_TIMEOUT_S,
        scripts: ScriptLog | None = None,
    ) -> None:
        require_loopback(host)
        self.aws_endpoint = aws_endpoint
        self._script_latency_ms = script_latency_ms
        self.script_timeout_s = script_timeout_s
        self.scripts = scripts if scripts is not None else ScriptLog()
        self._host = host
        self._port = port
        self._resolver = resolver
        self._runner: ScriptRunner | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._error: BaseException | None = None

    @property
    def script_latency_ms(self) -> float:
        """The least milliseconds a run_script call takes, running included (0: no wait)."""
        return self._script_latency_ms

    @script_latency_ms.setter
    def script_latency_ms(self, value: float) -> None:
        self._script_latency_ms = value
        if self._runner is not None:
            self._runner.latency_ms = value

    @property
    def endpoint(self) -> str:
        if self._socket is None:
            raise RuntimeError("the MCP server is not running")
        host, port = self._socket.getsockname()[:2]
        return f"http://{host}:{port}{MCP_PATH}"

    def start(self, timeout: float = 15.0) -> None:
        if self._server is not None:
            return
        self._runner = ScriptRunner(
            self.aws_endpoint, timeout_s=self.script_timeout_s, latency_ms=self.script_latency_ms
        )
        app, _ = build_app(
            self.aws_endpoint,
            self._resolver,
            host=self._host,
            runner=self._runner,
            scripts=self.scripts,
        )
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
        if self._runner is not None:
            self._runner.close()
        self._server = None
        self._thread = None
        self._socket = None
        self._runner = None


def _log_verification_mode(resolver: SecretResolver | None, aws_endpoint: str) -> None:
    if resolver is None:
        log.warning(
            "SigV4 signatures are checked for structure, scope and time only: secrets of "
            "access keys cannot be resolved for %s, so signatures are not recomputed",
            aws_endpoint,
        )
    else:
        log.info("SigV4 signatures are verified against moto's in-process access keys")


def serve_forever(
    aws_endpoint: str, host: str = "127.0.0.1", port: int = 0, *, script_latency_ms: float = 0
) -> None:
    """Run only the MCP stand-in, in the foreground, against an AWS endpoint it did not seed.

    Secrets cannot be resolved for a moto in another process, so signatures get the
    structural checks only (logged at start).
    """
    require_loopback(host)
    runner = ScriptRunner(aws_endpoint, latency_ms=script_latency_ms)
    app, _ = build_app(aws_endpoint, None, host=host, runner=runner)
    _log_verification_mode(None, aws_endpoint)
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        bound_host, bound_port = sock.getsockname()[:2]
        log.warning("AWS MCP stand-in on http://%s:%s%s", bound_host, bound_port, MCP_PATH)
        config = uvicorn.Config(app, log_level="info", access_log=False, lifespan="on")
        try:
            uvicorn.Server(config).run(sockets=[sock])
        finally:
            runner.close()
