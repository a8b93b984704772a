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

import json
import logging
import re
import threading
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from opsagent.registry.patterns import is_account_id, is_region
from opsagent.sandbox.identity import resolve_access_key
from opsagent.sandbox.protocols import (
    MODELS,
    Resolved,
    ServiceInfo,
    ServiceModels,
    _operation,
)

log = logging.getLogger(__name__)

__all__ = [
    "CREDENTIAL_RE",
    "EXEMPT_SERVICES",
    "MODELS",
    "RegionDenials",
    "Resolved",
    "ScpDenial",
    "ServiceInfo",
    "ServiceModels",
    "SigningScope",
    "region_deny_policy",
    "request_denial",
    "signing_scope",
]

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
