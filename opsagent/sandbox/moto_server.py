"""moto's server app on loopback, in a background thread, with AWS's cross-account STS rules.

moto answers every AWS API on one port and decides the account of a request by its access
key. Two things it does differently from AWS matter to a multi-account agent, and the WSGI
middleware here puts them right:

* sts:AssumeRole: moto hands out credentials for any role ARN, existing or not. Here the
  role must exist in the target account's IAM, its trust policy must allow the caller
  (account root, account id, or the caller's ARN), and an sts:ExternalId condition must
  match; otherwise the answer is AWS's: HTTP 403, STS XML error AccessDenied, "User: ... is
  not authorized to perform: sts:AssumeRole on resource: ...".
* moto honours an ``x-moto-account-id`` header that picks any account; AWS decides the
  account by the access key alone, so the header is dropped.
* moto evaluates no service control policy. The region deny of ``scp.RegionDenials`` (what an
  SCP with a ``StringEquals aws:RequestedRegion`` Deny does) is applied here: a request of a
  member account signed for one of its denied regions gets AWS's 403 in its service's
  protocol and never reaches moto. ``Sandbox.deny_regions`` sets it.
* moto has every region enabled in every account. ``optin.DisabledRegions`` (regions an
  account has not enabled, ``Sandbox.disable_regions``) is applied here first, as AWS fails
  authentication before it evaluates any policy: a request signed with that account's
  credentials for such a region gets AWS's answer (EC2 AuthFailure, query
  InvalidClientTokenId, json UnrecognizedClientException, ...) and never reaches moto.
"""

from __future__ import annotations

import io
import ipaddress
import logging
import re
import threading
import urllib.parse
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from moto.core.utils import utcnow
from moto.iam.models import iam_backends
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

from opsagent.registry.patterns import ACCOUNT_ID_PATTERN
from opsagent.sandbox.identity import PARTITION, resolve_access_key
from opsagent.sandbox.optin import DisabledRegions, request_failure
from opsagent.sandbox.scp import CREDENTIAL_RE, RegionDenials, request_denial
from opsagent.sandbox.trust import ACTION, AssumeRoleRequest, first_denied_action

log = logging.getLogger(__name__)

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

_ROLE_ARN_RE = re.compile(rf"^arn:aws:iam::({ACCOUNT_ID_PATTERN}):role/(?:.*/)?([\w+=,.@-]+)$")
_STS_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"


def require_loopback(host: str) -> None:
    """Refuse to serve anywhere but loopback: the sandbox holds credentials for every account."""
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        if host == "localhost":
            return
    raise ValueError(f"the sandbox serves on loopback only, not on {host!r}")


@dataclass(frozen=True)
class StsError:
    status: int
    code: str
    message: str

    def response(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        body = (
            f'<ErrorResponse xmlns="{_STS_NAMESPACE}">'
            f"<Error><Type>Sender</Type><Code>{escape(self.code)}</Code>"
            f"<Message>{escape(self.message)}</Message></Error>"
            f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
        ).encode()
        reason = {400: "Bad Request", 403: "Forbidden"}.get(self.status, "Error")
        start_response(
            f"{self.status} {reason}",
            [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))],
        )
        return [body]


_INVALID_TOKEN = StsError(
    403, "InvalidClientTokenId", "The security token included in the request is invalid."
)
_EXPIRED_TOKEN = StsError(
    403, "ExpiredToken", "The security token included in the request is expired"
)
_MISSING_TOKEN = StsError(
    403, "MissingAuthenticationToken", "Request is missing Authentication Token"
)


class AwsRulesMiddleware:
    """WSGI middleware in front of moto: account by access key only, regions an account has not
    enabled, AssumeRole by trust policy, region denials by SCP."""

    def __init__(
        self,
        app: WSGIApp,
        region_denials: RegionDenials | None = None,
        disabled_regions: DisabledRegions | None = None,
    ) -> None:
        self._app = app
        self.region_denials = region_denials if region_denials is not None else RegionDenials()
        self.disabled_regions = (
            disabled_regions if disabled_regions is not None else DisabledRegions()
        )

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        # moto would let this header choose any account; in AWS only the key decides.
        environ.pop("HTTP_X_MOTO_ACCOUNT_ID", None)
        # Authentication comes first: a region the account has not enabled knows no key of it.
        failure = request_failure(self.disabled_regions, environ)
        if failure is not None:
            return failure.response(environ, start_response)
        params = _sts_params(environ)
        if params is not None and params.get("Action") == "AssumeRole":
            error = check_assume_role(environ, params)
            if error is not None:
                return error.response(environ, start_response)
        denial = request_denial(self.region_denials, environ, lambda: _form_params(environ))
        if denial is not None:
            return denial.response(environ, start_response)
        return self._app(environ, start_response)


def _form_params(environ: Environ) -> dict[str, str]:
    """The parameters of an ec2/query request: query string, then the form body."""
    params = dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", "")))
    if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        params.update(urllib.parse.parse_qsl(_read_body(environ).decode("utf-8", "replace")))
    return params


def _sts_params(environ: Environ) -> dict[str, str] | None:
    """The query parameters of an STS request (body or query string), None for other services."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    match = CREDENTIAL_RE.search(auth)
    is_sts = (match is not None and match.group(4) == "sts") or environ.get(
        "HTTP_HOST", ""
    ).startswith("sts.")
    if auth and not is_sts:
        return None  # signed for another service: not ours to look at, body left unread
    params = dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", "")))
    if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        params.update(urllib.parse.parse_qsl(_read_body(environ).decode("utf-8", "replace")))
    # An unsigned AssumeRole still has to be refused as AWS refuses it.
    if is_sts or params.get("Action") == "AssumeRole":
        return params
    return None


def _read_body(environ: Environ) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    # The body is consumed; moto must still be able to read it.
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def check_assume_role(environ: Environ, params: dict[str, str]) -> StsError | None:
    """None when AWS would let this AssumeRole through, else the error AWS would answer."""
    match = CREDENTIAL_RE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if match is None:
        return _MISSING_TOKEN
    caller = resolve_access_key(match.group(1))
    if caller is None or not caller.active:
        return _INVALID_TOKEN
    if caller.kind == "assumed-role":
        if environ.get("HTTP_X_AMZ_SECURITY_TOKEN") != caller.session_token:
            return _INVALID_TOKEN
        if caller.expiration is not None and caller.expiration < utcnow():
            return _EXPIRED_TOKEN
    role_arn = params.get("RoleArn", "")
    arn_match = _ROLE_ARN_RE.match(role_arn)
    if arn_match is None:
        return StsError(400, "ValidationError", f"{role_arn!r} is not a valid role ARN")
    request = AssumeRoleRequest(
        caller_account=caller.account_id,
        caller_principal_arn=caller.principal_arn,
        caller_arn=caller.arn,
        external_id=params.get("ExternalId"),
        source_identity=params.get("SourceIdentity"),
        tags=_session_tags(params),
    )
    denied = _denied_action(arn_match.group(1), arn_match.group(2), request)
    if denied is not None:
        log.info(
            f"{denied} denied",
            extra={"caller": caller.arn, "role_arn": role_arn},
        )
        return StsError(
            403,
            "AccessDenied",
            f"User: {caller.arn} is not authorized to perform: {denied} on resource: {role_arn}",
        )
    return None


def _session_tags(params: dict[str, str]) -> dict[str, str]:
    """Tags.member.N.Key / .Value of a query-protocol AssumeRole, as key -> value."""
    tags: dict[str, str] = {}
    for name, key in params.items():
        if name.startswith("Tags.member.") and name.endswith(".Key"):
            tags[key] = params.get(name.removesuffix(".Key") + ".Value", "")
    return tags


def _denied_action(account_id: str, role_name: str, request: AssumeRoleRequest) -> str | None:
    """The first action of this AssumeRole the role's trust policy refuses, or None."""
    # `in` on moto's BackendDict does not create the account; a missing account has no roles.
    if account_id not in iam_backends:
        return ACTION
    roles = list(iam_backends[account_id][PARTITION].roles.values())
    role = next((r for r in roles if r.name == role_name), None)
    if role is None:
        return ACTION
    return first_denied_action(role.assume_role_policy_document, request)


class _QuietRequestHandler(MotoRequestHandler):
    """moto's request handler without a log line per request (the seed alone makes hundreds)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if str(code).startswith("5"):
            super().log_request(code, size)


class MotoServer:
    """moto on 127.0.0.1 and a free port, served from a background thread of this process."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        require_loopback(host)
        self._host = host
        self._port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        # The SCP region denials this server enforces (see scp.py); empty: none.
        self.region_denials = RegionDenials()
        # The regions each account has not enabled (see optin.py); empty: all enabled.
        self.disabled_regions = DisabledRegions()

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("the moto server is not running")
        host, port = self._server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host  # typed str | bytes
        return f"http://{host}:{port}"

    @property
    def address(self) -> tuple[str, int]:
        if self._server is None:
            raise RuntimeError("the moto server is not running")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        if self._server is not None:
            return
        app = AwsRulesMiddleware(
            DomainDispatcherApplication(create_backend_app),
            self.region_denials,
            self.disabled_regions,
        )
        self._server = make_server(
            self._host, self._port, app, threaded=True, request_handler=_QuietRequestHandler
        )
        self._thread = threading.Thread(
            # A short poll interval makes stop() take milliseconds instead of half a second.
            target=lambda: self._server.serve_forever(poll_interval=0.05),  # type: ignore[union-attr]
            name="opsagent-sandbox-moto",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None
