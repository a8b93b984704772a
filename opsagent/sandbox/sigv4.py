"""SigV4 checking for the MCP stand-in, as AWS checks requests to the AWS MCP Server.

Every HTTP request must carry ``Authorization: AWS4-HMAC-SHA256 Credential=KEY/DATE/REGION/
SERVICE/aws4_request, SignedHeaders=..., Signature=...`` scoped to service ``aws-mcp`` and
region ``us-east-1``, an ``X-Amz-Date`` within 15 minutes of now, and, for temporary
credentials, a signed ``X-Amz-Security-Token``. ``aws-mcp`` is the signing name the real
endpoint implies: mcp-proxy-for-aws derives the service from the host name
``aws-mcp.us-east-1.api.aws`` (utils.get_service_name_and_region_from_endpoint) and IAM
actions for the server are ``aws-mcp:*``.

When the secret of the access key can be resolved (moto in this process), the signature is
recomputed with botocore's own SigV4 code over exactly the headers the client signed and
compared. When it cannot (an external endpoint), only the structure is checked, and the
server says so in its start-up log.
"""

from __future__ import annotations

import datetime
import hmac
import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

from opsagent.sandbox.identity import KeyIdentity

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
SecretResolver = Callable[[str], KeyIdentity | None]

CALLER_SCOPE_KEY = "opsagent.caller"
ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = datetime.timedelta(minutes=15)
MAX_BODY_BYTES = 4 * 1024 * 1024

_AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+)\s*,\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+)\s*,\s*Signature=(?P<signature>[0-9a-f]{64})\s*$"
)
_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_INVALID = "InvalidSignatureException"
_INCOMPLETE = (
    f"Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' ({ALGORITHM})"
)
_BAD_CREDENTIAL = "Credential must be KEY/DATE/REGION/SERVICE/aws4_request"
_INVALID_TOKEN = "The security token included in the request is invalid."
_EXPIRED_TOKEN = "The security token included in the request is expired"
_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method."
)


class SignatureError(Exception):
    """The request is not signed as AWS requires; the code and message are AWS's."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Caller:
    """Whom a verified request came from; the command runs with exactly these credentials."""

    access_key_id: str
    session_token: str | None
    # None when the secret could not be resolved (structural checks only).
    secret_access_key: str | None
    account_id: str | None
    arn: str | None
    signature_verified: bool


class SigV4Verifier:
    def __init__(
        self,
        service: str,
        region: str,
        resolver: SecretResolver | None,
        clock: Callable[[], datetime.datetime] | None = None,
    ) -> None:
        self.service = service
        self.region = region
        self.resolver = resolver
        self._clock = clock or (lambda: datetime.datetime.now(datetime.UTC))

    def verify(self, method: str, url: str, headers: list[tuple[str, str]], body: bytes) -> Caller:
        lowered = [(name.lower(), value) for name, value in headers]
        auth = _header(lowered, "authorization")
        if auth is None:
            raise SignatureError("MissingAuthenticationToken", "Missing Authentication Token")
        match = _AUTH_RE.match(auth.strip())
        if match is None:
            raise SignatureError("IncompleteSignature", _INCOMPLETE)
        parts = match.group("credential").split("/")
        if len(parts) != 5 or parts[4] != "aws4_request":
            raise SignatureError("IncompleteSignature", _BAD_CREDENTIAL)
        access_key_id, scope_date, region, service, _ = parts
        if service != self.service:
            raise SignatureError(
                _INVALID, f"Credential should be scoped to correct service: '{self.service}'."
            )
        if region != self.region:
            raise SignatureError(
                _INVALID, f"Credential should be scoped to a valid region: '{self.region}'."
            )
        amz_date = _header(lowered, "x-amz-date") or ""
        now = self._clock()
        self._check_time(amz_date, scope_date, now)
        signed = match.group("signed").split(";")
        token = _header(lowered, "x-amz-security-token")
        self._check_signed_headers(signed, {name for name, _ in lowered}, token)

        if self.resolver is None:
            return Caller(access_key_id, token, None, None, None, signature_verified=False)
        identity = self.resolver(access_key_id)
        if identity is None or not identity.active:
            raise SignatureError("UnrecognizedClientException", _INVALID_TOKEN)
        if identity.session_token is not None and token != identity.session_token:
            raise SignatureError("UnrecognizedClientException", _INVALID_TOKEN)
        expiration = identity.expiration
        if expiration is not None and expiration.replace(tzinfo=datetime.UTC) < now:
            raise SignatureError("ExpiredTokenException", _EXPIRED_TOKEN)
        expected = self._signature(identity, method, url, lowered, signed, amz_date, body, token)
        if not hmac.compare_digest(expected, match.group("signature")):
            raise SignatureError(_INVALID, _MISMATCH)
        return Caller(
            access_key_id,
            token,
            identity.secret_access_key,
            identity.account_id,
            identity.arn,
            signature_verified=True,
        )

    @staticmethod
    def _check_time(amz_date: str, scope_date: str, now: datetime.datetime) -> None:
        try:
            signed_at = datetime.datetime.strptime(amz_date, _DATE_FORMAT)
        except ValueError:
            raise SignatureError("IncompleteSignature", f"Bad X-Amz-Date: {amz_date!r}") from None
        signed_at = signed_at.replace(tzinfo=datetime.UTC)
        if scope_date != amz_date[:8]:
            raise SignatureError(_INVALID, "Credential date does not match the X-Amz-Date date")
        if signed_at < now - MAX_SKEW:
            earliest = (now - MAX_SKEW).strftime(_DATE_FORMAT)
            raise SignatureError(
                _INVALID,
                f"Signature expired: {amz_date} is now earlier than {earliest} "
                f"({now.strftime(_DATE_FORMAT)} - 15 min.)",
            )
        if signed_at > now + MAX_SKEW:
            latest = (now + MAX_SKEW).strftime(_DATE_FORMAT)
            raise SignatureError(
                _INVALID,
                f"Signature not yet current: {amz_date} is still later than {latest} "
                f"({now.strftime(_DATE_FORMAT)} + 15 min.)",
            )

    @staticmethod
    def _check_signed_headers(signed: list[str], present: set[str], token: str | None) -> None:
        required = ["host", "x-amz-date"] + (["x-amz-security-token"] if token else [])
        for name in required:
            if name not in signed:
                raise SignatureError(_INVALID, f"'{name}' must be a signed header")
        missing = [name for name in signed if name not in present]
        if missing:
            raise SignatureError(_INVALID, f"Signed headers are missing: {', '.join(missing)}")

    def _signature(
        self,
        identity: KeyIdentity,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        signed: list[str],
        amz_date: str,
        body: bytes,
        token: str | None,
    ) -> str:
        declared: dict[str, str] = {}
        for name, value in headers:
            if name in signed:
                # Repeated headers sign as one comma-joined value, as SigV4 specifies.
                declared[name] = f"{declared[name]},{value}" if name in declared else value
        request = AWSRequest(method=method, url=url, data=body, headers=declared)
        request.context["timestamp"] = amz_date
        signer = _DeclaredHeadersSigV4(
            Credentials(identity.access_key_id, identity.secret_access_key, token),
            self.service,
            self.region,
            signed,
        )
        canonical = signer.canonical_request(request)
        return signer.signature(signer.string_to_sign(request, canonical), request)


class _DeclaredHeadersSigV4(SigV4Auth):
    """botocore's SigV4 over exactly the headers the client declared as signed."""

    def __init__(self, credentials: Credentials, service: str, region: str, signed: list[str]):
        super().__init__(credentials, service, region)
        self._signed = set(signed)

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        header_map = HTTPHeaders()
        for name, value in request.headers.items():
            if name.lower() in self._signed:
                header_map[name.lower()] = value
        return header_map


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    values = [value for key, value in headers if key == name]
    return ",".join(values) if values else None


class SigV4Middleware:
    """ASGI middleware: verify, then hand the caller to the app in the request scope."""

    def __init__(self, app: ASGIApp, verifier: SigV4Verifier) -> None:
        self._app = app
        self._verifier = verifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body.extend(message.get("body", b""))
            if len(body) > MAX_BODY_BYTES:
                await _json_error(send, 413, "RequestEntityTooLarge", "The request is too large")
                return
            if not message.get("more_body", False):
                break
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        try:
            caller = self._verifier.verify(
                scope["method"], _url(scope, headers), headers, bytes(body)
            )
        except SignatureError as error:
            await _json_error(send, 401, error.code, error.message)
            return
        replayed = False

        async def replay() -> Message:
            # The app reads the body we consumed; after that, the client's own events.
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self._app({**scope, CALLER_SCOPE_KEY: caller}, replay, send)


def _url(scope: Scope, headers: list[tuple[str, str]]) -> str:
    host = _header([(k.lower(), v) for k, v in headers], "host") or "localhost"
    path = scope.get("raw_path") or scope["path"].encode()
    url = f"{scope.get('scheme', 'http')}://{host}{path.decode('latin-1')}"
    query = scope.get("query_string", b"")
    return f"{url}?{query.decode('latin-1')}" if query else url


async def _json_error(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"code": code, "message": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-amzn-errortype", code.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
