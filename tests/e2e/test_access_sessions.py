"""AccountSessions end to end: the sandbox's moto and its AWS MCP Server stand-in, SigV4 and all."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import uuid

import boto3
import pytest

from opsagent.access import (
    KNOWLEDGE_TOOLS,
    AccountAccessDenied,
    AccountSessions,
    AccountTimeout,
    AccountUnreachable,
    Asker,
    EndpointLacksTool,
    Read,
    ReadOnlyViolation,
)
from opsagent.registry import Account, Registry, load_registry
from tests.conftest import sandbox_pool

PRODUCTION, STAGING = "222222222222", "333333333333"
REGIONS = ("us-east-1", "us-west-2")


@pytest.fixture(scope="module")
def registry(sandbox) -> Registry:
    return load_registry(sandbox.registry_path)


@pytest.fixture(scope="module")
def central(sandbox) -> boto3.Session:
    return sandbox.central_session()


def make_pool(sandbox, central, **options) -> AccountSessions:
    return sandbox_pool(sandbox, central=central, **options)


@pytest.fixture
async def pool(sandbox, central):
    sessions = make_pool(sandbox, central)
    yield sessions
    await sessions.aclose()


def new_user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


def audit_records(caplog: pytest.LogCaptureFixture, event: str, **match: str) -> list[dict]:
    records = []
    for record in caplog.records:
        if record.name != "opsagent.audit":
            continue
        data = json.loads(record.getMessage())
        if data["event"] == event and all(data.get(k) == v for k, v in match.items()):
            records.append(data)
    return records


def instance_ids(response: dict) -> set[str]:
    return {i["InstanceId"] for r in response["Reservations"] for i in r["Instances"]}


def read(operation: str, region: str = "us-east-1", service: str = "ec2", **params) -> Read:
    return Read(service=service, operation=operation, region=region, params=params)


async def test_reads_of_one_account_go_out_as_one_script(pool, registry, truth, sandbox) -> None:
    production = registry.get(PRODUCTION)
    sandbox.scripts.clear()
    results = await pool.run_reads(
        production, Asker("alice"), [read("DescribeInstances", r) for r in REGIONS]
    )
    assert [account for account, _ in sandbox.scripts] == [PRODUCTION]
    found = set().union(*(instance_ids(r.result) for r in results))
    assert found == set(truth.ec2_instances(PRODUCTION))
    assert found  # the demo organization has instances in production

    [staging] = await pool.run_reads(
        registry.get(STAGING), Asker("alice"), [read("DescribeInstances")]
    )
    assert instance_ids(staging.result) and not instance_ids(staging.result) & found


async def test_tools_are_the_structured_read_and_the_knowledge_tools(pool, registry, truth):
    tools = await pool.tools(registry.get(PRODUCTION), Asker("alice"))
    names = {tool.name for tool in tools}
    assert "aws_read" in names
    assert names - {"aws_read"} <= KNOWLEDGE_TOOLS and "aws___list_regions" in names
    assert "aws___run_script" not in names and "aws___get_presigned_url" not in names
    aws_read = next(tool for tool in tools if tool.name == "aws_read")
    text = await aws_read.ainvoke(
        {"service": "s3", "operation": "ListBuckets", "region": "us-east-1"}
    )
    assert {b["Name"] for b in json.loads(text)["Buckets"]} == truth.buckets(PRODUCTION)
    assert await pool.tools(registry.get(PRODUCTION), Asker("alice")) is tools  # loaded once


async def test_a_write_is_refused_before_any_aws_call(
    pool, registry, truth, sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    before = truth.ec2_instances(PRODUCTION)
    victim = next(iter(before))
    user = new_user()
    sandbox.scripts.clear()
    with pytest.raises(ReadOnlyViolation) as refused:
        await pool.run_reads(
            registry.get(PRODUCTION),
            Asker(user),
            [read("DescribeVpcs"), read("TerminateInstances", InstanceIds=[victim])],
        )
    assert "TerminateInstances" in str(refused.value) and "not sent" in str(refused.value)
    assert refused.value.status == "error"
    # Not even AssumeRole happened, no MCP session was opened, no script ran.
    assert audit_records(caplog, "sts.assume_role", user=user) == []
    assert not [
        r
        for r in caplog.records
        if "opened MCP session" in r.getMessage() and user in r.getMessage()
    ]
    assert sandbox.scripts == []
    assert audit_records(caplog, "guard.refused", user=user)
    assert truth.ec2_instances(PRODUCTION) == before


@pytest.mark.parametrize(
    "service, operation, params",
    [
        ("ec2", "TerminateInstances", {"InstanceIds": ["{instance}"]}),
        ("ec2", "StopInstances", {"InstanceIds": ["{instance}"]}),
        ("s3", "DeleteBucket", {"Bucket": "{bucket}"}),
        ("s3", "PutBucketPolicy", {"Bucket": "{bucket}", "Policy": "{{}}"}),
        ("secretsmanager", "GetSecretValue", {"SecretId": "prod/db"}),
        ("ssm", "GetParameter", {"Name": "/prod/db/password", "WithDecryption": True}),
    ],
)
async def test_the_models_read_tool_refuses_writes_and_secrets_before_any_mcp_traffic(
    pool, registry, truth, sandbox, service, operation, params
) -> None:
    instances, buckets = truth.ec2_instances(PRODUCTION), truth.buckets(PRODUCTION)
    tools = await pool.tools(registry.get(PRODUCTION), Asker("alice"))
    aws_read = next(tool for tool in tools if tool.name == "aws_read")
    filled = json.loads(
        json.dumps(params)
        .replace("{instance}", next(iter(instances)))
        .replace("{bucket}", sorted(buckets)[0])
    )
    sandbox.scripts.clear()
    with pytest.raises(ReadOnlyViolation):
        await aws_read.ainvoke(
            {"service": service, "operation": operation, "region": "us-east-1", "params": filled}
        )
    assert sandbox.scripts == []
    assert truth.ec2_instances(PRODUCTION) == instances
    assert truth.buckets(PRODUCTION) == buckets


async def test_denied_role_is_account_access_denied(pool, registry) -> None:
    production = registry.get(PRODUCTION)
    no_such_role = production.model_copy(
        update={"role_arn": f"arn:aws:iam::{PRODUCTION}:role/NotTrustingOpsAgent"}
    )
    with pytest.raises(AccountAccessDenied) as denied:
        await pool.run_reads(no_such_role, Asker("alice"), [read("DescribeInstances")])
    assert denied.value.status == "denied"
    assert denied.value.account_id == PRODUCTION
    assert "AssumeRole" in str(denied.value) and "refused" in str(denied.value)
    with pytest.raises(AccountAccessDenied):
        await pool.tools(no_such_role, Asker("alice"))


async def test_unknown_account_is_denied(pool) -> None:
    stranger = Account(
        id="999999999999",
        name="Stranger",
        alias="stranger",
        environment="production",
        regions=["us-east-1"],
        role_arn="arn:aws:iam::999999999999:role/OpsAgentReadOnly",
    )
    with pytest.raises(AccountAccessDenied):
        await pool.run_reads(stranger, Asker("alice"), [read("DescribeInstances")])


async def test_one_session_per_account_and_user_shared_by_concurrent_tasks(
    pool, registry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    production, user = registry.get(PRODUCTION), new_user()
    tasks = [
        asyncio.create_task(pool.run_reads(production, Asker(user), [read("DescribeVpcs", r)]))
        for r in REGIONS * 3
    ]
    results = await asyncio.gather(*tasks)
    assert all("Vpcs" in result.result for [result] in results)
    await pool.run_reads(production, Asker(user), [read("DescribeVolumes")])
    opened = [
        r
        for r in caplog.records
        if "opened MCP session" in r.getMessage() and user in r.getMessage()
    ]
    assert len(opened) == 1
    assert len(audit_records(caplog, "sts.assume_role", user=user)) == 1
    scripts = audit_records(caplog, "aws.script", user=user)
    assert len(scripts) == 7
    assert all(s["outcome"] == "ok" and s["account_id"] == PRODUCTION for s in scripts)
    assert all(isinstance(s["elapsed_ms"], int) for s in scripts)
    assert scripts[-1]["reads"] == ["ec2:DescribeVolumes:us-east-1"]


async def test_an_aws_error_fails_only_its_read(pool, registry) -> None:
    bad, good = await pool.run_reads(
        registry.get(PRODUCTION),
        Asker("alice"),
        [read("DescribeInstances", InstanceIds=["i-0123456789abcdef0"]), read("DescribeVpcs")],
    )
    assert bad.error is not None and bad.error.code == "InvalidInstanceID.NotFound"
    assert bad.result is None
    assert good.ok and good.result["Vpcs"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_unreachable_mcp_endpoint(sandbox, central, registry) -> None:
    pool = make_pool(sandbox, central, mcp_endpoint=f"http://127.0.0.1:{free_port()}/mcp")
    try:
        with pytest.raises(AccountUnreachable) as failed:
            await pool.run_reads(registry.get(PRODUCTION), Asker("alice"), [read("DescribeVpcs")])
    finally:
        await pool.aclose()
    assert failed.value.status == "error"
    assert "could not reach the AWS MCP Server" in str(failed.value)


async def test_an_endpoint_without_run_script_is_named_with_what_it_lacks(
    sandbox, central, registry
) -> None:
    """A server that still offers only the removed call_aws (a legacy self-hosted one)."""
    import threading

    import uvicorn
    from mcp.server.fastmcp import FastMCP

    legacy = FastMCP(name="legacy", stateless_http=True, log_level="WARNING")

    @legacy.tool(name="aws___call_aws")
    def call_aws(cli_command: str) -> str:
        return "{}"

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            legacy.streamable_http_app(),
            host="127.0.0.1",
            port=port,
            log_config=None,
            lifespan="on",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(500):  # up to 5 s for uvicorn to bind
        if server.started:
            break
        await asyncio.sleep(0.01)
    endpoint = f"http://127.0.0.1:{port}/mcp"
    pool = make_pool(sandbox, central, mcp_endpoint=endpoint)
    try:
        with pytest.raises(EndpointLacksTool) as failed:
            await pool.run_reads(registry.get(PRODUCTION), Asker("alice"), [read("DescribeVpcs")])
    finally:
        await pool.aclose()
        server.should_exit = True
        await asyncio.to_thread(thread.join, 10)
    message = str(failed.value)
    assert endpoint in message and "aws___run_script" in message
    assert "aws___call_aws" in message  # what it does offer
    assert failed.value.status == "error"


async def test_silent_mcp_endpoint_times_out(sandbox, central, registry) -> None:
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        pool = make_pool(
            sandbox, central, mcp_endpoint=f"http://127.0.0.1:{port}/mcp", call_timeout=0.5
        )
        try:
            with pytest.raises(AccountTimeout) as failed:
                await pool.run_reads(
                    registry.get(PRODUCTION), Asker("alice"), [read("DescribeVpcs")]
                )
        finally:
            await pool.aclose()
    assert failed.value.status == "timeout"


async def test_broken_session_is_reopened_on_next_use(sandbox, central, registry) -> None:
    from opsagent.sandbox.mcp_server import McpServer

    port = free_port()
    server = McpServer(sandbox.aws_endpoint, port=port)
    await asyncio.to_thread(server.start)
    pool = make_pool(sandbox, central, mcp_endpoint=f"http://127.0.0.1:{port}/mcp")
    production = registry.get(PRODUCTION)
    vpcs = [read("DescribeVpcs")]
    try:
        assert (await pool.run_reads(production, Asker("alice"), vpcs))[0].ok
        await asyncio.to_thread(server.stop)
        with pytest.raises(AccountUnreachable):
            await pool.run_reads(production, Asker("alice"), vpcs)
        server = McpServer(sandbox.aws_endpoint, port=port)  # "the server restarted"
        await asyncio.to_thread(server.start)
        assert (await pool.run_reads(production, Asker("alice"), vpcs))[0].ok
    finally:
        await pool.aclose()
        await asyncio.to_thread(server.stop)


async def test_aclose_ends_the_sessions_and_the_pool_can_reopen(sandbox, central, registry) -> None:
    pool = make_pool(sandbox, central)
    production = registry.get(PRODUCTION)
    vpcs = [read("DescribeVpcs")]
    await pool.run_reads(production, Asker("alice"), vpcs)
    owners = [t for t in asyncio.all_tasks() if t.get_name().startswith("mcp-session")]
    assert owners
    await pool.aclose()
    assert all(t.done() for t in owners)
    assert (await pool.run_reads(production, Asker("alice"), vpcs))[0].ok
    await pool.aclose()
