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
    CALL_AWS_TOOL,
    READ_ONLY_TOOLS,
    AccountAccessDenied,
    AccountSessions,
    AccountTimeout,
    AccountUnreachable,
    AwsCommandError,
    ReadOnlyViolation,
)
from opsagent.registry import Account, Registry, load_registry

PRODUCTION, STAGING = "222222222222", "333333333333"
REGIONS = ("us-east-1", "us-west-2")


@pytest.fixture(scope="module")
def registry(sandbox) -> Registry:
    return load_registry(sandbox.registry_path)


@pytest.fixture(scope="module")
def central(sandbox) -> boto3.Session:
    return sandbox.central_session()


def make_pool(sandbox, central, **options) -> AccountSessions:
    return AccountSessions(
        mcp_endpoint=options.pop("mcp_endpoint", sandbox.mcp_endpoint),
        central=central,
        sts_endpoint_url=sandbox.aws_endpoint,
        mcp_service=sandbox.mcp_service,
        mcp_region=sandbox.mcp_region,
        **options,
    )


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


async def test_call_aws_on_production_returns_productions_instances(pool, registry, truth) -> None:
    production = registry.get(PRODUCTION)
    found: set[str] = set()
    for region in REGIONS:
        found |= instance_ids(await pool.call_aws(
            production, "alice", f"aws ec2 describe-instances --region {region}"
        ))
    expected = truth.ec2_instances(PRODUCTION)
    assert found == set(expected)
    assert found  # the demo organization has instances in production

    staging = instance_ids(await pool.call_aws(
        registry.get(STAGING), "alice", "aws ec2 describe-instances --region us-east-1"
    ))
    assert staging and not staging & found  # each account sees only its own


async def test_tools_are_the_guarded_read_only_tools(pool, registry, truth) -> None:
    tools = await pool.tools(registry.get(PRODUCTION), "alice")
    names = {tool.name for tool in tools}
    assert CALL_AWS_TOOL in names
    assert names <= READ_ONLY_TOOLS
    call_aws = next(tool for tool in tools if tool.name == CALL_AWS_TOOL)
    content = await call_aws.ainvoke({"cli_command": "aws s3api list-buckets"})
    text = content if isinstance(content, str) else content[0]["text"]
    body = json.loads(json.loads(text)["response"]["as_json"])
    assert {b["Name"] for b in body["Buckets"]} == truth.buckets(PRODUCTION)
    assert await pool.tools(registry.get(PRODUCTION), "alice") is tools  # loaded once


async def test_tools_outside_the_allow_list_are_not_handed_out(sandbox, central, registry):
    pool = make_pool(sandbox, central, read_only_tools=frozenset({CALL_AWS_TOOL}))
    try:
        names = {t.name for t in await pool.tools(registry.get(PRODUCTION), "alice")}
    finally:
        await pool.aclose()
    assert names == {CALL_AWS_TOOL}  # the server also offers aws___list_regions


async def test_mutating_call_aws_is_refused_before_any_aws_call(
    pool, registry, truth, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    before = truth.ec2_instances(PRODUCTION)
    victim = next(iter(before))
    user = new_user()
    with pytest.raises(ReadOnlyViolation) as refused:
        await pool.call_aws(
            registry.get(PRODUCTION), user,
            f"aws ec2 terminate-instances --instance-ids {victim} --region us-east-1",
        )
    assert str(refused.value) == (
        "opsagent is read-only: `aws ec2 terminate-instances` (TerminateInstances) "
        "changes resources and was not sent"
    )
    assert refused.value.status == "error"
    # Not even AssumeRole happened, and no MCP session was opened for this user.
    assert audit_records(caplog, "sts.assume_role", user=user) == []
    assert not [r for r in caplog.records if "opened MCP session" in r.getMessage()
                and user in r.getMessage()]
    [call] = audit_records(caplog, "aws.call", user=user)
    assert call["outcome"] == "refused" and call["account_id"] == PRODUCTION
    assert audit_records(caplog, "guard.refused", user=user)
    assert truth.ec2_instances(PRODUCTION) == before


@pytest.mark.parametrize(
    "command",
    [
        "aws ec2 terminate-instances --instance-ids {instance} --region us-east-1",
        "aws ec2 stop-instances --instance-ids {instance} --region us-east-1",
        "aws s3api delete-bucket --bucket {bucket}",
        "aws s3 rm s3://{bucket} --recursive",
        "aws ec2 describe-instances --region us-east-1; "
        "aws ec2 terminate-instances --instance-ids {instance}",
    ],
)
async def test_mutating_command_through_the_langchain_tool_is_refused(
    pool, registry, truth, command: str
) -> None:
    instances, buckets = truth.ec2_instances(PRODUCTION), truth.buckets(PRODUCTION)
    tools = await pool.tools(registry.get(PRODUCTION), "alice")
    call_aws = next(tool for tool in tools if tool.name == CALL_AWS_TOOL)
    cli = command.format(instance=next(iter(instances)), bucket=sorted(buckets)[0])
    with pytest.raises(ReadOnlyViolation):
        await call_aws.ainvoke({"cli_command": cli})
    with pytest.raises(ReadOnlyViolation):  # a list of commands is checked one by one
        await call_aws.ainvoke({"cli_command": ["aws sts get-caller-identity", cli]})
    assert truth.ec2_instances(PRODUCTION) == instances
    assert truth.buckets(PRODUCTION) == buckets


async def test_denied_role_is_account_access_denied(pool, registry) -> None:
    production = registry.get(PRODUCTION)
    no_such_role = production.model_copy(
        update={"role_arn": f"arn:aws:iam::{PRODUCTION}:role/NotTrustingOpsAgent"}
    )
    with pytest.raises(AccountAccessDenied) as denied:
        await pool.call_aws(no_such_role, "alice", "aws ec2 describe-instances")
    assert denied.value.status == "denied"
    assert denied.value.account_id == PRODUCTION
    assert "AssumeRole" in str(denied.value) and "refused" in str(denied.value)
    with pytest.raises(AccountAccessDenied):
        await pool.tools(no_such_role, "alice")


async def test_unknown_account_is_denied(pool) -> None:
    stranger = Account(
        id="999999999999", name="Stranger", alias="stranger", environment="production",
        regions=["us-east-1"], role_arn="arn:aws:iam::999999999999:role/OpsAgentReadOnly",
    )
    with pytest.raises(AccountAccessDenied):
        await pool.call_aws(stranger, "alice", "aws ec2 describe-instances")


async def test_one_session_per_account_and_user_shared_by_concurrent_tasks(
    pool, registry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    production, user = registry.get(PRODUCTION), new_user()
    tasks = [
        asyncio.create_task(pool.call_aws(production, user, f"aws ec2 describe-vpcs --region {r}"))
        for r in REGIONS * 3
    ]
    results = await asyncio.gather(*tasks)
    assert all("Vpcs" in result for result in results)
    await pool.call_aws(production, user, "aws ec2 describe-volumes --region us-east-1")
    opened = [r for r in caplog.records
              if "opened MCP session" in r.getMessage() and user in r.getMessage()]
    assert len(opened) == 1
    assert len(audit_records(caplog, "sts.assume_role", user=user)) == 1
    calls = audit_records(caplog, "aws.call", user=user)
    assert len(calls) == 7
    assert all(c["outcome"] == "ok" and c["account_id"] == PRODUCTION for c in calls)
    assert all(isinstance(c["elapsed_ms"], int) for c in calls)
    assert calls[-1]["command"] == "aws ec2 describe-volumes --region us-east-1"


async def test_aws_error_is_a_typed_command_error(pool, registry) -> None:
    with pytest.raises(AwsCommandError) as failed:
        await pool.call_aws(
            registry.get(PRODUCTION), "alice",
            "aws ec2 describe-instances --instance-ids i-0123456789abcdef0 --region us-east-1",
        )
    assert failed.value.error_code == "InvalidInstanceID.NotFound"
    assert failed.value.status == "error"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_unreachable_mcp_endpoint(sandbox, central, registry) -> None:
    pool = make_pool(sandbox, central, mcp_endpoint=f"http://127.0.0.1:{free_port()}/mcp")
    try:
        with pytest.raises(AccountUnreachable) as failed:
            await pool.call_aws(registry.get(PRODUCTION), "alice", "aws ec2 describe-vpcs")
    finally:
        await pool.aclose()
    assert failed.value.status == "error"
    assert "could not reach the AWS MCP Server" in str(failed.value)


async def test_silent_mcp_endpoint_times_out(sandbox, central, registry) -> None:
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        pool = make_pool(sandbox, central, mcp_endpoint=f"http://127.0.0.1:{port}/mcp",
                         call_timeout=0.5)
        try:
            with pytest.raises(AccountTimeout) as failed:
                await pool.call_aws(registry.get(PRODUCTION), "alice", "aws ec2 describe-vpcs")
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
    try:
        assert "Vpcs" in await pool.call_aws(production, "alice", "aws ec2 describe-vpcs")
        await asyncio.to_thread(server.stop)
        with pytest.raises(AccountUnreachable):
            await pool.call_aws(production, "alice", "aws ec2 describe-vpcs")
        server = McpServer(sandbox.aws_endpoint, port=port)  # "the server restarted"
        await asyncio.to_thread(server.start)
        assert "Vpcs" in await pool.call_aws(production, "alice", "aws ec2 describe-vpcs")
    finally:
        await pool.aclose()
        await asyncio.to_thread(server.stop)


async def test_aclose_ends_the_sessions_and_the_pool_can_reopen(
    sandbox, central, registry
) -> None:
    pool = make_pool(sandbox, central)
    production = registry.get(PRODUCTION)
    await pool.call_aws(production, "alice", "aws ec2 describe-vpcs")
    owners = [t for t in asyncio.all_tasks() if t.get_name().startswith("mcp-session")]
    assert owners
    await pool.aclose()
    assert all(t.done() for t in owners)
    assert "Vpcs" in await pool.call_aws(production, "alice", "aws ec2 describe-vpcs")
    await pool.aclose()
