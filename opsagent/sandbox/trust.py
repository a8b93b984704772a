"""Role trust policy evaluation for sts:AssumeRole, as AWS applies it.

moto lets anyone assume any role ARN, existing or not. AWS allows AssumeRole only when the
role's trust policy has an Allow statement for sts:AssumeRole whose principal names the
caller (its account root, the account id, its ARN, or the role behind its session) and whose
conditions hold, and no Deny statement matches. An AssumeRole that sets a SourceIdentity
also needs sts:SetSourceIdentity, one that passes session tags sts:TagSession, each allowed
the same way ("Monitor and control actions taken with assumed roles" and "Passing session
tags in AWS STS", IAM User Guide:
https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_temp_control-access_monitor.html,
https://docs.aws.amazon.com/IAM/latest/UserGuide/id_session-tags.html). This module decides
that, with the condition operators trust policies use in practice; an operator or key it
does not know fails closed.
"""

from __future__ import annotations

import fnmatch
import json
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ACTION = "sts:AssumeRole"
SET_SOURCE_IDENTITY = "sts:SetSourceIdentity"
TAG_SESSION = "sts:TagSession"


@dataclass(frozen=True)
class AssumeRoleRequest:
    """Who asks to assume the role, and the request values conditions may test."""

    caller_account: str
    # The user ARN, or for a role session the role ARN (as aws:PrincipalArn is for sessions).
    caller_principal_arn: str
    # The exact caller ARN (session ARN for role sessions), which a policy may also name.
    caller_arn: str
    external_id: str | None = None
    source_identity: str | None = None
    # Session tags the request passes (key -> value).
    tags: Mapping[str, str] = field(default_factory=dict)
    extra_context: Mapping[str, str] = field(default_factory=dict)

    @property
    def actions(self) -> list[str]:
        """Every action this request needs the trust policy to allow."""
        return (
            [ACTION]
            + ([SET_SOURCE_IDENTITY] if self.source_identity is not None else [])
            + ([TAG_SESSION] if self.tags else [])
        )

    def context_value(self, key: str) -> str | None:
        lowered = key.lower()
        if lowered == "sts:externalid":
            return self.external_id
        if lowered == "sts:sourceidentity":
            return self.source_identity
        if lowered.startswith("aws:requesttag/"):
            wanted = key.split("/", 1)[1].lower()
            return next((v for k, v in self.tags.items() if k.lower() == wanted), None)
        if lowered == "aws:principalaccount":
            return self.caller_account
        if lowered == "aws:principalarn":
            return self.caller_principal_arn
        for name, value in self.extra_context.items():
            if name.lower() == lowered:
                return value
        return None


def parse_policy(document: str | Mapping[str, Any]) -> dict[str, Any]:
    """A policy document as a dict; IAM sometimes hands it back URL-encoded."""
    if isinstance(document, Mapping):
        return dict(document)
    try:
        return json.loads(document)
    except json.JSONDecodeError:
        return json.loads(urllib.parse.unquote(document))


def first_denied_action(
    document: str | Mapping[str, Any], request: AssumeRoleRequest
) -> str | None:
    """The first action of the request the trust policy does not allow, or None."""
    return next((a for a in request.actions if not trust_allows(document, request, a)), None)


def trust_allows(
    document: str | Mapping[str, Any], request: AssumeRoleRequest, action: str = ACTION
) -> bool:
    """True when the trust policy lets this caller perform ``action`` on the role."""
    try:
        policy = parse_policy(document)
    except (json.JSONDecodeError, TypeError):
        return False
    statements = policy.get("Statement", [])
    if isinstance(statements, Mapping):
        statements = [statements]
    allowed = False
    for statement in statements:
        if not isinstance(statement, Mapping) or not _statement_applies(statement, request, action):
            continue
        if statement.get("Effect") == "Deny":
            # An explicit deny always wins, whatever else allows.
            return False
        if statement.get("Effect") == "Allow":
            allowed = True
    return allowed


def _statement_applies(
    statement: Mapping[str, Any], request: AssumeRoleRequest, action: str
) -> bool:
    return (
        _action_matches(statement, action)
        and _principal_matches(statement, request)
        and _conditions_hold(statement.get("Condition", {}), request)
    )


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _action_matches(statement: Mapping[str, Any], action: str) -> bool:
    if "Action" in statement:
        return any(_glob(str(a), action) for a in _as_list(statement["Action"]))
    if "NotAction" in statement:
        return not any(_glob(str(a), action) for a in _as_list(statement["NotAction"]))
    return False


def _glob(pattern: str, value: str) -> bool:
    # IAM matching is case-insensitive for actions and supports * and ? wildcards.
    return fnmatch.fnmatchcase(value.lower(), pattern.lower())


def _principal_matches(statement: Mapping[str, Any], request: AssumeRoleRequest) -> bool:
    if "Principal" in statement:
        return _names_caller(statement["Principal"], request)
    if "NotPrincipal" in statement:
        return not _names_caller(statement["NotPrincipal"], request)
    return False


def _names_caller(principal: Any, request: AssumeRoleRequest) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, Mapping):
        return False
    # Only IAM principals ("AWS") can be our callers; Service/Federated never match them.
    for entry in _as_list(principal.get("AWS")):
        text = str(entry)
        if text == "*":
            return True
        if text == request.caller_account:
            return True
        if text == f"arn:aws:iam::{request.caller_account}:root":
            return True
        if text in (request.caller_principal_arn, request.caller_arn):
            return True
    return False


_STRING_OPERATORS = {
    "StringEquals": (lambda actual, wanted: actual == wanted, False),
    "StringNotEquals": (lambda actual, wanted: actual != wanted, True),
    "StringEqualsIgnoreCase": (lambda actual, wanted: actual.lower() == wanted.lower(), False),
    "StringNotEqualsIgnoreCase": (lambda actual, wanted: actual.lower() != wanted.lower(), True),
    "StringLike": (lambda actual, wanted: fnmatch.fnmatchcase(actual, wanted), False),
    "StringNotLike": (lambda actual, wanted: not fnmatch.fnmatchcase(actual, wanted), True),
    "ArnEquals": (lambda actual, wanted: actual == wanted, False),
    "ArnLike": (lambda actual, wanted: fnmatch.fnmatchcase(actual, wanted), False),
}


def _conditions_hold(conditions: Any, request: AssumeRoleRequest) -> bool:
    if not conditions:
        return True
    if not isinstance(conditions, Mapping):
        return False
    for operator, tests in conditions.items():
        if not isinstance(tests, Mapping):
            return False
        if_exists = operator.endswith("IfExists")
        base = operator.removesuffix("IfExists")
        for key, wanted in tests.items():
            actual = request.context_value(str(key))
            if base == "Null":
                # "Null": true means the key must be absent; false means present.
                must_be_absent = str(_as_list(wanted)[0]).lower() == "true"
                if (actual is None) != must_be_absent:
                    return False
                continue
            if base not in _STRING_OPERATORS:
                return False  # unknown operator: fail closed, as a deny is the safe answer
            compare, negated = _STRING_OPERATORS[base]
            if actual is None:
                # A missing key satisfies only IfExists and the negated operators.
                if if_exists or negated:
                    continue
                return False
            values = [str(v) for v in _as_list(wanted)]
            if negated:
                if not all(compare(actual, v) for v in values):
                    return False
            elif not any(compare(actual, v) for v in values):
                return False
    return True
