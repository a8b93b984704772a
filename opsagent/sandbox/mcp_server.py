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

What this stand-in's tools do is described in ``opsagent.sandbox.mcp_tools``; this module
owns the server: the SigV4-checked ASGI app, and uvicorn on loopback (``McpServer``,
``serve_forever``).

Every request must be SigV4-signed for service ``aws-mcp`` in ``us-east-1`` (sigv4.py); the
access key in the signature decides the identity, and scripts run with the caller's own
credentials, never with an identity of the server's. The stand-in has no read-only guard of
its own: the agent's client-side guard is the product's promise, as it would be against the
real server.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any

import uvicorn
from mcp.server.fastmcp import FastMCP
from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.models import InitializationOptions

from opsagent.sandbox.identity import resolve_access_key
from opsagent.sandbox.loopback import LoopbackServer
from opsagent.sandbox.mcp_tools import (
    REMOVED_TOOL,
    REMOVED_TOOL_MESSAGE,
    ReadRequest,
    ScriptLog,
    build_mcp,
)
from opsagent.sandbox.moto_server import require_loopback
from opsagent.sandbox.script_runner import (
    DEFAULT_TIMEOUT_S,
    ScriptRunner,
)
from opsagent.sandbox.sigv4 import (
    SecretResolver,
    SigV4Middleware,
    SigV4Verifier,
)

log = logging.getLogger(__name__)

__all__ = [
    "MCP_PATH",
    "MCP_REGION",
    "MCP_SERVICE",
    "REMOVED_TOOL",
    "REMOVED_TOOL_MESSAGE",
    "McpServer",
    "ReadRequest",
    "ScriptLog",
    "build_app",
    "build_mcp",
    "serve_forever",
]

MCP_SERVICE = "aws-mcp"
MCP_REGION = "us-east-1"
MCP_PATH = "/mcp"


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
    _cache_initialization_options(mcp)
    verifier = SigV4Verifier(MCP_SERVICE, MCP_REGION, resolver)
    return SigV4Middleware(mcp.streamable_http_app(), verifier), mcp


def _cache_initialization_options(mcp: FastMCP) -> None:
    """Build the low-level server's initialization options once, not for every request.

    In stateless HTTP mode the SDK builds them for each request, and that reads mcp's
    package metadata from disk (importlib.metadata) every time: 8% of the stand-in's CPU in
    a profile of the agent's scripts. They cannot change once the tools are registered.
    """
    server = mcp._mcp_server
    build = server.create_initialization_options
    options = build()

    def cached(
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        if notification_options is None and experimental_capabilities is None:
            return options
        return build(notification_options, experimental_capabilities)

    server.create_initialization_options = cached  # type: ignore[method-assign]


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
        self.aws_endpoint = aws_endpoint
        self._script_latency_ms = script_latency_ms
        self.script_timeout_s = script_timeout_s
        self.scripts = scripts if scripts is not None else ScriptLog()
        self._host = host
        self._port = port
        self._resolver = resolver
        self._runner: ScriptRunner | None = None
        self._http = LoopbackServer(host, port, "mcp")

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
        host, port = self._http.address
        return f"http://{host}:{port}{MCP_PATH}"

    def start(self, timeout: float = 15.0) -> None:
        if self._http.running:
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
        try:
            self._http.start(app, timeout)
        except RuntimeError:
            self.stop()
            raise

    def stop(self) -> None:
        self._http.stop()
        if self._runner is not None:
            self._runner.close()
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
