"""The CloudFormation in infrastructure/: cfn-lint clean, and the member role says what we mean.

The trust policy is evaluated the same way, for one AssumeRole request as the agent makes it
(``opsagent.access.identity``: SourceIdentity and two session tags), after resolving the
template's Ref/Fn::If for given parameters: every action the request needs (sts:AssumeRole,
sts:SetSourceIdentity when a source identity is set, sts:TagSession when tags are passed)
must be allowed by a statement naming the central principal whose conditions hold
(StringEquals, Null and ForAllValues:StringEquals; anything else fails loudly).

The policy checks evaluate the role's inline policy with a deliberately small evaluator:
explicit Deny beats Allow beats the implicit deny, ``Action``/``NotAction`` matched with IAM's
case-insensitive ``*``/``?`` wildcards (fnmatch), conditions limited to ``Bool`` (anything
else fails loudly rather than being guessed). Every statement's Resource is ``*`` (asserted),
so resources are not evaluated. The attached ViewOnlyAccess managed policy is not evaluated:
it only adds Allows, so it cannot undo a Deny found here, and the catalogue reads are checked
to be allowed by the inline policy alone.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import lint_file
from cfnlint.decode import decode

from opsagent.access.identity import GROUPS_TAG, USER_TAG, Asker
from tests.conftest import ROOT

INFRASTRUCTURE = ROOT / "infrastructure"
MEMBER_ROLE = INFRASTRUCTURE / "member-read-only-role.yaml"
MCP_KEY = "aws:ViaAWSMCPService"

# The IAM actions behind every read the resource catalogue (opsagent/graph/catalogue/)
# makes; an API operation is authorized as its own name except these (S3 API reference:
# API_ListBuckets, API_GetPublicAccessBlock, API_GetBucketEncryption).
IAM_ACTION_OF = {
    ("s3", "ListBuckets"): "s3:ListAllMyBuckets",
    ("s3", "GetPublicAccessBlock"): "s3:GetBucketPublicAccessBlock",
    ("s3", "GetBucketEncryption"): "s3:GetEncryptionConfiguration",
}
CATALOGUE_ACTIONS = (
    "ec2:DescribeInstances",
    "ec2:DescribeVolumes",
    "ec2:DescribeAddresses",
    "ec2:DescribeVpcs",
    "ec2:DescribeSecurityGroups",
    "lambda:ListFunctions",
    "lambda:ListTags",
    "s3:ListAllMyBuckets",
    "s3:GetBucketLocation",
    "s3:GetBucketTagging",
    "s3:GetBucketPublicAccessBlock",
    "s3:GetEncryptionConfiguration",
    "rds:DescribeDBInstances",
    "dynamodb:ListTables",
    "dynamodb:DescribeTable",
    "dynamodb:ListTagsOfResource",
    "ecs:ListClusters",
    "ecs:DescribeClusters",
    "ecs:ListServices",
    "ecs:DescribeServices",
    "eks:ListClusters",
    "eks:DescribeCluster",
    "eks:ListNodegroups",
    "eks:DescribeNodegroup",
    "cloudformation:DescribeStacks",
    "iam:ListRoles",
)
# Reads the client-side guard refuses (secrets, credentials, code, data).
SENSITIVE_ACTIONS = (
    "secretsmanager:GetSecretValue",
    "secretsmanager:BatchGetSecretValue",
    "ssm:GetParameter",
    "ssm:GetParameters",
    "ssm:GetParametersByPath",
    "ssm:GetParameterHistory",
    "kms:Decrypt",
    "s3:GetObject",
    "s3:GetObjectVersion",
    "lambda:GetFunction",
    "ecr:GetAuthorizationToken",
    "sts:GetSessionToken",
    "sts:GetFederationToken",
)
# Writes, and reads outside the agent's set, that must not get through the AWS MCP Server.
OTHER_ACTIONS_DENIED_THROUGH_MCP = (
    "ec2:RunInstances",
    "ec2:TerminateInstances",
    "ec2:CreateTags",
    "s3:PutObject",
    "s3:DeleteBucket",
    "s3:PutBucketPolicy",
    "iam:CreateUser",
    "iam:PassRole",
    "iam:GetAccountAuthorizationDetails",
    "lambda:InvokeFunction",
    "lambda:UpdateFunctionCode",
    "rds:DeleteDBInstance",
    "dynamodb:PutItem",
    "dynamodb:Scan",
    "dynamodb:GetItem",
    "ecs:RunTask",
    "eks:CreateCluster",
    "cloudformation:CreateStack",
    "cloudformation:GetTemplate",
    "ssm:SendCommand",
    "sts:AssumeRole",
    "organizations:ListAccounts",
)
THROUGH_MCP = {MCP_KEY.lower(): "true"}
DIRECT: dict[str, str] = {}  # a call made without the MCP server: the key is absent


def _load(path: Path) -> Any:
    template, matches = decode(str(path))
    assert not matches, [str(m) for m in matches]
    return template


def _cloudformation_templates() -> list[Path]:
    """Every file in infrastructure/ that is a CloudFormation template (has Resources)."""
    found = []
    for path in sorted(INFRASTRUCTURE.iterdir()):
        if path.suffix not in {".yaml", ".yml", ".json", ".template"}:
            continue
        template, _ = decode(str(path))
        if isinstance(template, dict) and "Resources" in template:
            found.append(path)
    return found


TEMPLATES = _cloudformation_templates()


def test_the_member_role_is_among_the_templates_found() -> None:
    assert MEMBER_ROLE in TEMPLATES
    # The account registry template is data for the agent, not CloudFormation.
    assert INFRASTRUCTURE / "account-registry.template.json" not in TEMPLATES


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_cfn_lint_reports_no_error_and_no_warning(template: Path) -> None:
    matches = lint_file(template)
    assert not matches, "\n".join(str(m) for m in matches)


# --- the member role ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template() -> Any:
    return _load(MEMBER_ROLE)


@pytest.fixture(scope="module")
def role(template: Any) -> Any:
    roles = [r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Role"]
    assert len(roles) == 1
    return roles[0]["Properties"]


@pytest.fixture(scope="module")
def statements(role: Any) -> list[dict[str, Any]]:
    found = [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    for statement in found:
        assert statement["Resource"] == "*", statement.get("Sid")
    return found


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)
    elif isinstance(node, str):
        yield node


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _action_matches(action: str, patterns: Any) -> bool:
    return any(fnmatch.fnmatchcase(action.lower(), str(p).lower()) for p in _as_list(patterns))


def _condition_holds(condition: dict[str, Any] | None, context: dict[str, str]) -> bool:
    for operator, tests in (condition or {}).items():
        if operator != "Bool":
            raise NotImplementedError(f"the test evaluator does not know {operator}")
        for key, expected in tests.items():
            actual = context.get(key.lower())  # condition keys are case-insensitive
            if actual is None or actual not in {str(v).lower() for v in _as_list(expected)}:
                return False
    return True


def _applies(statement: dict[str, Any], action: str, context: dict[str, str]) -> bool:
    if "Action" in statement:
        named = _action_matches(action, statement["Action"])
    else:
        named = not _action_matches(action, statement["NotAction"])
    return named and _condition_holds(statement.get("Condition"), context)


def _denied_by(statements: list[dict[str, Any]], action: str, context: dict[str, str]) -> set:
    return {s["Sid"] for s in statements if s["Effect"] == "Deny" and _applies(s, action, context)}


def _decision(statements: list[dict[str, Any]], action: str, context: dict[str, str]) -> str:
    if _denied_by(statements, action, context):
        return "Deny"
    if any(s["Effect"] == "Allow" and _applies(s, action, context) for s in statements):
        return "Allow"
    return "ImplicitDeny"


def _mcp_deny(statements: list[dict[str, Any]]) -> dict[str, Any]:
    scoped = [
        s
        for s in statements
        if s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {MCP_KEY: "true"}}
    ]
    assert len(scoped) == 1, "one Deny scoped to calls made through an AWS managed MCP server"
    return scoped[0]


def test_no_aws_mcp_action_is_left(template: Any) -> None:
    # aws-mcp:InvokeMcp / CallReadOnlyTool / CallReadWriteTool no longer have any effect.
    assert not [s for s in _strings(template) if "aws-mcp:" in s.lower()]


def test_trust_is_the_central_principal_inside_the_organization(template: Any, role: Any) -> None:
    parameters = template["Parameters"]
    assert parameters["OrganizationId"]["AllowedPattern"] == "^o-[a-z0-9]{10,32}$"
    assert "CentralPrincipalArn" in parameters
    assert parameters["RoleName"]["Default"] == "OpsAgentReadOnly"
    assert role["RoleName"] == {"Ref": "RoleName"}
    assert role["MaxSessionDuration"] == 3600

    trust = role["AssumeRolePolicyDocument"]["Statement"]
    actions = {a for statement in trust for a in _as_list(statement["Action"])}
    assert actions == {"sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"}
    for statement in trust:  # each action under the same principal and conditions
        assert statement["Effect"] == "Allow"
        assert statement["Principal"] == {"AWS": {"Ref": "CentralPrincipalArn"}}
        equals = statement["Condition"]["StringEquals"]
        assert equals["aws:PrincipalOrgID"] == {"Ref": "OrganizationId"}
        # The external id is required only when the parameter is set.
        assert equals["sts:ExternalId"] == {
            "Fn::If": ["HasExternalId", {"Ref": "ExternalId"}, {"Ref": "AWS::NoValue"}]
        }
    assert template["Conditions"]["HasExternalId"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "ExternalId"}, ""]}]
    }
    assert parameters["ExternalId"]["Default"] == ""
    assert parameters["RequireSourceIdentity"]["Default"] == "true"


# --- the trust policy, evaluated for the agent's AssumeRole ----------------------------------

CENTRAL_ARN = "arn:aws:iam::111111111111:role/OpsAgent"
ORG = "o-abcdefghij"
_NO_VALUE = object()


def _condition_true(template: Any, node: Any, parameters: dict[str, str]) -> bool:
    if "Fn::Not" in node:
        return not _condition_true(template, node["Fn::Not"][0], parameters)
    if "Fn::Equals" in node:
        left, right = (_resolve(template, v, parameters) for v in node["Fn::Equals"])
        return left == right
    if "Condition" in node:
        return _condition_true(template, template["Conditions"][node["Condition"]], parameters)
    raise NotImplementedError(node)


def _resolve(template: Any, node: Any, parameters: dict[str, str]) -> Any:
    """``node`` with Ref and Fn::If worked out for these parameter values."""
    if isinstance(node, dict) and list(node) == ["Ref"]:
        name = node["Ref"]
        if name == "AWS::NoValue":
            return _NO_VALUE
        return parameters.get(name, template["Parameters"][name].get("Default"))
    if isinstance(node, dict) and list(node) == ["Fn::If"]:
        name, then, otherwise = node["Fn::If"]
        chosen = template["Conditions"][name]
        return _resolve(
            template,
            then if _condition_true(template, chosen, parameters) else otherwise,
            parameters,
        )
    if isinstance(node, dict):
        resolved = {k: _resolve(template, v, parameters) for k, v in node.items()}
        return {k: v for k, v in resolved.items() if v is not _NO_VALUE}
    if isinstance(node, list):
        return [v for v in (_resolve(template, i, parameters) for i in node) if v is not _NO_VALUE]
    return node


def _trust_condition_holds(condition: dict[str, Any], context: dict[str, Any]) -> bool:
    for operator, tests in condition.items():
        for key, expected in tests.items():
            actual = context.get(key.lower())
            wanted = [str(v) for v in _as_list(expected)]
            if operator == "StringEquals":
                if actual is None or actual not in wanted:
                    return False
            elif operator == "Null":  # "false": the key must be present
                if (actual is None) != (wanted == ["true"]):
                    return False
            elif operator == "ForAllValues:StringEquals":
                if not set(actual or ()) <= set(wanted):
                    return False
            else:
                raise NotImplementedError(f"the test evaluator does not know {operator}")
    return True


def _assume_role_allowed(
    template: Any,
    parameters: dict[str, str],
    *,
    org: str = ORG,
    external_id: str | None = None,
    source_identity: str | None = None,
    tags: list[dict[str, str]] | None = None,
) -> bool:
    """Whether the member role's trust policy lets the central principal make this AssumeRole."""
    role = next(r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Role")
    trust = _resolve(template, role["Properties"]["AssumeRolePolicyDocument"], parameters)
    context: dict[str, Any] = {"aws:principalorgid": org}
    needed = {"sts:AssumeRole"}
    if external_id is not None:
        context["sts:externalid"] = external_id
    if source_identity is not None:
        context["sts:sourceidentity"] = source_identity
        needed.add("sts:SetSourceIdentity")
    if tags:
        context["aws:tagkeys"] = [tag["Key"] for tag in tags]
        needed.add("sts:TagSession")
    parameters = {"CentralPrincipalArn": CENTRAL_ARN, **parameters}
    return all(
        any(
            statement["Effect"] == "Allow"
            and statement["Principal"] == {"AWS": CENTRAL_ARN}
            and _action_matches(action, statement["Action"])
            and _trust_condition_holds(statement.get("Condition", {}), context)
            for statement in trust["Statement"]
        )
        for action in needed
    )


AGENT = Asker("alice@example.com", ("sre-oncall", "platform"))
PARAMETER_SETS = [
    {"OrganizationId": ORG, "CentralPrincipalArn": CENTRAL_ARN},
    {"OrganizationId": ORG, "CentralPrincipalArn": CENTRAL_ARN, "ExternalId": "ext-222"},
    {"OrganizationId": ORG, "CentralPrincipalArn": CENTRAL_ARN, "RequireSourceIdentity": "false"},
]


@pytest.mark.parametrize("parameters", PARAMETER_SETS, ids=["plain", "external-id", "optional"])
def test_the_agents_assume_role_with_source_identity_and_tags_is_allowed(
    template: Any, parameters: dict[str, str]
) -> None:
    external_id = parameters.get("ExternalId")
    agent = {
        "external_id": external_id,
        "source_identity": AGENT.source_identity,
        "tags": AGENT.session_tags(),
    }
    assert _assume_role_allowed(template, parameters, **agent)
    assert _assume_role_allowed(
        template, parameters, **{**agent, "tags": AGENT.session_tags(compact=True)}
    )
    # Outside the organization, or (when one is set) without the external id: refused.
    assert not _assume_role_allowed(template, parameters, **{**agent, "org": "o-otherorgxxx"})
    if external_id:
        assert not _assume_role_allowed(template, parameters, **{**agent, "external_id": None})
        assert not _assume_role_allowed(template, parameters, **{**agent, "external_id": "x"})


def test_the_session_tag_keys_are_the_agents_and_no_others(template: Any) -> None:
    parameters = PARAMETER_SETS[0]
    allowed = {"source_identity": "alice", "tags": AGENT.session_tags()}
    assert [tag["Key"] for tag in AGENT.session_tags()] == [USER_TAG, GROUPS_TAG]
    assert _assume_role_allowed(template, parameters, **allowed)
    for extra in ({"Key": "CostCenter", "Value": "x"}, {"Key": "opsagent:admin", "Value": "1"}):
        assert not _assume_role_allowed(
            template, parameters, source_identity="alice", tags=[*AGENT.session_tags(), extra]
        )


def test_a_source_identity_is_required_unless_switched_off_for_a_rollout(template: Any) -> None:
    required, optional = PARAMETER_SETS[0], PARAMETER_SETS[2]
    assert not _assume_role_allowed(template, required)
    assert not _assume_role_allowed(template, required, tags=AGENT.session_tags())
    assert _assume_role_allowed(template, optional)  # an agent older than attribution
    assert _assume_role_allowed(template, required, source_identity="alice")


def test_view_only_access_and_the_role_arn_output(template: Any, role: Any) -> None:
    assert role["ManagedPolicyArns"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/job-function/ViewOnlyAccess"}
    ]
    assert template["Outputs"]["RoleArn"]["Value"] == {
        "Fn::GetAtt": ["OpsAgentReadOnlyRole", "Arn"]
    }


def test_the_catalogue_actions_are_every_read_the_catalogue_makes() -> None:
    """A read added to the catalogue without its IAM action in the role fails here, not in
    a member account as "denied"."""
    from opsagent.graph.catalogue import CATALOGUE_READS

    needed = {IAM_ACTION_OF.get(read, f"{read[0]}:{read[1]}") for read in CATALOGUE_READS}
    assert needed == set(CATALOGUE_ACTIONS)


@pytest.mark.parametrize("context", [THROUGH_MCP, DIRECT], ids=["through-mcp", "direct"])
@pytest.mark.parametrize("action", CATALOGUE_ACTIONS)
def test_every_catalogue_read_is_allowed_and_never_denied(
    statements: list[dict[str, Any]], action: str, context: dict[str, str]
) -> None:
    assert _decision(statements, action, context) == "Allow"


@pytest.mark.parametrize("action", SENSITIVE_ACTIONS)
def test_sensitive_reads_are_denied_on_every_path(
    statements: list[dict[str, Any]], action: str
) -> None:
    mcp_deny = _mcp_deny(statements)
    through_mcp = _denied_by(statements, action, THROUGH_MCP)
    assert mcp_deny["Sid"] in through_mcp  # the MCP-scoped Deny covers it ...
    assert _denied_by(statements, action, DIRECT)  # ... and so does an unconditional one
    assert not any(s["Effect"] == "Allow" and _applies(s, action, THROUGH_MCP) for s in statements)


@pytest.mark.parametrize("action", OTHER_ACTIONS_DENIED_THROUGH_MCP)
def test_anything_else_through_mcp_is_denied(statements: list[dict[str, Any]], action: str) -> None:
    assert _mcp_deny(statements)["Sid"] in _denied_by(statements, action, THROUGH_MCP)


def test_the_mcp_exemptions_are_metadata_reads_only(statements: list[dict[str, Any]]) -> None:
    """NotAction may only widen by Describe*/List* (never Get*, never a whole service)."""
    exact_gets = {a.lower() for a in CATALOGUE_ACTIONS if ":Get" in a}
    for pattern in _as_list(_mcp_deny(statements)["NotAction"]):
        service, _, name = str(pattern).partition(":")
        assert service and "*" not in service and "?" not in service, pattern
        assert name.startswith(("Describe", "List")) or pattern.lower() in exact_gets, pattern


def test_every_deny_is_unconditional_or_scoped_to_mcp(statements: list[dict[str, Any]]) -> None:
    for statement in statements:
        if statement["Effect"] == "Deny":
            assert statement.get("Condition") in (None, {"Bool": {MCP_KEY: "true"}})
