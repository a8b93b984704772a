"""The Lambda entry behind Amazon Bedrock AgentCore Gateway: ``opsagent.bridge.handler.handler``.

The Gateway authenticates callers (its inbound JWT authorizer) and turns each MCP ``tools/call``
for a tool of this target into one synchronous invocation of this Lambda. It cannot sign SigV4
to the AWS MCP Server itself; this Lambda assumes each member account's read-only role and
calls the AWS MCP Server with the agent's own access layer. The tools are in ``tools.json``
(the target's tool schema) and ``tools.py``.

The Gateway's Lambda contract, as documented
(https://docs.aws.amazon.com/bedrock-agentcore/latest/devguide/gateway-add-target-lambda.html,
"Lambda function input format" and "Key considerations and limitations";
https://docs.aws.amazon.com/bedrock-agentcore/latest/devguide/gateway-tool-naming.html):

* ``event`` is the tool's arguments as the caller gave them (a JSON object of the input
  schema's properties), with no envelope.
* ``context.client_context.custom`` carries the call's metadata:
  ``bedrockAgentCoreToolName`` ``<target name>___<tool name>`` (the prefix up to and including
  the first ``___`` has to be stripped by the function), ``bedrockAgentCoreGatewayId``,
  ``bedrockAgentCoreTargetId``, ``bedrockAgentCoreMessageVersion``,
  ``bedrockAgentCoreAwsRequestId``, ``bedrockAgentCoreMcpMessageId``. The AgentCore samples
  list the same fields (awslabs/amazon-bedrock-agentcore-samples,
  01-tutorials/02-AgentCore-gateway/01-transform-lambda-into-mcp-tools). None of them names
  the caller. The bridge reads the tool name and logs the ids in its audit record.
* "The Lambda function must return a valid JSON response that can be parsed by the gateway",
  and the guide recommends error handling "to provide meaningful error messages to the
  client". So every outcome is returned, never raised: a JSON object, and on failure
  ``{"isError": true, "error": {"code", "message"}}`` with a one-line message (bad arguments,
  unknown tool, refused read, hidden account, unchecked token...), never a stack trace. The
  documentation read does not say whether the Gateway maps a returned ``isError`` onto the
  MCP result; the object says it either way.
* Lambda's synchronous invocation limit is 6 MB for request and response together
  (https://docs.aws.amazon.com/bedrock-agentcore/latest/devguide/gateway-interceptors-configuration.html,
  ``payloadFilter``): an answer above ``MAX_RESPONSE_BYTES`` leaves out the largest accounts'
  rows, says so per account and sets ``"truncated": true``.

Who asks, and why the bridge checks the token itself (``caller.py``):

* The Gateway checks the caller's JWT on the way in (``customJWTAuthorizer``: discoveryUrl,
  allowedAudience, allowedClients;
  https://docs.aws.amazon.com/bedrock-agentcore/latest/devguide/inbound-jwt-authorizer.html),
  but passes a Lambda target nothing about the caller by default: the event is the
  arguments, and the client context's fields above are the call's ids.
* Request headers reach a target only when allow-listed on it
  (``metadataConfiguration.allowedRequestHeaders``, at most 10;
  https://docs.aws.amazon.com/bedrock-agentcore-control/latest/APIReference/API_MetadataConfiguration.html)
  or "sent from custom interceptor lambda"; ``Authorization`` is on the list of headers that
  "are restricted and cannot be configured for propagation"
  (https://docs.aws.amazon.com/bedrock-agentcore/latest/devguide/gateway-headers.html). A
  REQUEST interceptor configured with ``passRequestHeaders`` receives all request headers,
  the bearer token included, and may forward what it chooses
  (https://docs.aws.amazon.com/bedrock-agentcore/latest/devguide/gateway-interceptors.html,
  .../gateway-interceptors-configuration.html). For a Lambda target, propagated headers arrive
  in ``client_context.custom["bedrockAgentCorePropagatedHeaders"]``: that key comes from
  AWS's samples (the header-propagation tutorial in awslabs/amazon-bedrock-agentcore-samples),
  not from the pages above, so the bridge also takes it as a JSON string and matches header
  names without regard to case.
* So nothing the Gateway hands the Lambda says verifiably who asks. An allow-listed header
  such as ``X-User`` is whatever the client wrote: the Gateway checked the token, not that
  header. The bridge therefore never believes a claimed user. When ``OPSAGENT_JWT_*`` is set
  (the same issuer and audience or client settings as the agent and the Gateway's
  authorizer), it verifies the caller's JWT itself with the agent's own ``Authenticator``,
  taken from the propagated ``X-Opsagent-Token`` header (the agent's Gateway client sends its
  bearer token there too; allow-list it on the target) or from ``Authorization`` (forwarded by
  a REQUEST interceptor); ``sub`` and the groups claim are the caller, the registry's
  ``groups`` limit the accounts, and a call without a token that verifies is refused. When no
  ``OPSAGENT_JWT_*`` is set, the bridge is one service identity (``OPSAGENT_USER``, default
  ``opsagent-bridge``) with every account, as the agent's service is with authentication off,
  and any token that comes along is ignored (the audit record says so). Either way every
  AssumeRole names the caller (session name, SourceIdentity, session tags: ``access``).

Process model: Lambda runs one invocation at a time per execution environment and reuses
the process between invocations. ``Bridge`` keeps one event loop in a thread of its own and,
on it, the session pool, credentials, recent reads and registry across invocations; ``invoke``
may be called from any thread (a local Gateway stand-in calls it in-process) and runs one
invocation at a time per ``Bridge``, as Lambda does; ``handler`` uses one module-level
``Bridge``, created on the first call. Settings: ``settings.py``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

import boto3
from pydantic import ValidationError

from opsagent.access.audit import audit, audit_logger
from opsagent.bridge.args import ArgumentError
from opsagent.bridge.caller import CallerError
from opsagent.bridge.service import LAMBDA_MARKER, BridgeService, ConfigurationError, open_service
from opsagent.bridge.settings import BridgeSettings
from opsagent.bridge.tools import TOOLS, Call, ToolError
from opsagent.registry import RegistryError
from opsagent.service.settings import Settings

log = logging.getLogger(__name__)

TOOL_NAME_KEY = "bedrockAgentCoreToolName"
TARGET_SEPARATOR = "___"
# The call's ids the Gateway puts in the client context: logged with each call.
CONTEXT_IDS = {
    "gateway_id": "bedrockAgentCoreGatewayId",
    "target_id": "bedrockAgentCoreTargetId",
    "mcp_message_id": "bedrockAgentCoreMcpMessageId",
    "gateway_request_id": "bedrockAgentCoreAwsRequestId",
}
# Room kept, of the invocation's remaining time, to build and return the answer.
RESPONSE_MARGIN_S = 1.0
# Below Lambda's 6 MB for request and response together.
MAX_RESPONSE_BYTES = 5_500_000


def client_custom(context: Any) -> Mapping[str, Any]:
    """``context.client_context.custom``, or an empty map (invoked other than by the Gateway)."""
    client_context = getattr(context, "client_context", None)
    custom = getattr(client_context, "custom", None)
    if custom is None and isinstance(client_context, Mapping):
        custom = client_context.get("custom")
    return custom if isinstance(custom, Mapping) else {}


def tool_name(custom: Mapping[str, Any]) -> str | None:
    """The tool's own name: ``opsagent-bridge___query_accounts`` -> ``query_accounts``."""
    full = custom.get(TOOL_NAME_KEY)
    if not isinstance(full, str) or not full:
        return None
    return full.split(TARGET_SEPARATOR, 1)[1] if TARGET_SEPARATOR in full else full


def error_result(code: str, message: str) -> dict[str, Any]:
    return {"isError": True, "error": {"code": code, "message": message}}


class Bridge:
    """The bridge of one process: its event loop (in a thread), its opened ``BridgeService``."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        central: boto3.Session | None = None,
        sts_endpoint_url: str | None = None,
        configure_logging: bool = False,
    ) -> None:
        # None: BridgeSettings from the environment, read when the first call opens the bridge.
        self._settings = settings
        # The central identity and STS endpoint when not boto3's defaults (open_service).
        self._central = central
        self._sts_endpoint_url = sts_endpoint_url
        self._configure_logging = configure_logging
        self._service: BridgeService | None = None
        self._closed = False
        self._lock = threading.Lock()  # one invocation at a time, as Lambda runs them
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="opsagent-bridge-loop", daemon=True
        )
        self._thread.start()

    @classmethod
    def on_sandbox(cls, sandbox: Any, **settings: Any) -> Bridge:
        """A bridge pointed at a running sandbox as at any AWS: its registry file, its AWS MCP
        Server stand-in, its moto STS and central identity (what a Lambda gets from its
        environment). ``settings`` are BridgeSettings fields (``jwt_secret``, ``account_timeout``,
        ``registry``...), over the environment's ``OPSAGENT_*``."""
        fields: dict[str, Any] = {
            "registry": sandbox.registry_path,
            "mcp_endpoint": sandbox.mcp_endpoint,
            "mcp_service": sandbox.mcp_service,
            "mcp_region": sandbox.mcp_region,
            **settings,
        }
        return cls(
            BridgeSettings(**fields),
            central=sandbox.central_session(),
            sts_endpoint_url=sandbox.aws_endpoint,
        )

    @property
    def service(self) -> BridgeService | None:
        """What the first call opened (tests and benchmarks look at its slots and pool)."""
        return self._service

    def invoke(self, event: Any, context: Any) -> dict[str, Any]:
        """One invocation, as Lambda makes it: the tool's arguments and the Lambda context."""
        if threading.current_thread() is self._thread:
            return error_result("internal", "Bridge.invoke was called from the bridge's own loop")
        with self._lock:
            if self._closed:
                return error_result("closed", "this bridge has been closed")
            future = asyncio.run_coroutine_threadsafe(self._invoke(event, context), self._loop)
            return future.result()

    async def ainvoke(self, event: Any, context: Any) -> dict[str, Any]:
        """``invoke`` for a caller on an event loop of its own."""
        return await asyncio.to_thread(self.invoke, event, context)

    def close(self) -> None:
        """Close sessions, registry and sandbox, and stop the loop; the bridge answers no more."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("Bridge.close cannot run on the bridge's own loop; await aclose")
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._service is not None:
                closing = asyncio.run_coroutine_threadsafe(self._service.aclose(), self._loop)
                try:
                    closing.result(timeout=30)
                except Exception:  # noqa: BLE001 - closing is best effort
                    log.warning("closing the bridge's sessions failed", exc_info=True)
                self._service = None
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            if not self._thread.is_alive():
                self._loop.close()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    # ----- on the loop -----

    async def _open(self) -> BridgeService:
        if self._service is None:
            try:
                settings = self._settings or BridgeSettings()
            except ValidationError as exc:  # OPSAGENT_* values are never echoed
                raise ConfigurationError(f"settings: {_settings_problem(exc)}") from None
            if self._configure_logging:
                _audit_to(settings.audit_log or "stdout")
            self._service = await open_service(
                settings, central=self._central, sts_endpoint_url=self._sts_endpoint_url
            )
        return self._service

    async def _invoke(self, event: Any, context: Any) -> dict[str, Any]:
        started = time.monotonic()
        custom = client_custom(context)
        name = tool_name(custom)
        fields: dict[str, Any] = {
            "tool": name,
            "request_id": getattr(context, "aws_request_id", None),
        }
        fields.update({k: custom[v] for k, v in CONTEXT_IDS.items() if v in custom})
        response: dict[str, Any]
        try:
            tool = TOOLS.get(name or "")
            if tool is None:
                raise ToolError(
                    "unknown_tool",
                    (f"unknown tool {name!r}" if name else f"no tool name ({TOOL_NAME_KEY})")
                    + f"; this target's tools: {', '.join(TOOLS)}",
                )
            service = await self._open()
            caller = await service.callers.caller(custom)
            fields.update(
                user=caller.user,
                groups=list(caller.groups),
                verified=caller.verified,
                token_ignored=caller.token_ignored,
            )
            body = await tool(Call(service, caller, _end(context, started)), event)
            response = {
                "tool": name,
                "caller": caller.to_json(),
                **body,
                "sandbox": service.sandbox is not None,
                "elapsed_ms": int((time.monotonic() - started) * 1000),
            }
            response = fit(response)
            fields["outcome"] = "ok"
            if "accounts" in body and name != "list_accounts":
                fields["accounts"] = {a["account_id"]: a["status"] for a in body["accounts"]}
        except ToolError as exc:
            response = error_result(exc.code, exc.message)
        except ArgumentError as exc:
            response = error_result("bad_arguments", str(exc))
        except CallerError as exc:
            response = error_result("unauthenticated", str(exc))
        except (ConfigurationError, RegistryError) as exc:
            response = error_result("configuration", str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug answers as one, never as a traceback
            log.exception("bridge call failed")
            text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            response = error_result("internal", text)
        if response.get("isError"):
            fields.update(outcome=response["error"]["code"], error=response["error"]["message"])
        audit(
            "bridge.call",
            level=logging.WARNING if response.get("isError") else logging.INFO,
            elapsed_ms=int((time.monotonic() - started) * 1000),
            **fields,
        )
        return response


def _settings_problem(exc: ValidationError) -> str:
    """What is wrong with the OPSAGENT_* settings, without their values (a secret may be one)."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        where = "OPSAGENT_" + "_".join(str(p) for p in error["loc"]).upper() + ": "
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append((where if error["loc"] else "") + message)
    return "; ".join(parts)


def _end(context: Any, now: float) -> float | None:
    """When the answer must be back: the invocation's remaining time less a margin."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return None
    try:
        return now + float(remaining()) / 1000 - RESPONSE_MARGIN_S
    except (TypeError, ValueError):
        return None


def fit(response: dict[str, Any], limit: int = MAX_RESPONSE_BYTES) -> dict[str, Any]:
    """The response within ``limit`` bytes of JSON: the largest accounts' rows (or read
    results) left out first, each saying so."""
    size = len(json.dumps(response, default=str))
    if size <= limit:
        return response
    accounts = response.get("accounts") or []
    payloads = []
    for index, account in enumerate(accounts):
        key = "rows" if "rows" in account else "results"
        payloads.append((len(json.dumps(account.get(key) or [], default=str)), index, key))
    for payload, index, key in sorted(payloads, reverse=True):
        if size <= limit:
            break
        accounts[index][key] = []
        accounts[index]["omitted"] = (
            f"{key} left out: the answer would exceed Lambda's 6 MB response; "
            "query fewer accounts or narrow the plan"
        )
        size -= payload
    response["truncated"] = True
    return response


def _audit_to(sink: str) -> None:
    """The audit trail (one JSON line per record) to stdout (CloudWatch Logs in Lambda),
    stderr, a file, or nowhere, as OPSAGENT_AUDIT_LOG says."""
    if sink == "off":
        handler: logging.Handler = logging.NullHandler()
    elif sink in ("stdout", "stderr"):
        handler = logging.StreamHandler(sys.stdout if sink == "stdout" else sys.stderr)
    else:
        handler = logging.FileHandler(sink)
    handler.setFormatter(logging.Formatter("%(message)s"))
    audit_logger.handlers[:] = [handler]
    audit_logger.setLevel(logging.INFO)
    audit_logger.propagate = False


# ----- the Lambda entry -----

_default: Bridge | None = None
_default_lock = threading.Lock()


def default_bridge() -> Bridge:
    """The process's Bridge, created on first use from the environment."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Bridge(configure_logging=bool(os.environ.get(LAMBDA_MARKER)))
        return _default


def close_default() -> None:
    """Close the process's Bridge; the next ``handler`` call makes a new one (tests)."""
    global _default
    with _default_lock:
        bridge, _default = _default, None
    if bridge is not None:
        bridge.close()


def handler(event: Any, context: Any) -> dict[str, Any]:
    """The Lambda function's handler (``opsagent.bridge.handler.handler``)."""
    return default_bridge().invoke(event, context)


__all__ = [
    "MAX_RESPONSE_BYTES",
    "TOOL_NAME_KEY",
    "Bridge",
    "client_custom",
    "close_default",
    "default_bridge",
    "error_result",
    "fit",
    "handler",
    "tool_name",
]
