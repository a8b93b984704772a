"""The one script template: reads enter only as data, and the template does what it says.

The template is executed here for real (top-level await, as aws___run_script runs it) with
a ``call_boto3`` that answers from a table, so pagination, fan-out, per-read errors and
redaction are checked without a server; tests/e2e/test_sandbox_mcp.py and the end-to-end tests
run the same scripts on the stand-in.
"""

from __future__ import annotations

import ast
import copy
import json

import pytest
from mcp.types import CallToolResult, TextContent

from opsagent.access import FanOut, Read, ScriptError, build_script
from opsagent.access.script import (
    parse_script_result,
    plan_assignment,
    retry_delays,
    template_tree,
)

HOSTILE = [
    'quote"s',
    "single'quote",
    "'''triple'''",
    '"""triple"""',
    "new\nline",
    "back\\slash\\",
    "__import__('os').system('id')",
    '"); import os; ("',
    "'); import os; ('",
    "\x00\x1b[31m\u202e\ud800",
    "{PLAN}",
    "${x}$(id)`id`",
]


def _without_plan(tree: ast.Module) -> str:
    plan_assignment(tree).value = ast.Constant(value=None)
    return ast.dump(tree)


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_change_only_the_data_literal(value):
    read = Read(
        service="ec2",
        operation="DescribeInstances",
        region="us-east-1",
        params={"Filters": [{"Name": value, "Values": [value]}], value: value},
        then=[
            FanOut(
                each=value,
                reads=[
                    Read(
                        service="ec2",
                        operation="DescribeTags",
                        region="us-east-1",
                        params={"x": value},
                    )
                ],
            )
        ],
    )
    script = build_script([read], redact={("ec2", "DescribeInstances"): [value]})
    tree = ast.parse(script)
    assert _without_plan(copy.deepcopy(tree)) == _without_plan(template_tree())
    plan = ast.literal_eval(plan_assignment(tree).value)
    assert plan["reads"][0]["params"][value] == value
    assert plan["reads"][0]["then"][0]["reads"][0]["params"] == {"x": value}
    assert plan["reads"][0]["redact"] == [value]


def test_template_compiles_with_top_level_await():
    script = build_script([Read(service="s3", operation="ListBuckets", region="us-east-1")])
    compile(script, "<script>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


async def run_template(script: str, answers):
    """Run a script the way aws___run_script does: top-level await, last expression out."""
    calls: list[tuple[str, str, str, dict]] = []

    async def call_boto3(service_name, operation_name, region_name=None, params=None):
        calls.append((service_name, operation_name, region_name, dict(params or {})))
        return answers(service_name, operation_name, region_name, dict(params or {}))

    tree = ast.parse(script)
    last = tree.body[-1]
    assert isinstance(last, ast.Expr)
    tree.body[-1] = ast.Assign(
        targets=[ast.Name("return_value", ctx=ast.Store())], value=last.value
    )
    ast.fix_missing_locations(tree)
    scope = {"call_boto3": call_boto3}
    code = compile(tree, "<script>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    pending = eval(code, scope)  # noqa: S307 - our own template, run as the server runs it
    if pending is not None:
        await pending
    return json.loads(json.dumps(scope["return_value"])), calls


class AwsError(Exception):
    def __init__(self, code: str, operation: str):
        super().__init__(f"An error occurred ({code}) when calling the {operation} operation: no")
        self.response = {"Error": {"Code": code, "Message": "no"}}


def _result(value) -> CallToolResult:
    payload = {"status": "success", "return_value": value, "api_calls": []}
    return CallToolResult(
        content=[TextContent(type="text", text=json.dumps(payload))], structuredContent=payload
    )


async def test_pagination_follows_botocore_token_names_and_merges_pages():
    pages = {None: (["a", "b"], "t1"), "t1": (["c"], "t2"), "t2": (["d"], None)}

    def answers(service, operation, region, params):
        names, token = pages[params.get("nextToken")]
        return {"clusters": names, **({"nextToken": token} if token else {})}

    read = Read(service="eks", operation="ListClusters", region="us-west-2")
    value, calls = await run_template(build_script([read]), answers)
    [result] = parse_script_result(_result(value), [read])
    assert result.result == {"clusters": ["a", "b", "c", "d"]}
    assert not result.truncated
    assert [c[3] for c in calls] == [{}, {"nextToken": "t1"}, {"nextToken": "t2"}]


async def test_page_cap_marks_the_read_truncated():
    def answers(service, operation, region, params):
        return {"clusters": ["x"], "nextToken": "more"}

    read = Read(service="eks", operation="ListClusters", region="us-east-1")
    value, calls = await run_template(build_script([read], max_pages=3), answers)
    [result] = parse_script_result(_result(value), [read])
    assert len(calls) == 3 and result.truncated and result.result == {"clusters": ["x"] * 3}


async def test_fan_out_binds_items_batches_and_parent_params():
    def answers(service, operation, region, params):
        if operation == "ListClusters":
            return {"clusterArns": [f"arn:c{i}" for i in range(3)]}
        if operation == "ListServices":
            return {"serviceArns": [f"{params['cluster']}/s{i}" for i in range(12)]}
        if operation == "DescribeServices":
            return {
                "services": [
                    {"serviceName": s, "cluster": params["cluster"]} for s in params["services"]
                ]
            }
        raise AssertionError(operation)

    describe = Read(
        service="ecs",
        operation="DescribeServices",
        region="us-east-1",
        bind={"cluster": "parent.cluster", "services": "item"},
    )
    services = Read(
        service="ecs",
        operation="ListServices",
        region="us-east-1",
        bind={"cluster": "item"},
        then=[FanOut(each="serviceArns", reads=[describe], batch=10)],
    )
    read = Read(
        service="ecs",
        operation="ListClusters",
        region="us-east-1",
        then=[FanOut(each="clusterArns", reads=[services])],
    )
    value, calls = await run_template(build_script([read]), answers)
    [result] = parse_script_result(_result(value), [read])
    listed = result.children[0]
    assert [c.params["cluster"] for c in listed] == ["arn:c0", "arn:c1", "arn:c2"]
    batches = listed[1].children[0]
    assert [len(b.params["services"]) for b in batches] == [10, 2]
    assert all(b.params["cluster"] == "arn:c1" for b in batches)
    assert sum(len(b.result["services"]) for c in listed for b in c.children[0]) == 36


async def test_one_denied_read_keeps_every_other_read():
    def answers(service, operation, region, params):
        if region == "us-west-2":
            raise AwsError("UnauthorizedOperation", operation)
        return {"Reservations": [{"Instances": [{"InstanceId": "i-1"}]}]}

    reads = [
        Read(service="ec2", operation="DescribeInstances", region=r)
        for r in ("us-east-1", "us-west-2")
    ]
    value, _ = await run_template(build_script(reads), answers)
    east, west = parse_script_result(_result(value), reads)
    assert east.ok and east.result["Reservations"][0]["Instances"][0]["InstanceId"] == "i-1"
    assert west.result is None and west.error.code == "UnauthorizedOperation"


async def test_an_exception_without_a_response_still_gets_its_code_from_the_text():
    def answers(service, operation, region, params):
        raise RuntimeError("An error occurred (InternalError) when calling the X operation: no")

    read = Read(service="ec2", operation="DescribeVpcs", region="us-east-1")
    value, _ = await run_template(build_script([read]), answers)
    [result] = parse_script_result(_result(value), [read])
    assert result.error.code == "InternalError"


async def test_a_throttled_read_is_retried_and_then_answers():
    attempts = []

    def answers(service, operation, region, params):
        attempts.append(operation)
        if len(attempts) <= 2:
            raise AwsError("RequestLimitExceeded", operation)
        return {"Vpcs": [{"VpcId": "vpc-1"}]}

    read = Read(service="ec2", operation="DescribeVpcs", region="us-east-1")
    value, _ = await run_template(build_script([read], retry_base_s=0.01), answers)
    [result] = parse_script_result(_result(value), [read])
    assert result.ok and result.result == {"Vpcs": [{"VpcId": "vpc-1"}]}
    assert len(attempts) == 3


async def test_a_read_throttled_past_its_retries_fails_alone_and_other_errors_are_not_retried():
    calls = []

    def answers(service, operation, region, params):
        calls.append(operation)
        if operation == "DescribeVpcs":
            raise AwsError("Throttling", operation)
        raise AwsError("UnauthorizedOperation", operation)

    reads = [
        Read(service="ec2", operation="DescribeVpcs", region="us-east-1"),
        Read(service="ec2", operation="DescribeSubnets", region="us-east-1"),
    ]
    value, _ = await run_template(build_script(reads, retry_base_s=0.01), answers)
    vpcs, subnets = parse_script_result(_result(value), reads)
    assert vpcs.error.code == "Throttling" and calls.count("DescribeVpcs") == 4
    assert subnets.error.code == "UnauthorizedOperation" and calls.count("DescribeSubnets") == 1


def test_retry_waits_are_full_jitter_within_the_budget():
    for _ in range(200):
        delays = retry_delays()
        assert len(delays) == 3
        assert all(0 <= d <= 0.5 * 2**i for i, d in enumerate(delays))


async def test_redaction_removes_secret_members_before_the_answer_leaves_the_server():
    def answers(service, operation, region, params):
        return {"Functions": [{"FunctionName": "f", "Environment": {"Variables": {"PW": "x"}}}]}

    read = Read(service="lambda", operation="ListFunctions", region="us-east-1")
    script = build_script([read], redact={("lambda", "ListFunctions"): ["Functions.Environment"]})
    value, _ = await run_template(script, answers)
    assert "PW" not in json.dumps(value)
    [result] = parse_script_result(_result(value), [read])
    assert result.result == {"Functions": [{"FunctionName": "f"}]}


async def test_unless_skips_items_that_already_carry_the_value():
    def answers(service, operation, region, params):
        if operation == "ListBuckets":
            return {"Buckets": [{"Name": "a", "BucketRegion": "eu-west-1"}, {"Name": "b"}]}
        return {"LocationConstraint": "us-west-2"}

    location = Read(
        service="s3",
        operation="GetBucketLocation",
        region="us-east-1",
        bind={"Bucket": "item.Name"},
    )
    read = Read(
        service="s3",
        operation="ListBuckets",
        region="us-east-1",
        then=[FanOut(each="Buckets", reads=[location], unless="BucketRegion")],
    )
    value, calls = await run_template(build_script([read]), answers)
    assert [c[3] for c in calls if c[1] == "GetBucketLocation"] == [{"Bucket": "b"}]


@pytest.mark.parametrize(
    "payload, message",
    [
        ({"status": "error", "error": "NameError: x"}, "could not run the script: NameError: x"),
        ({"status": "success", "return_value": {"results": []}}, "not one result per read"),
        ({"status": "success", "return_value": "not json"}, "non-JSON"),
        ("just text", "non-JSON"),
    ],
)
def test_failed_or_foreign_answers_are_script_errors(payload, message):
    text = payload if isinstance(payload, str) else json.dumps(payload)
    result = CallToolResult(
        content=[TextContent(type="text", text=text)],
        structuredContent=payload if isinstance(payload, dict) else None,
    )
    read = Read(service="s3", operation="ListBuckets", region="us-east-1")
    with pytest.raises(ScriptError, match=message):
        parse_script_result(result, [read])


def test_a_return_value_sent_as_text_is_accepted():
    read = Read(service="s3", operation="ListBuckets", region="us-east-1")
    node = {
        "operation": "ListBuckets",
        "params": {},
        "result": {"Buckets": []},
        "error": None,
        "truncated": False,
        "children": [],
    }
    for value in (json.dumps({"results": [node]}), repr({"results": [node]})):
        [parsed] = parse_script_result(_result(value), [read])
        assert parsed.ok and parsed.result == {"Buckets": []}
