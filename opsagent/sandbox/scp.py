"""Service control policies the sandbox enforces: a region deny per member account.

moto evaluates no IAM policy and no SCP, so on its own nothing in the sandbox can make one
read fail with AccessDenied in one region while the others answer. In real organizations
that is common: an SCP on the account (or its OU) denies the regions the company does not
use, the shape AWS documents as "Deny access to AWS based on the requested AWS Region"::

    {"Version": "2012-10-17",
     "Statement": [{"Sid": "DenyRegions", "Effect": "Deny", "NotAction": ["sts:*"],
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:RequestedRegion": ["us-west-2"]}}}]}

``RegionDenials`` holds that rule per account (``region_deny_policy`` renders it as the
document above) and ``request_denial`` applies it to one request the moto server is about to
serve, the way AWS does:

* the account of a request is its access key's account (``identity.resolve_access_key``,
  the same lookup as the STS trust check), never anything the request says about itself;
* ``aws:RequestedRegion`` is the region of the SigV4 credential scope (the Authorization
  header, or ``X-Amz-Credential`` of a presigned request). Global services are signed in
  us-east-1, so denying us-east-1 also denies IAM, as a plain region deny does in AWS;
* STS is exempt (``NotAction: sts:*``): AssumeRole into the account is signed by the central
  account, to which the member's SCP does not apply, and the agent must still reach the
  account to find out which of its regions answer;
* unsigned requests (moto's own ``/moto-api``) and keys moto does not know pass untouched.

A denied request never reaches moto. It is answered as AWS answers an explicit SCP deny:
HTTP 403, and the error code, headers and body of the signing service's protocol, which
botocore parses into a ``ClientError`` with that code:

==================== ============================ ===============================================
protocol             code                         shape
==================== ============================ ===============================================
ec2                  UnauthorizedOperation        ``<Response><Errors><Error>…</Errors>``
query                AccessDenied                 ``<ErrorResponse><Error><Type>Sender</Type>…``
json                 AccessDeniedException        ``{"__type", "message"}`` + x-amzn-ErrorType
rest-json            AccessDeniedException        x-amzn-ErrorType header, ``{"message"}``
rest-xml             AccessDenied                 ``<Error><Code>…`` (S3; empty body on HEAD)
smithy-rpc-v2-cbor   AccessDeniedException        CBOR ``{"__type", "message"}``
==================== ============================ ===============================================

(json and CBOR services that are ``awsQueryCompatible``, SQS and CloudWatch, also get the
``x-amzn-query-error: AccessDenied;Sender`` header, so botocore reports ``AccessDenied`` as
AWS's own answer does.) The protocol comes from the botocore service models whose signing
name is the credential scope's service, narrowed by the request's own shape where a service
speaks several (CloudWatch: CBOR, JSON or query); the operation, for the message, from the
``Action`` parameter, the ``X-Amz-Target`` header, the CBOR path, or the REST route of the
model's operations. Both are cached. The message reads as AWS's: "User: <caller ARN> is not
authorized to perform: ec2:DescribeInstances with an explicit deny in a service control
policy".
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
import threading
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

import botocore.session

from opsagent.registry.patterns import is_account_id, is_region
from opsagent.sandbox.identity import resolve_access_key

log = logging.getLogger(__name__)

Environ = dict[str, Any]
StartResponse = Callable[..., Any]

# Signing services the rule never applies to (the policy's NotAction).
EXEMPT_SERVICES = frozenset({"sts"})

# The SigV4 credential scope of an Authorization header (moto_server reads it too).
CREDENTIAL_RE = re.compile(r"Credential=([^/\s,]+)/(\d{8})/([^/\s,]+)/([^/\s,]+)/aws4_request")
_QUERY_CREDENTIAL_RE = re.compile(r"^([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request$")


# ----- the rule -----


def region_deny_policy(regions: Iterable[str]) -> dict[str, Any]:
    """The SCP document whose effect ``RegionDenials`` enforces for these regions."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyRegions",
                "Effect": "Deny",
                "NotAction": sorted(f"{service}:*" for service in EXEMPT_SERVICES),
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:RequestedRegion": sorted(regions)}},
            }
        ],
    }


class RegionDenials:
    """Per account, the regions an SCP denies there. Thread-safe; reads take no lock.

    Writers replace the whole mapping under a lock; the moto request threads read whatever
    mapping is current, so a request sees the rule either entirely before or after a change.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._denied: Mapping[str, frozenset[str]] = {}
        # Every denied region of any account: most requests are let through on this alone.
        self._any: frozenset[str] = frozenset()

    def set(self, account_id: str, regions: Iterable[str]) -> None:
        """The account's denied regions become exactly ``regions`` (empty: none)."""
        wanted = _regions(regions)
        self._update(_account(account_id), lambda _: wanted)

    def deny(self, account_id: str, regions: Iterable[str]) -> None:
        """Deny ``regions`` in the account, on top of those already denied there."""
        wanted = _regions(regions)
        self._update(_account(account_id), lambda current: current | wanted)

    def allow_all(self, account_id: str) -> None:
        self.set(account_id, ())

    def _update(self, account: str, change: Callable[[frozenset[str]], frozenset[str]]) -> None:
        with self._lock:
            denied = dict(self._denied)
            regions = change(denied.get(account, frozenset()))
            if regions:
                denied[account] = regions
            else:
                denied.pop(account, None)
            self._denied = denied
            self._any = frozenset().union(*denied.values())
        log.info(
            "sandbox scp: denied regions", extra={"account_id": account, "regions": sorted(regions)}
        )

    def clear(self) -> None:
        with self._lock:
            self._denied = {}
            self._any = frozenset()

    def regions(self, account_id: str) -> frozenset[str]:
        return self._denied.get(account_id, frozenset())

    def policy(self, account_id: str) -> dict[str, Any] | None:
        """The account's rule as an SCP document, None when it denies nothing."""
        regions = self.regions(account_id)
        return region_deny_policy(regions) if regions else None

    def denies(self, account_id: str, region: str) -> bool:
        return region in self._denied.get(account_id, ())

    def may_deny(self, region: str) -> bool:
        """False when no account denies this region: the request needs no further look."""
        return region in self._any


def _account(account_id: str) -> str:
    if not is_account_id(account_id):
        raise ValueError(f"an account id is 12 digits, not {account_id!r}")
    return account_id


def _regions(regions: Iterable[str]) -> frozenset[str]:
    if isinstance(regions, str):
        raise TypeError(f"regions is a collection of region names, not one string {regions!r}")
    found = frozenset(regions)
    bad = sorted(r for r in found if not is_region(r))
    if bad:
        raise ValueError(f"not region names: {bad!r}")
    return found


# ----- one request -----


@dataclass(frozen=True)
class SigningScope:
    """The SigV4 credential scope of a request: who signed it, for which region and service."""

    access_key_id: str
    region: str
    service: str


def signing_scope(environ: Environ) -> SigningScope | None:
    """The credential scope of a signed request (header or presigned query), else None."""
    match = CREDENTIAL_RE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if match is not None:
        return SigningScope(match.group(1), match.group(3), match.group(4))
    query = environ.get("QUERY_STRING", "")
    if "X-Amz-Credential" not in query:
        return None
    credential = dict(urllib.parse.parse_qsl(query)).get("X-Amz-Credential", "")
    match = _QUERY_CREDENTIAL_RE.match(credential)
    if match is None:
        return None
    return SigningScope(match.group(1), match.group(3), match.group(4))


@dataclass(frozen=True)
class ScpDenial:
    """The answer AWS gives to a request an SCP explicitly denies, in one protocol."""

    protocol: str
    message: str
    query_compatible: bool = False
    json_version: str = "1.1"
    xml_namespace: str | None = None
    s3_style: bool = False

    @property
    def code(self) -> str:
        """The error code botocore reports for this answer."""
        if self.protocol == "ec2":
            return "UnauthorizedOperation"
        if self.protocol in ("query", "rest-xml") or self.query_compatible:
            return "AccessDenied"
        return "AccessDeniedException"

    def render(self, method: str = "POST") -> tuple[str, list[tuple[str, str]], bytes]:
        """(status line, headers, body)."""
        request_id = str(uuid.uuid4())
        headers: list[tuple[str, str]] = []
        message = escape(self.message)
        if self.protocol == "ec2":
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                "<Response><Errors><Error><Code>UnauthorizedOperation</Code>"
                f"<Message>{message}</Message></Error></Errors>"
                f"<RequestID>{request_id}</RequestID></Response>"
            ).encode()
            headers.append(("Content-Type", "text/xml;charset=UTF-8"))
        elif self.protocol == "query" or (self.protocol == "rest-xml" and not self.s3_style):
            xmlns = f' xmlns="{escape(self.xml_namespace)}"' if self.xml_namespace else ""
            body = (
                f"<ErrorResponse{xmlns}><Error><Type>Sender</Type><Code>AccessDenied</Code>"
                f"<Message>{message}</Message></Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>"
            ).encode()
            headers += [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
        elif self.protocol == "rest-xml":
            host_id = uuid.uuid4().hex
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error><Code>AccessDenied</Code><Message>{message}</Message>"
                f"<RequestId>{request_id}</RequestId><HostId>{host_id}</HostId></Error>"
            ).encode()
            headers += [
                ("Content-Type", "application/xml"),
                ("x-amz-request-id", request_id),
                ("x-amz-id-2", host_id),
            ]
        elif self.protocol == "smithy-rpc-v2-cbor":
            body = _cbor_map({"__type": "AccessDeniedException", "message": self.message})
            headers += [
                ("Content-Type", "application/cbor"),
                ("smithy-protocol", "rpc-v2-cbor"),
                ("x-amzn-RequestId", request_id),
            ]
        elif self.protocol == "json":
            body = json.dumps({"__type": "AccessDeniedException", "message": self.message}).encode()
            headers += [
                ("Content-Type", f"application/x-amz-json-{self.json_version}"),
                ("x-amzn-ErrorType", "AccessDeniedException"),
                ("x-amzn-RequestId", request_id),
            ]
        else:  # rest-json
            body = json.dumps({"message": self.message}).encode()
            headers += [
                ("Content-Type", "application/json"),
                ("x-amzn-ErrorType", "AccessDeniedException"),
                ("x-amzn-RequestId", request_id),
            ]
        if self.query_compatible and self.protocol in ("json", "smithy-rpc-v2-cbor"):
            headers.append(("x-amzn-query-error", "AccessDenied;Sender"))
        if method == "HEAD":
            body = b""  # a HEAD answer has no body (S3 answers a denied HEAD with 403 alone)
        headers.append(("Content-Length", str(len(body))))
        return "403 Forbidden", headers, body

    def response(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        status, headers, body = self.render(environ.get("REQUEST_METHOD", "POST"))
        start_response(status, headers)
        return [body]


def request_denial(
    denials: RegionDenials, environ: Environ, form: Callable[[], Mapping[str, str]]
) -> ScpDenial | None:
    """The SCP denial AWS would answer this request with, None when the rule lets it through.

    ``form`` returns the request's query-protocol parameters (query string and form body);
    it is called only for a request that is denied and speaks the ec2 or query protocol.
    """
    scope = signing_scope(environ)
    if scope is None or not denials.may_deny(scope.region):
        return None
    if scope.service.lower() in EXEMPT_SERVICES:
        return None
    caller = resolve_access_key(scope.access_key_id)
    if caller is None or not denials.denies(caller.account_id, scope.region):
        return None
    resolved = MODELS.resolve(scope.service, environ)
    protocol = resolved.protocol
    operation = _operation(resolved, environ, form)
    action = _iam_action(scope.service, operation)
    if action is not None:
        message = (
            f"User: {caller.arn} is not authorized to perform: {action} "
            "with an explicit deny in a service control policy"
        )
    else:
        message = (
            f"User: {caller.arn} is not authorized to perform this operation "
            "with an explicit deny in a service control policy"
        )
    if protocol == "ec2":
        message = "You are not authorized to perform this operation. " + message
    metadata = resolved.metadata
    log.info(
        "sandbox scp: request denied",
        extra={
            "caller": caller.arn,
            "account_id": caller.account_id,
            "region": scope.region,
            "action": action or scope.service,
        },
    )
    return ScpDenial(
        protocol=protocol,
        message=message,
        query_compatible="awsQueryCompatible" in metadata,
        json_version=str(metadata.get("jsonVersion", "1.1")),
        xml_namespace=metadata.get("xmlNamespace"),
        s3_style=scope.service in ("s3", "s3-object-lambda", "s3express"),
    )


# ----- which protocol, which operation -----


# The request shapes botocore's protocols produce, and the protocols each can be.
_SHAPE_PROTOCOLS = {
    "cbor": ("smithy-rpc-v2-cbor",),
    "json": ("json",),
    "form": ("ec2", "query"),
    "rest": ("rest-json", "rest-xml"),
}


def _request_shape(environ: Environ) -> str:
    if environ.get("HTTP_SMITHY_PROTOCOL", "").lower() == "rpc-v2-cbor":
        return "cbor"
    if environ.get("HTTP_X_AMZ_TARGET"):
        return "json"
    content_type = environ.get("CONTENT_TYPE", "").lower()
    if content_type.startswith("application/x-www-form-urlencoded"):
        return "form"
    if content_type.startswith("application/x-amz-json"):
        return "json"
    query = environ.get("QUERY_STRING", "")
    if query.startswith("Action=") or "&Action=" in query:
        return "form"
    return "rest"


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    query: tuple[tuple[str, str | None], ...]
    rank: tuple[int, int, int]
    operation: str


@dataclass(frozen=True)
class ServiceInfo:
    """One botocore service model's metadata: enough to pick its protocol and shape errors."""

    name: str
    metadata: Mapping[str, Any]

    @property
    def signing_name(self) -> str:
        return str(
            self.metadata.get("signingName") or self.metadata.get("endpointPrefix") or self.name
        )

    @property
    def protocols(self) -> tuple[str, ...]:
        """The protocols it speaks, botocore's preference first."""
        protocols = list(self.metadata.get("protocols") or [])
        if self.metadata.get("protocol") and self.metadata["protocol"] not in protocols:
            protocols.append(self.metadata["protocol"])
        return tuple(protocols)


@dataclass(frozen=True)
class Resolved:
    """What a request speaks: its protocol and the services that may serve it there (the
    service named like the signing name first)."""

    protocol: str
    services: tuple[ServiceInfo, ...] = ()

    @property
    def metadata(self) -> Mapping[str, Any]:
        return self.services[0].metadata if self.services else {}


def _route(name: str, operation: Mapping[str, Any]) -> _Route:
    http = operation.get("http", {})
    path, _, query = str(http.get("requestUri", "/")).partition("?")
    regex, literal = "", 0
    for piece in re.split(r"(\{[^}]+\})", path.rstrip("/")):
        if piece.startswith("{"):
            regex += ".+" if piece.endswith("+}") else "[^/]+"
        else:
            regex += re.escape(piece)
            literal += len(piece)
    needs = tuple(
        (key, value if sep else None)
        for key, sep, value in (part.partition("=") for part in query.split("&") if part)
    )
    # More query keys, then more literal path, then not a special endpoint's twin (S3's
    # ListDirectoryBuckets shares ListBuckets' "GET /").
    special = 0 if operation.get("staticContextParams") else 1
    return _Route(
        method=str(http.get("method", "POST")).upper(),
        pattern=re.compile(regex + "/?"),
        query=needs,
        rank=(len(needs), literal, special),
        operation=name,
    )


class ServiceModels:
    """botocore's service models by SigV4 signing name; the protocol a request speaks.

    The first request that needs it reads the metadata of every model botocore has (its
    opening bytes only: about a tenth of a second; the models themselves are not kept) into
    an index by signing name; answers are cached per (signing name, request shape). A REST
    service's full model is loaded, once, only to tell which operation a request calls.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loader = botocore.session.get_session().get_component("data_loader")
        self._index: dict[str, tuple[ServiceInfo, ...]] | None = None
        self._resolved: dict[tuple[str, str], Resolved] = {}
        self._routes: dict[str, list[_Route]] = {}

    def resolve(self, signing_name: str, environ: Environ) -> Resolved:
        """The protocol this request speaks, and the services it may be for."""
        shape = _request_shape(environ)
        key = (signing_name, shape)
        known = self._resolved.get(key)
        if known is not None:
            return known
        with self._lock:
            resolved = None
            for service in self._services(signing_name):
                protocol = next(
                    (p for p in service.protocols if p in _SHAPE_PROTOCOLS[shape]), None
                )
                if protocol is None:
                    continue
                if resolved is None:
                    resolved = Resolved(protocol, (service,))
                elif protocol == resolved.protocol:
                    resolved = Resolved(protocol, (*resolved.services, service))
            if resolved is None:  # no model speaks for it: the request's shape alone decides
                resolved = Resolved(
                    {"rest": "rest-json", "form": "query"}.get(shape) or _SHAPE_PROTOCOLS[shape][0]
                )
            self._resolved[key] = resolved
            return resolved

    def rest_operation(
        self, services: Iterable[ServiceInfo], method: str, path: str, query: Mapping[str, str]
    ) -> str | None:
        """The operation whose REST route this request takes (the most specific match)."""
        for service in services:
            with self._lock:
                routes = self._routes.get(service.name)
                if routes is None:
                    model = self._loader.load_service_model(service.name, "service-2")
                    routes = [_route(name, op) for name, op in model["operations"].items()]
                    self._routes[service.name] = routes
            best: _Route | None = None
            for route in routes:
                if route.method != method or not route.pattern.fullmatch(path):
                    continue
                if not all(
                    key in query and (value is None or query[key] == value)
                    for key, value in route.query
                ):
                    continue
                if best is None or route.rank > best.rank:
                    best = route
            if best is not None:
                return best.operation
        return None

    def _services(self, signing_name: str) -> tuple[ServiceInfo, ...]:
        if self._index is None:
            index: dict[str, list[ServiceInfo]] = {}
            for name in sorted(self._loader.list_available_services("service-2")):
                info = ServiceInfo(name, self._metadata(name))
                index.setdefault(info.signing_name, []).append(info)
            self._index = {
                signing: tuple(sorted(infos, key=lambda i: (i.name != signing, i.name)))
                for signing, infos in index.items()
            }
        return self._index.get(signing_name, ())

    def _metadata(self, name: str) -> Mapping[str, Any]:
        """A model's metadata, read past the loader's cache (which would keep every model).

        Models open with their metadata object: it is decoded from the file's first bytes,
        not the whole (up to megabytes of) model; the whole file only if that fails.
        """
        version = self._loader.determine_latest_version(name, "service-2")
        for root in self._loader.search_paths:
            base = os.path.join(root, name, version, "service-2")
            for path, opener in ((base + ".json", open), (base + ".json.gz", gzip.open)):
                if not os.path.isfile(path):
                    continue
                with opener(path, "rb") as stream:
                    head = stream.read(_METADATA_BYTES).decode("utf-8", "replace")
                metadata = _leading_metadata(head)
                if metadata is not None:
                    return metadata
                data = self._loader.file_loader.load_file(base)
                return (data or {}).get("metadata", {})
        return {}


_METADATA_BYTES = 16384


def _leading_metadata(head: str) -> Mapping[str, Any] | None:
    """The ``"metadata": {...}`` object at the start of a model's text, None if not whole."""
    match = re.search(r'"metadata"\s*:\s*\{', head)
    if match is None:
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(head, match.end() - 1)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


MODELS = ServiceModels()


def _operation(
    resolved: Resolved, environ: Environ, form: Callable[[], Mapping[str, str]]
) -> str | None:
    """The API operation a request calls (``DescribeInstances``), None when unknown."""
    if resolved.protocol in ("ec2", "query"):
        return form().get("Action") or None
    if resolved.protocol == "json":
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        return target.rsplit(".", 1)[-1] or None
    if resolved.protocol == "smithy-rpc-v2-cbor":
        path = environ.get("PATH_INFO", "")
        return path.rsplit("/operation/", 1)[-1] if "/operation/" in path else None
    query = dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
    return MODELS.rest_operation(
        resolved.services,
        environ.get("REQUEST_METHOD", "GET").upper(),
        environ.get("PATH_INFO", "/") or "/",
        query,
    )


# IAM action prefixes that are not the signing name.
_ACTION_PREFIX = {"monitoring": "cloudwatch", "email": "ses"}
# S3 API operations authorized as an IAM action of another name.
_S3_ACTIONS = {
    "ListBuckets": "ListAllMyBuckets",
    "ListObjects": "ListBucket",
    "ListObjectsV2": "ListBucket",
    "HeadBucket": "ListBucket",
    "HeadObject": "GetObject",
    "ListObjectVersions": "ListBucketVersions",
    "ListMultipartUploads": "ListBucketMultipartUploads",
}


def _iam_action(signing_name: str, operation: str | None) -> str | None:
    if not operation:
        return None
    prefix = _ACTION_PREFIX.get(signing_name, signing_name)
    if prefix == "s3":
        operation = _S3_ACTIONS.get(operation, operation)
    return f"{prefix}:{operation}"


def _cbor_head(major: int, length: int) -> bytes:
    if length < 24:
        return bytes([major << 5 | length])
    if length < 0x100:
        return bytes([major << 5 | 24, length])
    if length < 0x10000:
        return bytes([major << 5 | 25]) + length.to_bytes(2, "big")
    return bytes([major << 5 | 26]) + length.to_bytes(4, "big")


def _cbor_map(values: Mapping[str, str]) -> bytes:
    """A CBOR map of text strings (RFC 8949 major types 5 and 3): all an error body needs."""
    out = bytearray(_cbor_head(5, len(values)))
    for key, value in values.items():
        for text in (key, value):
            data = text.encode()
            out += _cbor_head(3, len(data)) + data
    return bytes(out)
