"""Reading call_aws tool results: the response shapes of the AWS (API) MCP Server."""

from __future__ import annotations

import json

import pytest
from mcp.types import CallToolResult, TextContent

from opsagent.access import AwsCommandError, CommandAccessDenied, parse_call_aws_result

INSTANCES = {"Reservations": [{"Instances": [{"InstanceId": "i-1"}]}]}


def text_result(payload: object, *, is_error: bool = False) -> CallToolResult:
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return CallToolResult(content=[TextContent(type="text", text=text)], isError=is_error)


def structured_result(payload: dict) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=json.dumps(payload))], structuredContent=payload
    )


@pytest.mark.parametrize(
    "payload",
    [
        # CallAWSResponse, flattened, raw JSON under "json" or "as_json"
        {"cli_command": "aws ec2 describe-instances", "error": None, "status_code": 200,
         "error_code": None, "pagination_token": None, "json": json.dumps(INSTANCES)},
        {"cli_command": "aws ec2 describe-instances", "error": None, "status_code": 200,
         "as_json": json.dumps(INSTANCES)},
        # ProgramInterpretationResponse nesting
        {"cli_command": "aws ec2 describe-instances",
         "response": {"error": None, "status_code": 200, "error_code": None,
                      "pagination_token": None, "as_json": json.dumps(INSTANCES)}},
        # FastMCP's wrapper around a non-object return
        {"result": {"cli_command": "aws ec2 describe-instances", "json": json.dumps(INSTANCES)}},
    ],
)
def test_response_shapes(payload: dict) -> None:
    assert parse_call_aws_result(structured_result(payload)) == INSTANCES
    assert parse_call_aws_result(text_result(payload)) == INSTANCES


def test_structured_content_is_not_modified() -> None:
    payload = {"cli_command": "c", "response": {"as_json": json.dumps(INSTANCES)}}
    result = structured_result(payload)
    parse_call_aws_result(result)
    assert result.structuredContent == payload


def test_pagination_token_becomes_next_token() -> None:
    payload = {"cli_command": "c", "pagination_token": "tok",
               "as_json": json.dumps({"Volumes": []})}
    assert parse_call_aws_result(structured_result(payload)) == {"Volumes": [], "NextToken": "tok"}


def test_aws_error_is_typed_with_its_code() -> None:
    payload = {"cli_command": "aws ec2 describe-instances --instance-ids i-nope",
               "response": {"error": "An error occurred (InvalidInstanceID.NotFound) when "
                            "calling the DescribeInstances operation: no such instance",
                            "status_code": 400, "error_code": "InvalidInstanceID.NotFound",
                            "as_json": None}}
    with pytest.raises(AwsCommandError) as failed:
        parse_call_aws_result(structured_result(payload), account_id="222222222222",
                              command="aws ec2 describe-instances --instance-ids i-nope")
    assert failed.value.error_code == "InvalidInstanceID.NotFound"
    assert failed.value.status_code == 400
    assert failed.value.status == "error"
    assert failed.value.account_id == "222222222222"
    assert not isinstance(failed.value, CommandAccessDenied)


def test_permission_error_means_denied() -> None:
    payload = {"cli_command": "c", "error": "An error occurred (UnauthorizedOperation) when "
               "calling the DescribeInstances operation: not allowed", "status_code": 403}
    with pytest.raises(CommandAccessDenied) as failed:
        parse_call_aws_result(structured_result(payload))
    assert failed.value.error_code == "UnauthorizedOperation"
    assert failed.value.status == "denied"


def test_tool_error_carries_the_server_message() -> None:
    result = text_result("Error while validating the command: unknown operation", is_error=True)
    with pytest.raises(AwsCommandError) as failed:
        parse_call_aws_result(result)
    assert str(failed.value) == "Error while validating the command: unknown operation"
    assert failed.value.error_code is None


def test_server_error_response_with_detail() -> None:
    with pytest.raises(AwsCommandError, match="denied by security policy"):
        parse_call_aws_result(structured_result(
            {"detail": "Execution of this operation is denied by security policy."}))


def test_non_json_answer_is_an_error() -> None:
    with pytest.raises(AwsCommandError, match="non-JSON"):
        parse_call_aws_result(text_result("<html>oops</html>"))


def test_query_result_and_empty_body() -> None:
    payload = {"cli_command": "c", "as_json": json.dumps({"Result": [1, 2]})}
    assert parse_call_aws_result(structured_result(payload)) == {"Result": [1, 2]}
    assert parse_call_aws_result(structured_result({"cli_command": "c", "as_json": ""})) == {}
