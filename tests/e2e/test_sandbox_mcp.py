"""The AWS MCP Server stand-in: SigV4 at the door, the caller's own account behind it.

Everything goes through the real mcp-proxy-for-aws client, SigV4-signed. Ground truth is read
from moto with boto3 under the same assumed role the MCP caller uses.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import socket
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import boto3
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from mcp import ClientSession
from mcp.shared.exceptions import McpError
from mcp.types import CallToolResult, TextContent
from mcp_proxy_for_aws.client import aws_iam_streamablehttp_client

from opsagent.sandbox import Sandbox
from opsagent.sandbox.mcp_server import McpServer
from opsagent.sandbox.seed import CENTRAL, MEMBER_ACCOUNTS, READ_ONLY_ROLE, REGIONS

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "sandbox-test", "version": "1"},
    },
}
MCP_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
EIGHT_TOOLS = {
    "aws___run_script",
    "aws___list_regions",
    "aws___get_regional_availability",
    "aws___search_documentation",
    "aws___read_documentation",
    "aws___retrieve_skill",
    "aws___get_presigned_url",
    "aws___get_tasks",
}
MISSING_INSTANCE = "i-0123456789abcdef0"


def _assumed(sandbox: Sandbox, account: str) -> Credentials:
    central = sandbox.central_credentials
    sts = boto3.client(
        "sts",
        endpoint_url=sandbox.aws_endpoint,
        region_name="us-east-1",
        aws_access_key_id=central.access_key,
        aws_secret_access_key=central.secret_key,
    )
    answer = sts.assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/{READ_ONLY_ROLE}", RoleSessionName="mcp-test"
    )["Credentials"]
    return Credentials(answer["AccessKeyId"], answer["SecretAccessKey"], answer["SessionToken"])


def _instance_ids(sandbox: Sandbox, creds: Credentials, region: str) -> set[str]:
    ec2 = boto3.client(
        "ec2",
        endpoint_url=sandbox.aws_endpoint,
        region_name=region,
        aws_access_key_id=creds.access_key,
        aws_secret_access_key=creds.secret_key,
        aws_session_token=creds.token,
    )
    return {
        inst["InstanceId"]
        for reservation in ec2.describe_instances()["Reservations"]
        for inst in reservation["Instances"]
    }


@asynccontextmanager
async def mcp_session(endpoint: str, creds: Credentials) -> AsyncIterator[ClientSession]:
    async with aws_iam_streamablehttp_client(
        endpoint, aws_service="aws-mcp", aws_region="us-east-1", credentials=creds
    ) as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            yield session


def _text(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


def _answer(result: CallToolResult) -> dict[str, Any]:
    """The run_script payload; text and structuredContent carry the same JSON."""
    answer = json.loads(_text(result))
    assert answer == result.structuredContent
    assert result.isError == (answer["status"] == "error"), answer
    return answer


def _success(result: CallToolResult) -> dict[str, Any]:
    answer = _answer(result)
    assert answer["status"] == "success", answer
    assert set(answer) == {"status", "return_value", "api_calls"}
    return answer


async def _run(
    endpoint: str, creds: Credentials, code: str, meta: dict[str, Any] | None = None
) -> CallToolResult:
    async with mcp_session(endpoint, creds) as session:
        return await session.call_tool("aws___run_script", {"code": code}, meta=meta)


def _signed(creds: Credentials, url: str, body: bytes, service: str = "aws-mcp") -> dict[str, str]:
    request = AWSRequest(method="POST", url=url, data=body, headers=dict(MCP_HEADERS))
    SigV4Auth(creds, service, "us-east-1").add_auth(request)
    return dict(request.headers.items())


# ----- the door: SigV4 -----


async def test_unsigned_request_is_401(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient() as client:
        answer = await client.post(sandbox.mcp_endpoint, json=INITIALIZE, headers=MCP_HEADERS)
    assert answer.status_code == 401
    assert answer.json()["code"] == "MissingAuthenticationToken"


async def test_tampered_signature_is_401(sandbox: Sandbox) -> None:
    creds = _assumed(sandbox, MEMBER_ACCOUNTS[0])
    body = json.dumps(INITIALIZE).encode()
    headers = _signed(creds, sandbox.mcp_endpoint, body)
    good = headers["Authorization"]
    last = good[-1]
    headers["Authorization"] = good[:-1] + ("0" if last != "0" else "1")
    async with httpx.AsyncClient() as client:
        tampered = await client.post(sandbox.mcp_endpoint, content=body, headers=headers)
        # The same body with a different payload than the one signed is refused too.
        headers["Authorization"] = good
        altered = await client.post(sandbox.mcp_endpoint, content=body + b" ", headers=headers)
        accepted = await client.post(sandbox.mcp_endpoint, content=body, headers=headers)
    assert tampered.status_code == 401
    assert tampered.json()["code"] == "InvalidSignatureException"
    assert altered.status_code == 401
    assert accepted.status_code == 200


async def test_malformed_and_misscoped_signatures_are_401(sandbox: Sandbox) -> None:
    creds = _assumed(sandbox, MEMBER_ACCOUNTS[1])
    body = json.dumps(INITIALIZE).encode()
    wrong_service = _signed(creds, sandbox.mcp_endpoint, body, service="execute-api")
    no_token = _signed(creds, sandbox.mcp_endpoint, body)
    no_token.pop("X-Amz-Security-Token")
    garbage = {**MCP_HEADERS, "Authorization": "AWS4-HMAC-SHA256 nonsense"}
    stranger = _signed(Credentials("AKIAUNKNOWNKEY000000", "x"), sandbox.mcp_endpoint, body)
    async with httpx.AsyncClient() as client:
        answers = {
            name: await client.post(sandbox.mcp_endpoint, content=body, headers=headers)
            for name, headers in {
                "wrong_service": wrong_service,
                "no_token": no_token,
                "garbage": garbage,
                "stranger": stranger,
            }.items()
        }
    assert {name: a.status_code for name, a in answers.items()} == dict.fromkeys(answers, 401)
    assert "aws-mcp" in answers["wrong_service"].json()["message"]
    assert answers["garbage"].json()["code"] == "IncompleteSignature"
    assert answers["stranger"].json()["code"] == "UnrecognizedClientException"


async def test_stale_signature_is_401(sandbox: Sandbox) -> None:
    creds = _assumed(sandbox, MEMBER_ACCOUNTS[2])
    body = json.dumps(INITIALIZE).encode()
    request = AWSRequest(method="POST", url=sandbox.mcp_endpoint, data=body, headers=MCP_HEADERS)
    signer = SigV4Auth(creds, "aws-mcp", "us-east-1")
    # Sign as if it were 20 minutes ago: outside AWS's 15-minute window.
    stale = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() - 20 * 60))
    request.context["timestamp"] = stale
    request.headers["X-Amz-Date"] = stale
    request.headers["X-Amz-Security-Token"] = creds.token
    signature = signer.signature(
        signer.string_to_sign(request, signer.canonical_request(request)), request
    )
    signer._inject_signature_to_request(request, signature)
    async with httpx.AsyncClient() as client:
        answer = await client.post(
            sandbox.mcp_endpoint, content=body, headers=dict(request.headers.items())
        )
    assert answer.status_code == 401
    assert "Signature expired" in answer.json()["message"]


# ----- the tools -----


async def test_tools_list_is_the_eight_tools_of_today(sandbox: Sandbox) -> None:
    async with mcp_session(sandbox.mcp_endpoint, _assumed(sandbox, MEMBER_ACCOUNTS[0])) as s:
        tools = {t.name: t for t in (await s.list_tools()).tools}
    assert set(tools) == EIGHT_TOOLS
    schema = tools["aws___run_script"].inputSchema
    assert schema["required"] == ["code"]
    assert set(schema["properties"]) == {"code"}
    assert schema["properties"]["code"]["type"] == "string"
    assert "call_boto3" in (tools["aws___run_script"].description or "")
    assert not tools["aws___list_regions"].inputSchema.get("properties")
    assert tools["aws___search_documentation"].inputSchema["required"] == ["search_phrase"]
    assert tools["aws___retrieve_skill"].inputSchema["required"] == ["skill_name"]
    assert tools["aws___get_regional_availability"].inputSchema["required"] == ["resource_type"]


async def test_call_aws_is_a_json_rpc_error_as_on_the_real_server(sandbox: Sandbox) -> None:
    creds = _assumed(sandbox, MEMBER_ACCOUNTS[0])
    async with mcp_session(sandbox.mcp_endpoint, creds) as session:
        with pytest.raises(McpError) as info:
            await session.call_tool(
                "aws___call_aws", {"cli_command": "aws sts get-caller-identity"}
            )
        # The session lives on.
        after = await session.call_tool("aws___run_script", {"code": "1 + 1"})
    assert info.value.error.code == -32600
    assert info.value.error.message == "The call_aws tool has been removed, use another one."
    assert _success(after)["return_value"] == 2


async def test_list_regions(sandbox: Sandbox) -> None:
    async with mcp_session(sandbox.mcp_endpoint, _assumed(sandbox, MEMBER_ACCOUNTS[0])) as s:
        result = await s.call_tool("aws___list_regions", {})
    regions = json.loads(_text(result))["content"]["result"]
    by_id = {r["region_id"]: r["region_long_name"] for r in regions}
    assert by_id["us-east-1"] == "US East (N. Virginia)"
    assert "us-west-2" in by_id


async def test_knowledge_tools_answer_that_this_is_the_offline_sandbox(sandbox: Sandbox) -> None:
    async with mcp_session(sandbox.mcp_endpoint, _assumed(sandbox, MEMBER_ACCOUNTS[1])) as s:
        answers = {
            "search": await s.call_tool(
                "aws___search_documentation", {"search_phrase": "ec2 instance states"}
            ),
            "read": await s.call_tool(
                "aws___read_documentation",
                {"requests": [{"url": "https://docs.aws.amazon.com/ec2/index.html"}]},
            ),
            "skill": await s.call_tool("aws___retrieve_skill", {"skill_name": "some-skill"}),
            "availability": await s.call_tool(
                "aws___get_regional_availability",
                {"resource_type": "api", "regions": ["us-east-1"]},
            ),
        }
        presigned = await s.call_tool(
            "aws___get_presigned_url", {"requests": [{"bucket": "b", "key": "k"}]}
        )
        tasks = await s.call_tool("aws___get_tasks", {"task_ids": ["t-1"]})
        too_many = await s.call_tool(
            "aws___get_regional_availability",
            {"resource_type": "cfn", "regions": ["us-east-1", "us-west-2"]},
        )
    for name, result in answers.items():
        assert not result.isError, name
        assert "offline sandbox" in _text(result), name
    assert json.loads(_text(answers["availability"]))["service_apis"] == []
    assert presigned.isError
    assert "pre-signed" in _text(presigned)
    assert not tasks.isError
    assert json.loads(_text(tasks))["tasks"] == []
    assert too_many.isError


# ----- run_script: the caller's own account -----


@pytest.mark.parametrize("account", MEMBER_ACCOUNTS)
async def test_run_script_sees_the_callers_instances_only(sandbox: Sandbox, account: str) -> None:
    creds = _assumed(sandbox, account)
    truth = _instance_ids(sandbox, creds, "us-east-1")
    others = set().union(
        *(
            _instance_ids(sandbox, _assumed(sandbox, other), region)
            for other in (*MEMBER_ACCOUNTS, CENTRAL)
            if other != account
            for region in REGIONS
        )
    )
    code = (
        "answer = await call_boto3(service_name='ec2', operation_name='DescribeInstances',\n"
        "                          region_name='us-east-1')\n"
        "[{'id': i['InstanceId'], 'owner': r['OwnerId']}\n"
        " for r in answer['Reservations'] for i in r['Instances']]\n"
    )
    answer = _success(await _run(sandbox.mcp_endpoint, creds, code))
    ids = {row["id"] for row in answer["return_value"]}
    assert ids == truth
    assert not ids & others
    assert {row["owner"] for row in answer["return_value"]} == {account}
    assert answer["api_calls"] == [
        {
            "service": "ec2",
            "operation": "DescribeInstances",
            "region": "us-east-1",
            "status": "success",
            "error_code": None,
        }
    ]


async def test_the_signing_identity_decides_the_account(sandbox: Sandbox, truth) -> None:  # type: ignore[no-untyped-def]
    mine, theirs = MEMBER_ACCOUNTS[0], MEMBER_ACCOUNTS[1]
    assert truth.buckets(mine) and truth.buckets(theirs)
    code = (
        "who = await call_boto3(service_name='sts', operation_name='GetCallerIdentity')\n"
        "buckets = await call_boto3(service_name='s3', operation_name='ListBuckets')\n"
        "{'account': who['Account'], 'arn': who['Arn'],\n"
        " 'buckets': sorted(b['Name'] for b in buckets['Buckets'])}\n"
    )
    answer = _success(await _run(sandbox.mcp_endpoint, _assumed(sandbox, mine), code))
    value = answer["return_value"]
    assert value["account"] == mine
    assert f":assumed-role/{READ_ONLY_ROLE}/" in value["arn"]
    assert set(value["buckets"]) == truth.buckets(mine)
    assert not set(value["buckets"]) & truth.buckets(theirs)
    assert [c["operation"] for c in answer["api_calls"]] == ["GetCallerIdentity", "ListBuckets"]
    assert "ResponseMetadata" not in json.dumps(value)


async def test_concurrent_callers_each_stay_in_their_own_account(sandbox: Sandbox) -> None:
    # Clients are shared between callers; every request must still be signed as its caller.
    code = (
        "import asyncio\n"
        "answers = await asyncio.gather(*[\n"
        "    call_boto3(service_name='sts', operation_name='GetCallerIdentity',\n"
        "               region_name=region)\n"
        "    for region in ['us-east-1', 'us-west-2'] * 10\n"
        "])\n"
        "sorted({a['Account'] for a in answers})\n"
    )
    accounts = [*MEMBER_ACCOUNTS, *MEMBER_ACCOUNTS]
    results = await asyncio.gather(
        *(_run(sandbox.mcp_endpoint, _assumed(sandbox, account), code) for account in accounts)
    )
    for account, result in zip(accounts, results, strict=True):
        answer = _success(result)
        assert answer["return_value"] == [account]
        assert len(answer["api_calls"]) == 20


async def test_aws_errors_are_catchable_with_their_code(sandbox: Sandbox) -> None:
    creds = _assumed(sandbox, MEMBER_ACCOUNTS[1])
    caught = (
        "try:\n"
        "    await call_boto3(service_name='ec2', operation_name='DescribeInstances',\n"
        f"                     params={{'InstanceIds': ['{MISSING_INSTANCE}']}})\n"
        "    outcome = 'no error'\n"
        "except Exception as exc:\n"
        "    outcome = {'text': str(exc), 'code': exc.response['Error']['Code'],\n"
        "               'message': exc.response['Error']['Message']}\n"
        "outcome\n"
    )
    uncaught = (
        "await call_boto3(service_name='ec2', operation_name='DescribeInstances',\n"
        f"                 params={{'InstanceIds': ['{MISSING_INSTANCE}']}})\n"
    )
    async with mcp_session(sandbox.mcp_endpoint, creds) as session:
        handled = await session.call_tool("aws___run_script", {"code": caught})
        escaped = await session.call_tool("aws___run_script", {"code": uncaught})
    value = _success(handled)["return_value"]
    assert value["code"] == "InvalidInstanceID.NotFound"
    assert value["text"].startswith(
        "An error occurred (InvalidInstanceID.NotFound) when calling the DescribeInstances "
        "operation: "
    )
    assert MISSING_INSTANCE in value["message"]
    error_call = {
        "service": "ec2",
        "operation": "DescribeInstances",
        "region": "us-east-1",
        "status": "error",
        "error_code": "InvalidInstanceID.NotFound",
    }
    assert _answer(handled)["api_calls"] == [error_call]
    answer = _answer(escaped)
    assert escaped.isError
    assert set(answer) == {"status", "error", "api_calls"}
    assert answer["error"].startswith("ClientError: An error occurred (InvalidInstanceID.NotFound)")
    assert answer["api_calls"] == [error_call]


async def test_unknown_services_and_operations_are_clear_errors(sandbox: Sandbox) -> None:
    creds = _assumed(sandbox, MEMBER_ACCOUNTS[2])
    async with mcp_session(sandbox.mcp_endpoint, creds) as session:
        snake = await session.call_tool(
            "aws___run_script",
            {"code": "await call_boto3(service_name='ec2', operation_name='describe_instances')"},
        )
        service = await session.call_tool(
            "aws___run_script",
            {"code": "await call_boto3(service_name='ec3', operation_name='DescribeInstances')"},
        )
        positional = await session.call_tool(
            "aws___run_script", {"code": "await call_boto3('ec2', 'DescribeInstances')"}
        )
    snake_answer = _answer(snake)
    assert snake_answer["error"].startswith(
        "UnknownOperation: Unknown operation 'describe_instances'"
    )
    assert "'DescribeInstances'" in snake_answer["error"]
    assert snake_answer["api_calls"] == []
    assert "Unknown service: 'ec3'" in _answer(service)["error"]
    # call_boto3 takes keyword arguments only, as the real one does.
    assert _answer(positional)["error"].startswith("TypeError:")


async def test_last_expression_gather_and_datetimes(sandbox: Sandbox) -> None:
    account = MEMBER_ACCOUNTS[0]
    creds = _assumed(sandbox, account)
    truth = {region: _instance_ids(sandbox, creds, region) for region in REGIONS}
    code = (
        "import asyncio\n"
        "from datetime import datetime\n"
        f"regions = {list(REGIONS)!r}\n"
        "answers = await asyncio.gather(*[\n"
        "    call_boto3(service_name='ec2', operation_name='DescribeInstances', region_name=r)\n"
        "    for r in regions\n"
        "])\n"
        "rows = {}\n"
        "for region, answer in zip(regions, answers):\n"
        "    rows[region] = {i['InstanceId']: i['LaunchTime']\n"
        "                    for r in answer['Reservations'] for i in r['Instances']}\n"
        "assert all(isinstance(t, datetime) for v in rows.values() for t in v.values())\n"
        "rows\n"
    )
    answer = _success(await _run(sandbox.mcp_endpoint, creds, code))
    value = answer["return_value"]
    assert {region: set(value[region]) for region in REGIONS} == truth
    for launched in (t for per_region in value.values() for t in per_region.values()):
        assert isinstance(launched, str)
        assert datetime.datetime.fromisoformat(launched).tzinfo is not None
    assert sorted(c["region"] for c in answer["api_calls"]) == sorted(REGIONS)
    assert {c["status"] for c in answer["api_calls"]} == {"success"}


async def test_default_region_comes_from_the_request_metadata(sandbox: Sandbox) -> None:
    creds = _assumed(sandbox, MEMBER_ACCOUNTS[0])
    code = "await call_boto3(service_name='ec2', operation_name='DescribeVpcs')"
    async with mcp_session(sandbox.mcp_endpoint, creds) as session:
        plain = await session.call_tool("aws___run_script", {"code": code})
        west = await session.call_tool(
            "aws___run_script", {"code": code}, meta={"AWS_REGION": "us-west-2"}
        )
    assert _success(plain)["api_calls"][0]["region"] == "us-east-1"
    assert _success(west)["api_calls"][0]["region"] == "us-west-2"


async def test_a_script_without_a_last_expression_returns_null(sandbox: Sandbox) -> None:
    creds = _assumed(sandbox, MEMBER_ACCOUNTS[0])
    code = "x = 1\nprint('printed output is not the answer')\nfor _ in range(2):\n    x += 1\n"
    answer = _success(await _run(sandbox.mcp_endpoint, creds, code))
    assert answer == {"status": "success", "return_value": None, "api_calls": []}


# ----- run_script: what the real sandbox lacks is refused before anything runs -----

REFUSED_SCRIPTS = {
    "import os\nos.listdir('/')": "import of module 'os'",
    "import socket": "import of module 'socket'",
    "from subprocess import run": "import from module 'subprocess'",
    "open('/etc/passwd').read()": "'open' is not allowed",
    "().__class__.__subclasses__()": "'__class__'",
    "__import__('os')": "'__import__'",
    "x = call_boto3\ngetattr(x, '__globals__')": "'getattr' is not allowed",
    "eval('1 + 1')": "'eval' is not allowed",
    "exec('x = 1')": "'exec' is not allowed",
    "import asyncio\nawait asyncio.open_connection('127.0.0.1', 80)": "open_connection",
    "import asyncio\nasyncio.get_running_loop()": "get_running_loop",
    "g = (i for i in [1])\ng.gi_frame.f_back": "gi_frame",
    "import json\njson.dumps = None": "assigning or deleting attributes",
    "class Evil:\n    pass": "class definitions",
}


async def test_refused_scripts_make_no_aws_call(sandbox: Sandbox) -> None:
    creds = _assumed(sandbox, MEMBER_ACCOUNTS[0])
    async with mcp_session(sandbox.mcp_endpoint, creds) as session:
        for code, why in REFUSED_SCRIPTS.items():
            # A call_boto3 first in every script: refused code never runs at all.
            whole = "await call_boto3(service_name='sts', operation_name='GetCallerIdentity')\n"
            result = await session.call_tool("aws___run_script", {"code": whole + code})
            answer = _answer(result)
            assert result.isError, code
            assert answer["error"].startswith("ScriptNotAllowed: "), (code, answer)
            assert why in answer["error"], (code, answer["error"])
            assert answer["api_calls"] == [], code
        still_there = await session.call_tool("aws___run_script", {"code": "sum(range(4))"})
    assert _success(still_there)["return_value"] == 6


async def test_runtime_errors_and_time_limit(sandbox: Sandbox) -> None:
    server = McpServer(sandbox.aws_endpoint, script_timeout_s=1.0)
    server.start()
    try:
        creds = _assumed(sandbox, MEMBER_ACCOUNTS[1])
        async with mcp_session(server.endpoint, creds) as session:
            failing = await session.call_tool("aws___run_script", {"code": "1 / 0"})
            syntax = await session.call_tool("aws___run_script", {"code": "def ("})
            started = time.perf_counter()
            slow = await session.call_tool(
                "aws___run_script", {"code": "import asyncio\nawait asyncio.sleep(30)"}
            )
            waited = time.perf_counter() - started
    finally:
        server.stop()
    assert _answer(failing)["error"] == "ZeroDivisionError: division by zero"
    assert _answer(syntax)["error"].startswith("SyntaxError: ")
    assert _answer(slow)["error"].startswith("TimeoutError: ")
    assert waited < 10


# ----- shape of the real server, and counting for tests -----


async def test_script_latency_makes_scripts_take_that_long(sandbox: Sandbox) -> None:
    server = McpServer(sandbox.aws_endpoint, script_latency_ms=300)
    server.start()
    try:
        creds = _assumed(sandbox, MEMBER_ACCOUNTS[2])
        async with mcp_session(server.endpoint, creds) as session:
            started = time.perf_counter()
            result = await session.call_tool("aws___run_script", {"code": "'late'"})
            took = time.perf_counter() - started
            # Two at once: the wait does not block the server.
            started = time.perf_counter()
            both = await asyncio.gather(
                *(session.call_tool("aws___run_script", {"code": str(n)}) for n in range(2))
            )
            together = time.perf_counter() - started
    finally:
        server.stop()
    assert _success(result)["return_value"] == "late"
    assert took >= 0.3
    assert [_success(r)["return_value"] for r in both] == [0, 1]
    assert 0.3 <= together < 0.6 + 1.0


async def test_sandbox_scripts_counts_scripts_per_account(sandbox: Sandbox) -> None:
    sandbox.scripts.clear()
    first, second = MEMBER_ACCOUNTS[0], MEMBER_ACCOUNTS[1]
    two_calls = (
        "await call_boto3(service_name='sts', operation_name='GetCallerIdentity')\n"
        "await call_boto3(service_name='ec2', operation_name='DescribeVpcs')\n"
    )
    async with mcp_session(sandbox.mcp_endpoint, _assumed(sandbox, first)) as session:
        await session.call_tool("aws___run_script", {"code": two_calls})
        await session.call_tool("aws___run_script", {"code": "import os"})
    async with mcp_session(sandbox.mcp_endpoint, _assumed(sandbox, second)) as session:
        await session.call_tool("aws___run_script", {"code": two_calls})
    assert sandbox.scripts == [(first, 2), (first, 0), (second, 2)]
    assert sandbox.scripts.per_account() == {first: 2, second: 1}
    sandbox.scripts.clear()
    assert len(sandbox.scripts) == 0


# ----- an endpoint whose secrets it cannot see -----


async def test_external_endpoint_mode_checks_structure_only(sandbox: Sandbox) -> None:
    server = McpServer(sandbox.aws_endpoint, resolver=None)
    server.start()
    try:
        creds = _assumed(sandbox, MEMBER_ACCOUNTS[1])
        async with httpx.AsyncClient() as client:
            unsigned = await client.post(server.endpoint, json=INITIALIZE, headers=MCP_HEADERS)
        assert unsigned.status_code == 401
        # A wrong secret cannot be detected without the real one; the key still decides
        # the account the script runs in.
        forged = Credentials(creds.access_key, "not-the-secret", creds.token)
        result = await _run(
            server.endpoint,
            forged,
            (
                "(await call_boto3(service_name='sts', operation_name='GetCallerIdentity'))"
                "['Account']"
            ),
        )
        assert _success(result)["return_value"] == MEMBER_ACCOUNTS[1]
        assert server.scripts == [(None, 1)]  # the account of an unresolved key is unknown
    finally:
        server.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_serve_mcp_runs_alone_against_an_endpoint(sandbox: Sandbox) -> None:
    port = _free_port()
    script = (
        "import sys; from opsagent.sandbox import serve_mcp; "
        "serve_mcp(sys.argv[1], port=int(sys.argv[2]), script_latency_ms=200)"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        sandbox.aws_endpoint,
        str(port),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        endpoint = f"http://127.0.0.1:{port}/mcp"
        deadline = time.monotonic() + 60
        while not await _listening(port):
            assert process.returncode is None, "serve_mcp exited"
            assert time.monotonic() < deadline, "serve_mcp did not start listening"
            await asyncio.sleep(0.1)
        creds = _assumed(sandbox, MEMBER_ACCOUNTS[2])
        started = time.perf_counter()
        result = await _run(
            endpoint,
            creds,
            (
                "(await call_boto3(service_name='sts', operation_name='GetCallerIdentity'))"
                "['Account']"
            ),
        )
        took = time.perf_counter() - started
        assert _success(result)["return_value"] == MEMBER_ACCOUNTS[2]
        assert took >= 0.2
    finally:
        process.terminate()
        output, _ = await asyncio.wait_for(process.communicate(), timeout=20)
    # It says, at start, that it cannot verify signatures for real.
    assert b"structure" in output


async def _listening(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True
