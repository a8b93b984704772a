"""The AWS MCP Server stand-in: SigV4 at the door, the caller's own account behind it.

Ground truth is read from moto with boto3 under the same assumed role the MCP caller uses.
"""

from __future__ import annotations

import asyncio
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


def _api_response(result: CallToolResult) -> dict[str, Any]:
    assert not result.isError, _text(result)
    answer = json.loads(_text(result))
    assert answer == result.structuredContent
    assert answer["response"]["error"] is None, answer
    return json.loads(answer["response"]["as_json"])


def _signed(
    creds: Credentials, url: str, body: bytes, service: str = "aws-mcp"
) -> dict[str, str]:
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


# ----- behind the door: the caller's own account -----


@pytest.mark.parametrize("account", MEMBER_ACCOUNTS)
async def test_call_aws_sees_the_callers_account_only(sandbox: Sandbox, account: str) -> None:
    creds = _assumed(sandbox, account)
    truth = _instance_ids(sandbox, creds, "us-east-1")
    others = set().union(
        *(_instance_ids(sandbox, _assumed(sandbox, other), region)
          for other in (*MEMBER_ACCOUNTS, CENTRAL) if other != account
          for region in REGIONS)
    )
    async with mcp_session(sandbox.mcp_endpoint, creds) as session:
        result = await session.call_tool(
            "aws___call_aws", {"cli_command": "aws ec2 describe-instances --region us-east-1"}
        )
    answer = json.loads(_text(result))
    assert answer["metadata"] == {
        "service": "ec2",
        "service_full_name": "Amazon Elastic Compute Cloud",
        "operation": "DescribeInstances",
        "region_name": "us-east-1",
    }
    reservations = _api_response(result)["Reservations"]
    ids = {i["InstanceId"] for r in reservations for i in r["Instances"]}
    assert ids == truth
    assert not ids & others
    assert {r["OwnerId"] for r in reservations} == {account}


async def test_call_aws_filters_query_and_region(sandbox: Sandbox) -> None:
    account = MEMBER_ACCOUNTS[0]
    creds = _assumed(sandbox, account)
    ec2 = boto3.client(
        "ec2", endpoint_url=sandbox.aws_endpoint, region_name="us-west-2",
        aws_access_key_id=creds.access_key, aws_secret_access_key=creds.secret_key,
        aws_session_token=creds.token,
    )
    running = sorted(
        i["InstanceId"]
        for r in ec2.describe_instances(
            Filters=[{"Name": "instance-state-name", "Values": ["running"]}]
        )["Reservations"]
        for i in r["Instances"]
    )
    command = (
        "aws ec2 describe-instances --region us-west-2 "
        "--filters Name=instance-state-name,Values=running "
        "--query 'Reservations[].Instances[].InstanceId'"
    )
    async with mcp_session(sandbox.mcp_endpoint, creds) as session:
        result = await session.call_tool("aws___call_aws", {"cli_command": command})
    assert sorted(_api_response(result)["Result"]) == running


async def test_call_aws_paginates_with_max_results(sandbox: Sandbox) -> None:
    creds = _assumed(sandbox, MEMBER_ACCOUNTS[0])
    iam = boto3.client(
        "iam", endpoint_url=sandbox.aws_endpoint, region_name="us-east-1",
        aws_access_key_id=creds.access_key, aws_secret_access_key=creds.secret_key,
        aws_session_token=creds.token,
    )
    truth = {r["RoleName"] for r in iam.list_roles()["Roles"]}
    assert len(truth) > 2
    names: list[str] = []
    command = "aws iam list-roles"
    async with mcp_session(sandbox.mcp_endpoint, creds) as session:
        while True:
            result = await session.call_tool(
                "aws___call_aws", {"cli_command": command, "max_results": 2}
            )
            answer = json.loads(_text(result))
            page = _api_response(result)
            assert len(page["Roles"]) <= 2
            names += [r["RoleName"] for r in page["Roles"]]
            token = answer["response"]["pagination_token"]
            if token is None:
                break
            assert page["pagination_token"] == token
            command = f"aws iam list-roles --starting-token {token}"
    assert sorted(names) == sorted(truth)


async def test_call_aws_reports_service_errors_as_data(sandbox: Sandbox) -> None:
    creds = _assumed(sandbox, MEMBER_ACCOUNTS[1])
    command = "aws ec2 describe-instances --instance-ids i-0123456789abcdef0"
    async with mcp_session(sandbox.mcp_endpoint, creds) as session:
        result = await session.call_tool("aws___call_aws", {"cli_command": command})
    assert not result.isError
    response = json.loads(_text(result))["response"]
    assert response["error_code"] == "InvalidInstanceID.NotFound"
    assert response["status_code"] == 400
    assert response["as_json"] is None


async def test_bad_commands_are_tool_errors_and_the_server_lives_on(sandbox: Sandbox) -> None:
    creds = _assumed(sandbox, MEMBER_ACCOUNTS[2])
    bad = {
        "aws ec3 describe-instances": "The service 'ec3' does not exist",
        "aws ec2 describe-instancez": "describe-instances",
        "aws ec2 describe-instances --no-such-option 1": "Unknown options",
        "aws ec2 describe-instance-attribute": "required",
        "aws ec2 describe-instances --filters file:///etc/passwd": "file://",
        "aws ec2 describe-instances --endpoint-url http://127.0.0.1:1": "--endpoint-url",
        "aws s3 ls": "customization",
        "ls -la": "must start with 'aws'",
        "aws ec2 describe-instances | head": "Shell operators",
        "aws ec2 describe-instances --region mars-1": "region",
        "aws 'unterminated": "could not be split",
    }
    async with mcp_session(sandbox.mcp_endpoint, creds) as session:
        for command, why in bad.items():
            result = await session.call_tool("aws___call_aws", {"cli_command": command})
            assert result.isError, command
            assert why in _text(result), (command, _text(result))
        # Arguments that do not fit the tool's schema are refused too.
        wrong_type = await session.call_tool("aws___call_aws", {"cli_command": 42})
        assert wrong_type.isError
        await session.send_ping()  # the same session still answers
        still_there = await session.call_tool(
            "aws___call_aws", {"cli_command": "aws sts get-caller-identity"}
        )
    assert _api_response(still_there)["Account"] == MEMBER_ACCOUNTS[2]


async def test_batch_and_all_regions_answer_one_entry_per_command(sandbox: Sandbox) -> None:
    account = MEMBER_ACCOUNTS[0]
    creds = _assumed(sandbox, account)
    truth = {
        region: sorted(
            boto3.client(
                "dynamodb", endpoint_url=sandbox.aws_endpoint, region_name=region,
                aws_access_key_id=creds.access_key, aws_secret_access_key=creds.secret_key,
                aws_session_token=creds.token,
            ).list_tables()["TableNames"]
        )
        for region in REGIONS
    }
    async with mcp_session(sandbox.mcp_endpoint, creds) as session:
        batch = await session.call_tool(
            "aws___call_aws",
            {"cli_command": ["aws sts get-caller-identity", "aws s3api list-buckets"]},
        )
        everywhere = await session.call_tool(
            "aws___call_aws", {"cli_command": "aws dynamodb list-tables --region *"}
        )
    entries = json.loads(_text(batch))
    assert batch.structuredContent == {"result": entries}
    assert [e["cli_command"] for e in entries] == [
        "aws sts get-caller-identity",
        "aws s3api list-buckets",
    ]
    assert json.loads(entries[0]["response"]["as_json"])["Account"] == account
    assert entries[1]["metadata"]["region_name"] == "Global"
    per_region = {
        e["metadata"]["region_name"]: sorted(json.loads(e["response"]["as_json"])["TableNames"])
        for e in json.loads(_text(everywhere))
    }
    assert set(REGIONS) < set(per_region)
    for region in REGIONS:
        assert per_region[region] == truth[region]


async def test_list_regions(sandbox: Sandbox) -> None:
    async with mcp_session(sandbox.mcp_endpoint, _assumed(sandbox, MEMBER_ACCOUNTS[0])) as s:
        tools = {t.name: t for t in (await s.list_tools()).tools}
        result = await s.call_tool("aws___list_regions", {})
    assert {"aws___call_aws", "aws___list_regions"} <= set(tools)
    schema = tools["aws___call_aws"].inputSchema
    assert schema["required"] == ["cli_command"]
    assert set(schema["properties"]) == {"cli_command", "max_results"}
    regions = json.loads(_text(result))["content"]["result"]
    by_id = {r["region_id"]: r["region_long_name"] for r in regions}
    assert by_id["us-east-1"] == "US East (N. Virginia)"
    assert "us-west-2" in by_id


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
        # the account the command runs in.
        forged = Credentials(creds.access_key, "not-the-secret", creds.token)
        async with mcp_session(server.endpoint, forged) as session:
            result = await session.call_tool(
                "aws___call_aws", {"cli_command": "aws sts get-caller-identity"}
            )
        assert _api_response(result)["Account"] == MEMBER_ACCOUNTS[1]
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
        "serve_mcp(sys.argv[1], port=int(sys.argv[2]))"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, sandbox.aws_endpoint, str(port),
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
        async with mcp_session(endpoint, creds) as session:
            result = await session.call_tool(
                "aws___call_aws", {"cli_command": "aws sts get-caller-identity"}
            )
        assert _api_response(result)["Account"] == MEMBER_ACCOUNTS[2]
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
