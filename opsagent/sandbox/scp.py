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
HTTP 403, and the error code, headers and body of the signing service's protocol (written
by ``aws_errors``), which botocore parses into a ``ClientError`` with that code:

==================== ============================
protocol             code
==================== ============================
ec2                  UnauthorizedOperation
query                AccessDenied
json                 AccessDeniedException
rest-json            AccessDeniedException
rest-xml             AccessDenied (S3; no body on HEAD)
smithy-rpc-v2-cbor   AccessDeniedException
==================== ============================

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

import logging
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from opsagent.sandbox.account_regions import AccountRegions
from opsagent.sandbox.aws_errors import ErrorAnswer, protocol_context
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
# The code of an explicit deny per protocol; json, rest-json and CBOR: AccessDeniedException.
_DENIAL_CODES = {
    "ec2": "UnauthorizedOperation",
    "query": "AccessDenied",
    "rest-xml": "AccessDenied",
}

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


class RegionDenials(AccountRegions):
    """Per account, the regions an SCP denies there (see ``AccountRegions``)."""

    describes = "sandbox scp: denied regions"

    def deny(self, account_id: str, regions: Iterable[str]) -> None:
        """Deny ``regions`` in the account, on top of those already denied there."""
        self.add(account_id, regions)

    def allow_all(self, account_id: str) -> None:
        self.set(account_id, ())

    def policy(self, account_id: str) -> dict[str, Any] | None:
        """The account's rule as an SCP document, None when it denies nothing."""
        regions = self.regions(account_id)
        return region_deny_policy(regions) if regions else None

    def denies(self, account_id: str, region: str) -> bool:
        return self.applies(account_id, region)

    def may_deny(self, region: str) -> bool:
        """False when no account denies this region: the request needs no further look."""
        return self.may_apply(region)


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
        return self.answer().botocore_code

    def answer(self) -> ErrorAnswer:
        """The 403 AWS answers, as ``aws_errors`` writes it in this protocol."""
        return ErrorAnswer(
            protocol=self.protocol,
            status=403,
            code=_DENIAL_CODES.get(self.protocol, "AccessDeniedException"),
            message=self.message,
            query_code="AccessDenied" if self.query_compatible else None,
            json_version=self.json_version,
            xml_namespace=self.xml_namespace,
            s3_style=self.s3_style,
        )

    def render(self, method: str = "POST") -> tuple[str, list[tuple[str, str]], bytes]:
        """(status line, headers, body)."""
        return self.answer().render(method)

    def response(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        return self.answer().response(environ, start_response)


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
    context = protocol_context(resolved, scope.service)
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
        query_compatible=context.query_compatible,
        json_version=context.json_version,
        xml_namespace=context.xml_namespace,
        s3_style=context.s3_style,
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
