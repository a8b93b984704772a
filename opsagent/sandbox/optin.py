"""Regions not enabled in an account (opt-in regions), refused as AWS refuses them.

Regions AWS launched after 20 March 2019 (af-south-1, ap-east-1, me-south-1, eu-south-1, ...)
are opt-in: disabled in every account until someone enables them there, while the older
regions cannot be disabled at all (AWS Account Management Reference Guide, "Enable or
disable AWS Regions in your account",
https://docs.aws.amazon.com/accounts/latest/reference/manage-acct-regions.html). An
account's credentials are not known in a region it has not enabled, so every call signed
for that region fails authentication, before any policy (an SCP included) is looked at.
moto knows nothing of this; ``DisabledRegions`` holds, per account, the regions it has not
enabled (``Sandbox.disable_regions`` / ``enable_regions``; the sandbox does not check that a
region is one AWS would let be disabled), and ``request_failure`` answers a request signed
with that account's credentials (its users, its role sessions, STS included) for one of
them, the account found by access key and the region read from the SigV4 scope as for the
SCP (``scp.signing_scope``). Other accounts and other regions answer as before.

What AWS answers, per protocol of the signing service (rendered by ``aws_errors``):

==================== ============================ ====== ====================================
protocol             code                         HTTP   message
==================== ============================ ====== ====================================
ec2                  AuthFailure                  401    AWS was not able to validate the
                                                         provided access credentials
query                InvalidClientTokenId         403    The security token included in the
                                                         request is invalid.
json, CBOR           UnrecognizedClientException  400    The security token included in the
                                                         request is invalid
rest-json            UnrecognizedClientException  403    (as query)
rest-xml (S3)        InvalidAccessKeyId           403    The AWS Access Key Id you provided
                                                         does not exist in our records.
==================== ============================ ====== ====================================

awsQueryCompatible json services (SQS) add ``x-amzn-query-error: InvalidClientTokenId;Sender``,
so botocore reports InvalidClientTokenId; rest-xml services other than S3 answer as query.
Sources, calls into regions the account had not enabled:

* ec2 AuthFailure, HTTP 401: https://github.com/turbot/steampipe-plugin-aws/issues/75
  ("status code: 401 ... regions that require opt-in, and were not opted in"),
  https://github.com/segmentio/aws-okta/issues/225 (DescribeInstances in ap-east-1),
  https://github.com/redhat-cop/agnosticd/pull/3762 (DescribeKeyPairs in ap-east-1).
  ``OptInRequired`` (HTTP 403, "The AWS access key ID needs a subscription for the service",
  https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html) is EC2's code
  for an account not subscribed to the service; the reports of disabled regions show
  AuthFailure, so that is what the sandbox answers.
* query InvalidClientTokenId, 403: https://github.com/ekristen/aws-nuke/issues/774 (RDS in
  ap-east-1, status 403), https://github.com/aws/aws-sdk-java/issues/2119 (Redshift in
  me-south-1 and ap-east-1, 403), https://github.com/remotion-dev/github-unwrapped-2022/issues/34
  (STS GetCallerIdentity in eu-south-1).
* json UnrecognizedClientException, 400: https://github.com/ekristen/aws-nuke/issues/774
  (Kinesis, SageMaker in ap-east-1, status 400), https://github.com/nccgroup/ScoutSuite/issues/1389
  (CloudWatch Logs in me-south-1).
* rest-json UnrecognizedClientException: https://github.com/epsagon/clear-lambda-storage/issues/9
  (Lambda ListFunctions in ap-east-1); 403 is the status of AWS's other unknown-credential
  errors (InvalidClientTokenId in the common errors, e.g.
  https://docs.aws.amazon.com/securityhub/1.0/APIReference/CommonErrors.html).
* S3 InvalidAccessKeyId, 403, is S3's answer for an access key it does not know
  (https://github.com/boto/boto3/issues/1786); no report of S3 in a disabled region was
  found, so this one is by analogy with the others (no body on HEAD: botocore says "403").
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from opsagent.sandbox.account_regions import AccountRegions
from opsagent.sandbox.aws_errors import ErrorAnswer, ProtocolContext, protocol_context
from opsagent.sandbox.identity import resolve_access_key
from opsagent.sandbox.protocols import MODELS
from opsagent.sandbox.scp import signing_scope

log = logging.getLogger(__name__)

__all__ = ["OPT_IN_ERROR_CODES", "DisabledRegions", "opt_in_failure", "request_failure"]

Environ = dict[str, Any]

_INVALID_TOKEN = "The security token included in the request is invalid"
_NOT_VALIDATED = "AWS was not able to validate the provided access credentials"


@dataclass(frozen=True)
class _Failure:
    code: str
    status: int
    message: str


# By protocol; the sources are in the module's docstring.
_FAILURES = {
    "ec2": _Failure("AuthFailure", 401, _NOT_VALIDATED),
    "query": _Failure("InvalidClientTokenId", 403, _INVALID_TOKEN + "."),
    "rest-xml": _Failure("InvalidClientTokenId", 403, _INVALID_TOKEN + "."),
    "json": _Failure("UnrecognizedClientException", 400, _INVALID_TOKEN),
    "smithy-rpc-v2-cbor": _Failure("UnrecognizedClientException", 400, _INVALID_TOKEN),
    "rest-json": _Failure("UnrecognizedClientException", 403, _INVALID_TOKEN + "."),
}
_S3_FAILURE = _Failure(
    "InvalidAccessKeyId", 403, "The AWS Access Key Id you provided does not exist in our records."
)
_QUERY_CODE = "InvalidClientTokenId"

# The code botocore reports, by protocol ("s3" for S3's rest-xml); for tests and readers.
OPT_IN_ERROR_CODES = {protocol: failure.code for protocol, failure in _FAILURES.items()} | {
    "s3": _S3_FAILURE.code
}


class DisabledRegions(AccountRegions):
    """Per account, the regions it has not enabled (see ``AccountRegions``)."""

    describes = "sandbox opt-in: regions not enabled"

    def disable(self, account_id: str, regions: Iterable[str]) -> None:
        self.add(account_id, regions)

    def enable(self, account_id: str, regions: Iterable[str]) -> None:
        self.remove(account_id, regions)


def opt_in_failure(context: ProtocolContext, access_key_id: str) -> ErrorAnswer:
    """AWS's answer, in this protocol, to a call into a region the caller's account has not
    enabled."""
    failure = _S3_FAILURE if context.s3_style else _FAILURES.get(context.protocol)
    if failure is None:  # a protocol botocore does not speak today: answer as query does
        failure = _FAILURES["query"]
    return ErrorAnswer(
        protocol=context.protocol,
        status=failure.status,
        code=failure.code,
        message=failure.message,
        query_code=_QUERY_CODE if context.query_compatible else None,
        json_version=context.json_version,
        xml_namespace=context.xml_namespace,
        s3_style=context.s3_style,
        s3_fields=(("AWSAccessKeyId", access_key_id),) if context.s3_style else (),
    )


def request_failure(disabled: DisabledRegions, environ: Environ) -> ErrorAnswer | None:
    """AWS's answer to this request when it is signed for a region its account has not
    enabled; None otherwise (unsigned requests and keys moto does not know included)."""
    scope = signing_scope(environ)
    if scope is None or not disabled.may_apply(scope.region):
        return None
    caller = resolve_access_key(scope.access_key_id)
    if caller is None or not disabled.applies(caller.account_id, scope.region):
        return None
    context = protocol_context(MODELS.resolve(scope.service, environ), scope.service)
    log.info(
        "sandbox opt-in: request to a region not enabled",
        extra={
            "caller": caller.arn,
            "account_id": caller.account_id,
            "region": scope.region,
            "service": scope.service,
        },
    )
    return opt_in_failure(context, scope.access_key_id)
