"""The bridge's pieces that need no AWS: its published tool schema, the Gateway's Lambda
contract (tool names, propagated headers), argument checks and the response size cap."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import botocore.session
import pytest
from botocore.validate import validate_parameters

from opsagent.bridge.args import (
    ArgumentError,
    ListAccountsArgs,
    QueryAccountArgs,
    QueryAccountsArgs,
    QueryArg,
    parse,
)
from opsagent.bridge.caller import CallerError, bearer_token, propagated_headers
from opsagent.bridge.handler import client_custom, fit, tool_name
from opsagent.bridge.tools import TOOLS
from opsagent.graph.catalogue import CATALOGUE

TOOLS_JSON = Path(__file__).resolve().parents[2] / "opsagent" / "bridge" / "tools.json"
ARGS = {
    "list_accounts": ListAccountsArgs,
    "query_account": QueryAccountArgs,
    "query_accounts": QueryAccountsArgs,
}


@pytest.fixture(scope="module")
def schema() -> list[dict]:
    return json.loads(TOOLS_JSON.read_text())


def test_tools_json_names_the_tools_the_bridge_implements(schema) -> None:
    assert [tool["name"] for tool in schema] == list(TOOLS) == list(ARGS)


def test_tools_json_is_a_valid_gateway_tool_schema(schema) -> None:
    """As CreateGatewayTarget takes it inline (botocore's bedrock-agentcore-control model:
    SchemaDefinition has only type, description, properties, required and items)."""
    model = botocore.session.get_session().get_service_model("bedrock-agentcore-control")
    params = {
        "gatewayIdentifier": "gw",
        "name": "opsagent-bridge",
        "targetConfiguration": {
            "mcp": {
                "lambda": {
                    "lambdaArn": "arn:aws:lambda:us-east-1:111111111111:function:bridge",
                    "toolSchema": {"inlinePayload": schema},
                }
            }
        },
    }
    validate_parameters(params, model.operation_model("CreateGatewayTarget").input_shape)


def test_tools_json_properties_are_the_arguments_the_bridge_takes(schema) -> None:
    for tool in schema:
        fields = ARGS[tool["name"]].model_fields
        properties = tool["inputSchema"]["properties"]
        assert set(properties) == set(fields), tool["name"]
        required = {name for name, info in fields.items() if info.is_required()}
        assert set(tool["inputSchema"].get("required", [])) == required
    query = schema[1]["inputSchema"]["properties"]["plan"]["properties"]["queries"]["items"]
    assert set(query["properties"]) == set(QueryArg.model_fields)
    for type_id in CATALOGUE:  # a model choosing a type finds every one named
        assert type_id in query["properties"]["resource_type"]["description"]


def test_the_gateway_tool_name_loses_its_target_prefix() -> None:
    assert tool_name({"bedrockAgentCoreToolName": "opsagent-bridge___query_accounts"}) == (
        "query_accounts"
    )
    assert tool_name({"bedrockAgentCoreToolName": "a___b___c"}) == "b___c"  # the first ___
    assert tool_name({"bedrockAgentCoreToolName": "list_accounts"}) == "list_accounts"
    assert tool_name({}) is None
    assert client_custom(SimpleNamespace(client_context=None)) == {}
    assert client_custom(object()) == {}


def test_propagated_headers_as_object_or_json_text() -> None:
    key = "bedrockAgentCorePropagatedHeaders"
    assert propagated_headers({key: {"X-Opsagent-Token": "t"}}) == {"x-opsagent-token": "t"}
    assert propagated_headers({key: json.dumps({"x-opsagent-token": "t"})}) == {
        "x-opsagent-token": "t"
    }
    assert propagated_headers({}) == {}
    with pytest.raises(CallerError):
        propagated_headers({key: {"X-Opsagent-Token": "a", "x-opsagent-token": "b"}})
    with pytest.raises(CallerError):
        propagated_headers({key: "{not json"})


def test_bearer_token_from_either_header_never_two() -> None:
    assert bearer_token({"authorization": "Bearer abc"}) == "abc"
    assert bearer_token({"x-opsagent-token": "abc"}) == "abc"
    assert bearer_token({"x-opsagent-token": "Bearer abc", "authorization": "bearer abc"}) == "abc"
    assert bearer_token({"x-user": "alice"}) is None
    with pytest.raises(CallerError, match="different tokens"):
        bearer_token({"x-opsagent-token": "abc", "authorization": "Bearer xyz"})
    with pytest.raises(CallerError, match="Bearer"):
        bearer_token({"authorization": "Basic abc"})


def test_state_words_become_the_types_own_states() -> None:
    rds = QueryArg(resource_type="rds:db-instance", states=["running", "Stopped"])
    assert rds.states == ["available", "stopped"]
    with pytest.raises(ValueError, match="has no states"):
        QueryArg(resource_type="s3:bucket", states=["running"])
    with pytest.raises(ValueError, match="has no condition"):
        QueryArg(resource_type="ec2:instance", conditions=["unattached"])


def test_arguments_errors_are_one_readable_line() -> None:
    with pytest.raises(ArgumentError) as bad:
        parse(QueryAccountsArgs, {"accounts": "all", "plan": {"queries": [{}]}, "x": 1})
    text = str(bad.value)
    assert "accounts:" in text and "plan.queries.0.resource_type: Field required" in text
    assert "x: not a field of this tool" in text and "\n" not in text


def test_an_answer_too_large_for_lambda_leaves_out_the_largest_rows() -> None:
    small = {"account_id": "1", "status": "ok", "rows": [{"id": "a"}]}
    large = {"account_id": "2", "status": "ok", "rows": [{"id": "x" * 5000}]}
    response = fit({"accounts": [small, large]}, limit=3000)
    assert response["truncated"] is True
    assert response["accounts"][0]["rows"] == [{"id": "a"}]
    assert response["accounts"][1]["rows"] == [] and "6 MB" in response["accounts"][1]["omitted"]
    untouched = {"accounts": [dict(small)]}
    assert fit(untouched, limit=3000) == untouched
