"""A local stand-in for Amazon Bedrock AgentCore Gateway in front of the bridge Lambda.

The agent's second way to the accounts (architecture option 2) is MCP over HTTP to an
AgentCore Gateway whose one target is the bridge Lambda (``opsagent/bridge``). This module
plays that Gateway on loopback, so the whole path runs offline: agent → Gateway (here) →
Lambda (the bridge, invoked in-process) → AWS MCP Server stand-in → moto.

What it reproduces of the real Gateway, and where that is written down:

* **Inbound auth.** Every request carries ``Authorization: Bearer <JWT>``, checked as the
  Gateway's ``customJWTAuthorizer`` checks it (signature against the issuer's keys, ``exp``,
  ``allowedAudience`` against ``aud``, ``allowedClients`` against ``client_id``:
  https://docs.aws.amazon.com/bedrock-agentcore/latest/devguide/gateway-inbound-auth.html).
  A request without one, or with one that does not verify, is answered HTTP 401 with a
  ``WWW-Authenticate: Bearer`` challenge (RFC 6750 section 3) and a JSON-RPC error body,
  before anything reaches the target. Keys: RS256 against a JWKS (a document or its URL),
  or, for the local demo and tests only, HS256 with a shared secret (``JwtAuthorizer``).
* **Tool names.** A Lambda target's tools are listed from the target's tool schema, the
  SAME file the template deploys (``opsagent/bridge/tools.json``), each named
  ``<target>___<tool>`` ("Understand how AgentCore Gateway tools are named":
  https://docs.aws.amazon.com/bedrock-agentcore/latest/devguide/gateway-tool-naming.html).
  Arguments are checked against the tool's ``inputSchema`` before the Lambda runs, as the
  Gateway validates input against the schema; a failure is a tool error.
* **Lambda input.** The event is the tool call's ``arguments`` object itself, no envelope;
  the context's ``client_context.custom`` carries ``bedrockAgentCoreMessageVersion``
  ("1.0"), ``bedrockAgentCoreAwsRequestId``, ``bedrockAgentCoreMcpMessageId`` (the JSON-RPC
  id), ``bedrockAgentCoreGatewayId``, ``bedrockAgentCoreTargetId`` and
  ``bedrockAgentCoreToolName`` (the prefixed name: the Lambda strips ``<target>___``
  itself), per "Lambda function input format" in "AWS Lambda function targets"
  (https://docs.aws.amazon.com/bedrock-agentcore/latest/devguide/gateway-add-target-lambda.html#gateway-building-lambda-input).
  The context also has what the Lambda Python runtime gives every handler
  (``aws_request_id``, ``function_name``, ``invoked_function_arn``,
  ``get_remaining_time_in_millis()``...).
* **Lambda response → tool result.** The function's JSON payload becomes the text of one
  ``text`` content item, ``isError: false`` (the Lambda "must return a valid JSON response
  that can be parsed by the gateway", same page). A function error (the handler raised, its
  answer is not JSON, or it ran past its timeout) is ``isError: true`` whose text is a
  generic message, or with ``exception_level="DEBUG"`` the error itself, also under
  ``_meta.debug``, as "Debugging your gateway" shows
  (https://docs.aws.amazon.com/bedrock-agentcore/latest/devguide/gateway-debugging.html).
* **Header propagation.** Request headers the target allow-lists (its
  ``metadataConfiguration.allowedRequestHeaders``) reach the Lambda, under
  ``client_context.custom["bedrockAgentCorePropagatedHeaders"]`` (the key of AWS's
  header-propagation sample, which the bridge reads: ``opsagent/bridge/caller.py``; the
  pages below do not name it); ``Authorization`` and the other restricted headers cannot
  be allow-listed ("Header propagation with Gateway":
  https://docs.aws.amazon.com/bedrock-agentcore/latest/devguide/gateway-headers.html). The
  default list is the bridge's ``X-Opsagent-Token``: the caller's JWT, which the bridge
  checks itself to know who asks.
* **Lambda concurrency.** A Lambda execution environment runs one invocation at a time; the
  service starts more environments for calls that overlap. The stand-in keeps a pool of up
  to ``concurrency`` instances (each made once by ``function_factory``, a cold start, and
  reused warm), so parallel tool calls run in parallel, each in a thread of its own. A call
  that finds every instance busy waits for one (real Lambda would throttle it at the
  function's concurrency limit), and an instance that ran past the timeout is thrown away.

Not reproduced: IAM (SigV4) inbound auth, semantic search (``x_amz_bedrock_agentcore_search``),
query-parameter and response-header propagation, interceptors, OAuth outbound credentials,
other target types.

    gateway = GatewayStandIn(function_factory=..., authorizer=JwtAuthorizer(secret=...))
    gateway.start(); gateway.endpoint  # http://127.0.0.1:PORT/mcp
    gateway.stop()

``opsagent.bridge.local.start_gateway(sandbox)`` builds one in front of the bridge, itself
pointed at a running sandbox; the sandbox never starts one by default. The stand-in hosts
whatever Lambda it is given and knows nothing of the bridge but its tool schema file, as the
real Gateway knows its target's schema.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import jwt
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.types import CallToolResult, TextContent, Tool
from starlette.types import Receive, Scope, Send

from opsagent.sandbox.loopback import LoopbackServer

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_TARGET",
    "GATEWAY_PATH",
    "PROPAGATED_HEADERS_KEY",
    "TARGET_SEPARATOR",
    "TOKEN_HEADER",
    "TOOLS_FILE",
    "GatewayStandIn",
    "Invocation",
    "JwtAuthorizer",
    "LambdaContext",
    "load_tools",
    "mint_token",
]

GATEWAY_PATH = "/mcp"
# "${target_name}___${tool_name}": gateway-tool-naming.html (above).
TARGET_SEPARATOR = "___"
# The target's name in the stand-in; the deployed Gateway's is whatever its template names it.
# The agent finds it from tools/list (``opsagent/access/gateway.py``), so nothing hard-codes it.
DEFAULT_TARGET = "opsagent-bridge"
TOOLS_FILE = Path(__file__).resolve().parents[1] / "bridge" / "tools.json"
MESSAGE_VERSION = "1.0"
# What the Gateway says for a failed Lambda when its exceptionLevel is not DEBUG.
GENERIC_ERROR = "An internal error occurred. Please retry later."
DEFAULT_CONCURRENCY = 8
DEFAULT_TIMEOUT_S = 300.0  # the bridge Lambda's Timeout in infrastructure/bridge-gateway.yaml
# Where the Gateway hands a Lambda target the request headers it propagates.
PROPAGATED_HEADERS_KEY = "bedrockAgentCorePropagatedHeaders"
# The bridge's header for the caller's JWT (opsagent/bridge/caller.py), allow-listed on its target.
TOKEN_HEADER = "X-Opsagent-Token"
# Headers the Gateway refuses to propagate (gateway-headers.html, "Header restrictions"; the
# first of its list, the ones that matter here).
RESTRICTED_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "www-authenticate", "cookie", "set-cookie", "host"}
)

# One instance of the function (one execution environment): ``handler(event, context)``, or
# an object with ``invoke(event, context)`` (the bridge's ``Bridge``) and maybe ``close()``,
# called when the stand-in stops.
LambdaFunction = Callable[[dict[str, Any], Any], Any]
LambdaInstance = Any


def load_tools(path: Path = TOOLS_FILE) -> list[dict[str, Any]]:
    """The target's tool schema: a list of {name, description, inputSchema[, outputSchema]}."""
    tools = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(tools, list) or not all(
        isinstance(t, dict) and isinstance(t.get("name"), str) for t in tools
    ):
        raise ValueError(f"{path} is not a list of tool definitions")
    return tools


# ----- inbound auth -----


class InvalidToken(Exception):
    """The bearer token is missing or does not verify; the message says why (for the 401)."""


@dataclass(frozen=True)
class JwtAuthorizer:
    """The Gateway's ``customJWTAuthorizer``: which tokens it lets in.

    Exactly one source of keys: ``secret`` (HS256; the local stand-in only, the real Gateway
    takes an OIDC discovery URL), ``jwks`` (a JWKS document) or ``jwks_url`` (RS256 and the
    other asymmetric algorithms). ``allowed_audiences`` is matched against ``aud``,
    ``allowed_clients`` against ``client_id``, ``issuer`` against ``iss``; each one set
    must match. ``exp`` is required.
    """

    secret: str | None = None
    jwks: Mapping[str, Any] | None = None
    jwks_url: str | None = None
    allowed_audiences: Sequence[str] | None = None
    allowed_clients: Sequence[str] | None = None
    issuer: str | None = None
    leeway_s: float = 30.0
    _jwk_client: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        sources = [s for s in (self.secret, self.jwks, self.jwks_url) if s is not None]
        if len(sources) != 1:
            raise ValueError("give the authorizer exactly one of secret, jwks and jwks_url")
        if self.jwks_url is not None:
            object.__setattr__(self, "_jwk_client", jwt.PyJWKClient(self.jwks_url))

    def claims(self, authorization: str | None) -> dict[str, Any]:
        """The verified claims of ``Authorization: Bearer <token>``; InvalidToken otherwise.
        Blocking for a ``jwks_url`` (it may read the JWKS): call it off the event loop."""
        if not authorization:
            raise InvalidToken("Missing Bearer token")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise InvalidToken("The Authorization header must be 'Bearer <token>'")
        try:
            key, algorithms = self._key(token)
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=list(self.allowed_audiences) if self.allowed_audiences else None,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": ["exp"], "verify_aud": bool(self.allowed_audiences)},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"Invalid Bearer token: {exc}") from None
        if self.allowed_clients and claims.get("client_id") not in self.allowed_clients:
            raise InvalidToken("Invalid Bearer token: its client_id is not allowed")
        return claims

    def _key(self, token: str) -> tuple[Any, list[str]]:
        if self.secret is not None:
            return self.secret, ["HS256"]
        asymmetric = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384"]
        if self._jwk_client is not None:
            return self._jwk_client.get_signing_key_from_jwt(token).key, asymmetric
        header = jwt.get_unverified_header(token)
        keys = jwt.PyJWKSet.from_dict(dict(self.jwks or {})).keys
        kid = header.get("kid")
        found = [k for k in keys if kid is None or k.key_id == kid]
        if kid is None and len(found) != 1:
            raise jwt.InvalidTokenError("the token names no key (kid) and the JWKS has several")
        if not found:
            raise jwt.InvalidTokenError("the token is signed with a key the JWKS does not hold")
        return found[0].key, asymmetric


def mint_token(
    secret: str,
    *,
    subject: str,
    groups: Sequence[str] = (),
    audience: str | None = None,
    client_id: str | None = None,
    issuer: str | None = None,
    ttl_s: float = 3600.0,
    **claims: Any,
) -> str:
    """An HS256 token for a ``JwtAuthorizer(secret=...)``: the demo's service token."""
    now = int(time.time())
    # groups always (an empty list too): a checker that reads groups refuses a token without.
    body: dict[str, Any] = {
        "sub": subject,
        "iat": now,
        "exp": now + int(ttl_s),
        "groups": list(groups),
        **claims,
    }
    if audience is not None:
        body["aud"] = audience
    if client_id is not None:
        body["client_id"] = client_id
    if issuer is not None:
        body["iss"] = issuer
    return jwt.encode(body, secret, algorithm="HS256")


class _BearerAuth:
    """ASGI middleware: the token is checked before the MCP app sees the request."""

    def __init__(self, app: Callable[..., Any], authorizer: JwtAuthorizer) -> None:
        self._app = app
        self._authorizer = authorizer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        authorization = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k.lower() == b"authorization"),
            None,
        )
        try:
            claims = await asyncio.to_thread(self._authorizer.claims, authorization)
        except InvalidToken as exc:
            await _unauthorized(send, str(exc), missing=authorization is None)
            return
        await self._app({**scope, "gateway.claims": claims}, receive, send)


async def _unauthorized(send: Send, message: str, *, missing: bool) -> None:
    body = json.dumps(
        {"jsonrpc": "2.0", "id": None, "error": {"code": -32001, "message": message}}
    ).encode()
    challenge = "Bearer" if missing else 'Bearer error="invalid_token"'
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", challenge.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# ----- the Lambda side -----


@dataclass(frozen=True)
class ClientContext:
    """``context.client_context`` of the Lambda Python runtime."""

    custom: dict[str, Any]
    env: dict[str, Any] | None = None
    client: Any = None


@dataclass
class LambdaContext:
    """The context object the Lambda Python runtime hands a handler, as the Gateway invokes it."""

    function_name: str
    aws_request_id: str
    invoked_function_arn: str
    client_context: ClientContext
    deadline: float  # time.monotonic() when the invocation times out
    function_version: str = "$LATEST"
    memory_limit_in_mb: str = "512"
    log_group_name: str = ""
    log_stream_name: str = ""
    identity: Any = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


@dataclass(frozen=True)
class Invocation:
    """One Lambda invocation the stand-in made: for tests and the demo's progress."""

    tool: str  # as the Gateway named it, <target>___<tool>
    event: dict[str, Any]
    instance: int  # which execution environment ran it (0, 1, ...)
    started: float
    ended: float
    error: str | None = None


class _FunctionError(Exception):
    """The invocation failed as Lambda reports it (FunctionError): handler raised, timed
    out, or answered something that is not JSON."""


class _Instances:
    """Up to ``size`` execution environments of the function, each running one invocation at
    a time in a thread of its own; made on first need (cold start) and reused (warm)."""

    def __init__(self, factory: Callable[[], LambdaInstance], size: int) -> None:
        if size < 1:
            raise ValueError("the function needs a concurrency of at least 1")
        self._factory = factory
        self.size = size
        self._idle: list[tuple[int, LambdaInstance]] = []
        self._all: list[LambdaInstance] = []
        self._all_lock = threading.Lock()
        self._made = 0
        self._slots: asyncio.Semaphore | None = None
        self._executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="lambda")
        self.busy = 0
        self.peak = 0  # most invocations running at once since start

    async def invoke(
        self, event: dict[str, Any], context: LambdaContext, timeout_s: float
    ) -> tuple[int, Any]:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.size)
        await self._slots.acquire()
        loop = asyncio.get_running_loop()
        function: LambdaInstance
        number, function = self._idle.pop() if self._idle else (self._made, None)
        if function is None:
            self._made += 1
        self.busy += 1
        self.peak = max(self.peak, self.busy)
        slots = self._slots

        def run() -> Any:
            nonlocal function
            instance: LambdaInstance = function
            if instance is None:  # the cold start: the module's init, in the environment
                instance = function = self._factory()
                with self._all_lock:
                    self._all.append(instance)
            handler = cast(Callable[..., Any], getattr(instance, "invoke", instance))
            return handler(event, context)

        future = loop.run_in_executor(self._executor, run)
        timed_out = False

        def landed(_: asyncio.Future[Any]) -> None:
            # The environment is free when its thread is: a timed-out one is discarded.
            self.busy -= 1
            if function is not None and not timed_out:
                self._idle.append((number, function))
            slots.release()

        future.add_done_callback(landed)
        try:
            async with asyncio.timeout(timeout_s):
                return number, await asyncio.shield(future)
        except TimeoutError:
            timed_out = True
            raise _FunctionError(f"Task timed out after {timeout_s:.2f} seconds") from None
        except Exception as exc:  # the handler raised: Lambda's errorType and errorMessage
            raise _FunctionError(f"{type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        with self._all_lock:
            made, self._all = self._all, []
        for instance in made:
            close = getattr(instance, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:  # noqa: BLE001 - closing is best effort
                    log.warning("closing a Lambda instance failed", exc_info=True)


# ----- the Gateway -----


class GatewayStandIn:
    """The Gateway with one Lambda target, under uvicorn on loopback in a background thread."""

    def __init__(
        self,
        function_factory: Callable[[], LambdaInstance],
        *,
        authorizer: JwtAuthorizer,
        target: str = DEFAULT_TARGET,
        tools_file: Path = TOOLS_FILE,
        concurrency: int = DEFAULT_CONCURRENCY,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        exception_level: Literal["DEBUG"] | None = None,
        function_name: str = "opsagent-bridge",
        allowed_request_headers: Sequence[str] = (TOKEN_HEADER,),
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if TARGET_SEPARATOR in target:
            raise ValueError(f"a target name may not contain {TARGET_SEPARATOR!r}")
        restricted = [h for h in allowed_request_headers if h.lower() in RESTRICTED_HEADERS]
        if restricted:
            raise ValueError(f"the Gateway does not propagate {', '.join(restricted)}")
        self.allowed_request_headers = tuple(allowed_request_headers)
        self.target = target
        self.authorizer = authorizer
        self.tools = load_tools(tools_file)
        self.timeout_s = timeout_s
        self.exception_level = exception_level
        self.function_name = function_name
        self.gateway_id = f"opsagent-sandbox-{secrets.token_hex(5)}"
        self.target_id = secrets.token_hex(5).upper()
        self._factory = function_factory
        self._concurrency = concurrency
        self._instances: _Instances | None = None
        self._http = LoopbackServer(host, port, "gateway")
        self._lock = threading.Lock()
        self._invocations: list[Invocation] = []

    # ----- what tests and the demo look at -----

    @property
    def endpoint(self) -> str:
        host, port = self._http.address
        return f"http://{host}:{port}{GATEWAY_PATH}"

    @property
    def tool_names(self) -> list[str]:
        """The tools as the Gateway lists them: ``<target>___<tool>``."""
        return [f"{self.target}{TARGET_SEPARATOR}{tool['name']}" for tool in self.tools]

    @property
    def invocations(self) -> list[Invocation]:
        with self._lock:
            return list(self._invocations)

    def clear_invocations(self) -> None:
        with self._lock:
            self._invocations.clear()

    @property
    def peak_concurrency(self) -> int:
        """Most Lambda invocations that ran at once since start."""
        return self._instances.peak if self._instances is not None else 0

    # ----- life -----

    def start(self, timeout: float = 15.0) -> GatewayStandIn:
        if self._http.running:
            return self
        self._instances = _Instances(self._factory, self._concurrency)
        try:
            self._http.start(self._app(), timeout)
        except RuntimeError:
            self.stop()
            raise
        log.info("AgentCore Gateway stand-in on %s (target %s)", self.endpoint, self.target)
        return self

    def stop(self) -> None:
        self._http.stop()
        if self._instances is not None:
            self._instances.close()
        self._instances = None

    def __enter__(self) -> GatewayStandIn:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # ----- the MCP server -----

    def _app(self) -> Callable[..., Any]:
        server: Server[Any, Any] = Server("agentcore-gateway-stand-in")
        listed = [
            Tool(
                name=f"{self.target}{TARGET_SEPARATOR}{tool['name']}",
                description=tool.get("description"),
                inputSchema=tool.get("inputSchema") or {"type": "object"},
                outputSchema=tool.get("outputSchema"),
            )
            for tool in self.tools
        ]

        @server.list_tools()
        async def list_tools() -> list[Tool]:
            return listed

        @server.call_tool(validate_input=True)
        async def call_tool(name: str, arguments: dict[str, Any]) -> CallToolResult:
            if name not in {tool.name for tool in listed}:
                return _tool_error(f"Unknown tool: {name}")
            context = server.request_context
            request = context.request
            headers = getattr(request, "headers", None) or {}
            propagated = {
                name: headers[name] for name in self.allowed_request_headers if name in headers
            }
            return await self._invoke(name, arguments, context.request_id, propagated)

        # Stateless: each request stands alone, carrying its own token.
        manager = StreamableHTTPSessionManager(app=server, stateless=True, json_response=False)

        async def mcp_app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "lifespan":
                await _lifespan(manager, receive, send)
                return
            path = scope.get("path", "")
            if path.rstrip("/") != GATEWAY_PATH:
                await _not_found(send)
                return
            await manager.handle_request(scope, receive, send)

        return _BearerAuth(mcp_app, self.authorizer)

    async def _invoke(
        self,
        name: str,
        arguments: dict[str, Any],
        message_id: Any,
        propagated: dict[str, str] | None = None,
    ) -> CallToolResult:
        instances = self._instances
        assert instances is not None, "the stand-in is running"
        request_id = str(uuid.uuid4())
        custom: dict[str, Any] = {
            "bedrockAgentCoreMessageVersion": MESSAGE_VERSION,
            "bedrockAgentCoreAwsRequestId": request_id,
            "bedrockAgentCoreMcpMessageId": str(message_id),
            "bedrockAgentCoreGatewayId": self.gateway_id,
            "bedrockAgentCoreTargetId": self.target_id,
            "bedrockAgentCoreToolName": name,
        }
        if propagated:
            custom[PROPAGATED_HEADERS_KEY] = dict(propagated)
        context = LambdaContext(
            function_name=self.function_name,
            aws_request_id=request_id,
            invoked_function_arn=(
                f"arn:aws:lambda:us-east-1:111111111111:function:{self.function_name}"
            ),
            client_context=ClientContext(custom=custom),
            deadline=time.monotonic() + self.timeout_s,
            log_group_name=f"/aws/lambda/{self.function_name}",
        )
        # Lambda hands the handler a fresh copy of the JSON payload, never the caller's object.
        event = json.loads(json.dumps(arguments))
        started = time.monotonic()
        number, error, text = -1, None, ""
        try:
            number, payload = await instances.invoke(event, context, self.timeout_s)
            try:
                text = json.dumps(payload)
            except (TypeError, ValueError) as exc:  # Runtime.MarshalError
                raise _FunctionError(f"Runtime.MarshalError: {exc}") from None
        except _FunctionError as exc:
            error = str(exc)
            log.warning("the bridge Lambda failed %s: %s", name, error)
        finally:
            with self._lock:
                self._invocations.append(
                    Invocation(name, event, number, started, time.monotonic(), error)
                )
        if error is not None:
            if self.exception_level == "DEBUG":
                return _tool_error(error, debug=error)
            return _tool_error(GENERIC_ERROR)
        return CallToolResult(content=[TextContent(type="text", text=text)], isError=False)


def _tool_error(message: str, *, debug: str | None = None) -> CallToolResult:
    meta = {"debug": {"type": "text", "text": debug}} if debug is not None else None
    return CallToolResult(
        content=[TextContent(type="text", text=message)], isError=True, _meta=meta
    )


async def _lifespan(manager: StreamableHTTPSessionManager, receive: Receive, send: Send) -> None:
    """The session manager's task group lives as long as the server."""
    async with manager.run():
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _not_found(send: Send) -> None:
    body = b'{"message": "Not Found"}'
    await send(
        {
            "type": "http.response.start",
            "status": 404,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})
