"""The AWS MCP Server's eight tools: their descriptions, schemas and handlers (``build_mcp``).

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
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from typing import Annotated, Any, Literal

import botocore.session
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

from opsagent.sandbox.script_runner import (
    ALLOWED_MODULES,
    DEFAULT_REGION,
    CallerCredentials,
    ScriptOutcome,
    ScriptRunner,
)
from opsagent.sandbox.sigv4 import (
    CALLER_SCOPE_KEY,
    Caller,
)

# The logger of the server module, as before the split: run_script records are logged there.
log = logging.getLogger("opsagent.sandbox.mcp_server")

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
