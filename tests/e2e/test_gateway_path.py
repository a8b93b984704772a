"""The agent over AgentCore Gateway: agent → Gateway (local stand-in) → bridge Lambda
(in-process) → AWS MCP Server stand-in → moto, through the public entry points.

The Gateway stand-in runs in this process in front of the bridge, itself pointed at the
session sandbox; the agent is an `opsagent` process that holds NO AWS credentials (only the
Gateway's URL and a bearer token), so every answer below came through the Gateway. Answers
are checked against moto's ground truth and against the direct path's answers to the same
questions.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections import Counter
from typing import Any

import httpx
import jwt
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from opsagent.access import Asker, Read, ReadOnlyViolation
from opsagent.access.gateway import GatewayReads
from opsagent.bridge.local import start_gateway
from opsagent.registry import load_registry
from opsagent.sandbox.gateway import (
    DEFAULT_TARGET,
    PROPAGATED_HEADERS_KEY,
    TOKEN_HEADER,
    TOOLS_FILE,
    GatewayStandIn,
    JwtAuthorizer,
    load_tools,
    mint_token,
)
from opsagent.service.settings import Settings
from tests.conftest import (
    DEMO_REGISTRY,
    EXAMPLE_QUESTIONS,
    ask_sandbox,
    check_example_answer,
    ids_by_account,
    run_cli,
    statuses,
)
from tests.conftest import (
    EXAMPLE_ACCOUNTS as WORKLOAD,
)
from tests.service_helpers import ServiceProcess, bearer, clean_env, sandbox_env, stream, token

SECRET = "gateway-test-secret-" + "x" * 24  # HS256: at least 32 bytes
MCP_ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def gateway(sandbox):
    """The Gateway stand-in in front of the bridge, on the session sandbox; HS256 tokens."""
    stand_in = start_gateway(sandbox, secret=SECRET)
    yield stand_in
    stand_in.stop()


@pytest.fixture(scope="module")
def gateway_env(gateway) -> dict[str, str]:
    """An agent with the Gateway's URL and a token, and no AWS identity at all."""
    env = clean_env(
        OPSAGENT_GATEWAY_URL=gateway.endpoint,
        OPSAGENT_GATEWAY_TOKEN=mint_token(SECRET, subject="gateway-tester"),
        OPSAGENT_CHECKPOINT_URL="memory://",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def ask_gateway(env: dict[str, str], question: str, registry=DEMO_REGISTRY) -> dict[str, Any]:
    done = run_cli(
        "ask", "--json", "--via", "gateway", "--registry", str(registry), question, env=env
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# ----- the five questions, over the Gateway, as moto has it and as the direct path says -----


def answers(done: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    """`ask --json` with several questions prints one answer per line."""
    assert done.returncode == 0, done.stderr
    found = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return {answer["question"]: answer for answer in found}


@pytest.fixture(scope="module")
def over_the_gateway(gateway, gateway_env) -> tuple[dict[str, dict[str, Any]], list]:
    """The five questions asked once, in one agent process, through the Gateway; and the
    Lambda invocations they made."""
    gateway.clear_invocations()
    done = run_cli(
        "ask",
        "--json",
        "--via",
        "gateway",
        "--registry",
        str(DEMO_REGISTRY),
        *EXAMPLE_QUESTIONS,
        env=gateway_env,
    )
    return answers(done), gateway.invocations


@pytest.fixture(scope="module")
def over_the_direct_path(sandbox, external_env) -> dict[str, dict[str, Any]]:
    """The same five questions on the direct path (the agent's own SigV4 sessions)."""
    return answers(ask_sandbox(sandbox, external_env, *EXAMPLE_QUESTIONS))


@pytest.mark.parametrize("question", EXAMPLE_QUESTIONS)
def test_the_five_questions_over_the_gateway(
    question, over_the_gateway, over_the_direct_path, truth
):
    gateway_answers, _ = over_the_gateway
    answer = gateway_answers[question]
    check_example_answer(question, answer, truth)
    # The same answer as the direct path's: sentence, rows, per-account status and count.
    direct = over_the_direct_path[question]
    assert answer["answer"] == direct["answer"]
    assert answer["resources"] == direct["resources"]
    assert [(a["account_id"], a["status"], a["count"]) for a in answer["accounts"]] == [
        (a["account_id"], a["status"], a["count"]) for a in direct["accounts"]
    ]


def test_the_answers_came_through_the_gateway(over_the_gateway):
    # One query_account invocation of the bridge per account per question, every one
    # answered; the agent process itself has no AWS credentials (gateway_env).
    gateway_answers, calls = over_the_gateway
    asked = Counter(
        a["account_id"] for answer in gateway_answers.values() for a in answer["accounts"]
    )
    assert Counter(c.event["account"] for c in calls) == asked
    assert {c.tool for c in calls} == {f"{DEFAULT_TARGET}___query_account"}
    assert all(c.error is None for c in calls)
    assert all(c.event.get("reads") for c in calls)


def test_demo_via_gateway_answers_the_five_questions(truth, tmp_path):
    # No configuration: the CLI starts its own sandbox, the Gateway stand-in and the bridge,
    # and answers through them. Bucket names are deterministic: the session sandbox's are
    # the ground truth here too.
    env = clean_env(HOME=str(tmp_path), OPSAGENT_CHECKPOINT_URL="memory://")
    done = run_cli("demo", "--via", "gateway", env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    for question in EXAMPLE_QUESTIONS:
        assert question in done.stdout
    for account in WORKLOAD:
        for bucket in truth.buckets(account):
            assert bucket in done.stdout
    assert "could not be queried" not in done.stdout
    assert "via the AgentCore Gateway stand-in at http://127.0.0.1:" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_service_forwards_the_callers_token_through_the_gateway(truth, tmp_path):
    # `opsagent serve` with JWT auth, on its embedded sandbox, via its Gateway stand-in: the
    # caller's own token goes to the Gateway and on to the bridge, which checks it and names
    # the caller in every AssumeRole (its audit record says who).
    env = sandbox_env(
        "memory://",
        OPSAGENT_VIA="gateway",
        OPSAGENT_JWT_SECRET=SECRET,
        OPSAGENT_JWT_ALLOWED_AUDIENCES="opsagent",
        OPSAGENT_AUDIT_LOG="stdout",
        HOME=str(tmp_path),
    )
    with ServiceProcess(env, tmp_path) as service:

        async def go() -> list[tuple[str, Any]]:
            async with httpx.AsyncClient(base_url=service.url, timeout=120) as client:
                alice = bearer(token(SECRET, "alice", ["sre"]))
                return await stream(client, EXAMPLE_QUESTIONS[1], headers=alice)

        events = asyncio.run(go())
        log = service.log()
    kinds = [kind for kind, _ in events]
    assert kinds[:2] == ["thread", "plan"] and kinds[-2:] == ["answer", "done"]
    assert kinds.count("account_finished") == 3
    answer = dict(events)["answer"]
    assert ids_by_account(answer) == {a: truth.buckets(a) for a in WORKLOAD}
    bridge_calls = [
        json.loads(line)
        for line in log.splitlines()
        if line.startswith("{") and '"event": "bridge.call"' in line
    ]
    assert len(bridge_calls) == 3
    assert {(c["user"], c["verified"], tuple(c["groups"])) for c in bridge_calls} == {
        ("alice", True, ("sre",))
    }


# ----- the Gateway stand-in itself -----


def test_the_gateway_refuses_a_missing_or_bad_token(gateway):
    gateway.clear_invocations()
    call = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": f"{DEFAULT_TARGET}___list_accounts", "arguments": {}},
    }
    now = int(time.time())
    bad_tokens = {
        "missing": None,
        "not a JWT": "not-a-token",
        "another key": mint_token("another-secret-of-thirty-two-bytes!!", subject="eve"),
        "expired": jwt.encode({"sub": "eve", "exp": now - 3600}, SECRET, algorithm="HS256"),
        "no exp": jwt.encode({"sub": "eve"}, SECRET, algorithm="HS256"),
        "alg none": jwt.encode({"sub": "eve", "exp": now + 60}, None, algorithm="none"),
    }
    for why, value in bad_tokens.items():
        headers = dict(MCP_ACCEPT)
        if value is not None:
            headers["Authorization"] = f"Bearer {value}"
        response = httpx.post(gateway.endpoint, json=call, headers=headers, timeout=10)
        assert response.status_code == 401, why
        assert response.headers["www-authenticate"].startswith("Bearer"), why
        assert response.json()["error"]["message"], why
    assert gateway.invocations == []  # nothing reached the Lambda


def test_the_gateway_lists_exactly_the_tools_of_tools_json(gateway):
    async def listed():
        headers = {"Authorization": f"Bearer {mint_token(SECRET, subject='lister')}"}
        async with (
            httpx.AsyncClient(headers=headers, timeout=30) as http,
            streamable_http_client(gateway.endpoint, http_client=http) as (read, write, _),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            return (await session.list_tools()).tools

    tools = asyncio.run(listed())
    schema = load_tools(TOOLS_FILE)
    assert [t.name for t in tools] == [f"{DEFAULT_TARGET}___{t['name']}" for t in schema]
    assert [t.inputSchema for t in tools] == [t["inputSchema"] for t in schema]
    assert [t.description for t in tools] == [t["description"] for t in schema]
    # The key the stand-in hands propagated headers under is the one the bridge reads.
    from opsagent.bridge.caller import PROPAGATED_HEADERS_KEY as BRIDGE_KEY
    from opsagent.bridge.caller import TOKEN_HEADER as BRIDGE_HEADER

    assert (PROPAGATED_HEADERS_KEY, TOKEN_HEADER) == (BRIDGE_KEY, BRIDGE_HEADER)


def test_the_lambda_gets_the_gateway_input_format_and_calls_run_in_parallel():
    # A stand-in Lambda that records what it is given and takes half a second: four calls at
    # once take about half a second in all, each in an execution environment of its own.
    seen: list[tuple[dict, dict, int]] = []

    def factory():
        def handler(event, context):
            seen.append(
                (event, dict(context.client_context.custom), context.get_remaining_time_in_millis())
            )
            time.sleep(0.5)
            return {"echo": event}

        return handler

    with GatewayStandIn(factory, authorizer=JwtAuthorizer(secret=SECRET), concurrency=4) as gw:
        token_ = mint_token(SECRET, subject="parallel")

        async def calls():
            headers = {"Authorization": f"Bearer {token_}", TOKEN_HEADER: token_}
            async with (
                httpx.AsyncClient(headers=headers, timeout=30) as http,
                streamable_http_client(gw.endpoint, http_client=http) as (read, write, _),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                started = time.monotonic()
                results = await asyncio.gather(
                    *(
                        session.call_tool(f"{DEFAULT_TARGET}___query_account", {"account": str(i)})
                        for i in range(4)
                    )
                )
                return results, time.monotonic() - started

        results, elapsed = asyncio.run(calls())
        assert gw.peak_concurrency == 4
        assert len({c.instance for c in gw.invocations}) == 4
    assert elapsed < 1.5, elapsed
    # The Lambda's JSON is the text of the tool result.
    assert sorted(json.loads(r.content[0].text)["echo"]["account"] for r in results) == [
        "0",
        "1",
        "2",
        "3",
    ]
    assert not any(r.isError for r in results)
    event, custom, remaining = seen[0]
    assert set(event) == {"account"}  # the arguments themselves, no envelope
    assert custom["bedrockAgentCoreToolName"] == f"{DEFAULT_TARGET}___query_account"
    assert custom["bedrockAgentCoreMessageVersion"] == "1.0"
    for key in (
        "bedrockAgentCoreAwsRequestId",
        "bedrockAgentCoreMcpMessageId",
        "bedrockAgentCoreGatewayId",
        "bedrockAgentCoreTargetId",
    ):
        assert custom[key]
    assert custom[PROPAGATED_HEADERS_KEY] == {TOKEN_HEADER: token_}
    assert 0 < remaining <= 300_000


def test_a_failing_lambda_is_a_tool_error():
    def factory():
        def handler(event, context):
            raise RuntimeError("boom")

        return handler

    with GatewayStandIn(factory, authorizer=JwtAuthorizer(secret=SECRET)) as gw:
        token_ = mint_token(SECRET, subject="x")

        async def call():
            headers = {"Authorization": f"Bearer {token_}"}
            async with (
                httpx.AsyncClient(headers=headers, timeout=30) as http,
                streamable_http_client(gw.endpoint, http_client=http) as (read, write, _),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                return await session.call_tool(f"{DEFAULT_TARGET}___query_account", {})

        result = asyncio.run(call())
    # Gateway's input validation: "account" is required by tools.json.
    assert result.isError and "account" in result.content[0].text
    assert gw.invocations == []


# ----- accounts that fail, and writes -----


def test_an_account_whose_role_cannot_be_assumed_is_denied_the_others_ok(
    sandbox, gateway_env, truth, tmp_path
):
    # The bridge's registry (its Lambda's) names a role that does not exist in development.
    registry = json.loads(DEMO_REGISTRY.read_text())
    registry["accounts"][3]["role_name"] = "NoSuchRole"
    path = tmp_path / "bridge-registry.json"
    path.write_text(json.dumps(registry))
    stand_in = start_gateway(sandbox, secret=SECRET, bridge_settings={"registry": path})
    try:
        env = {**gateway_env, "OPSAGENT_GATEWAY_URL": stand_in.endpoint}
        answer = ask_gateway(env, EXAMPLE_QUESTIONS[1])
    finally:
        stand_in.stop()
    by_id = {a["account_id"]: a for a in answer["accounts"]}
    assert by_id["444444444444"]["status"] == "denied"
    assert "AssumeRole" in by_id["444444444444"]["error"]
    assert by_id["222222222222"]["status"] == by_id["333333333333"]["status"] == "ok"
    assert ids_by_account(answer) == {a: truth.buckets(a) for a in WORKLOAD[:2]}
    assert "development" in answer["answer"] and "denied" in answer["answer"]


def test_a_bad_gateway_token_is_every_accounts_error(gateway_env):
    env = {**gateway_env, "OPSAGENT_GATEWAY_TOKEN": "not-a-token"}
    done = run_cli("ask", "--json", "--registry", str(DEMO_REGISTRY), EXAMPLE_QUESTIONS[1], env=env)
    assert done.returncode == 5, done.stderr
    answer = json.loads(done.stdout)
    assert statuses(answer) == dict.fromkeys(WORKLOAD, "error")
    assert all("refused the bearer token (HTTP 401)" in a["error"] for a in answer["accounts"])


def test_a_write_never_reaches_aws(sandbox, gateway, gateway_env, truth):
    before = truth.ec2_instances("333333333333"), truth.buckets("222222222222")
    gateway.clear_invocations()
    scripts = len(sandbox.scripts)
    # 1. Asked in plain English: the agent refuses before planning any read.
    for question in ("terminate all EC2 instances in staging", "delete the buckets"):
        done = run_cli(
            "ask", "--registry", str(DEMO_REGISTRY), "--via", "gateway", question, env=gateway_env
        )
        assert done.returncode == 3, (question, done.stdout, done.stderr)
        assert "read-only" in done.stdout
    assert gateway.invocations == []
    terminate = Read(
        service="ec2",
        operation="TerminateInstances",
        region="us-east-1",
        params={"InstanceIds": ["i-0123456789abcdef0"]},
    )
    registry = load_registry(DEMO_REGISTRY)
    staging = registry.get("333333333333")

    # 2. As a read handed to the Gateway path: the agent's guard refuses it, nothing is sent.
    async def through_the_agent():
        reads = GatewayReads(
            endpoint=gateway.endpoint, token=mint_token(SECRET, subject="gateway-tester")
        )
        try:
            with pytest.raises(ReadOnlyViolation):
                await reads(staging, Asker("gateway-tester"), [terminate])
            assert reads.calls == 0
        finally:
            await reads.aclose()

    asyncio.run(through_the_agent())
    assert gateway.invocations == []

    # 3. Straight at the Gateway, past the agent: the bridge's own guard refuses it.
    async def straight_at_the_gateway():
        value = mint_token(SECRET, subject="gateway-tester")
        headers = {"Authorization": f"Bearer {value}", TOKEN_HEADER: value}
        async with (
            httpx.AsyncClient(headers=headers, timeout=60) as http,
            streamable_http_client(gateway.endpoint, http_client=http) as (read, write, _),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            return await session.call_tool(
                f"{DEFAULT_TARGET}___query_account",
                {"account": "333333333333", "reads": [terminate.model_dump(mode="json")]},
            )

    result = asyncio.run(straight_at_the_gateway())
    answer = json.loads(result.content[0].text)
    assert answer["isError"] is True and answer["error"]["code"] == "read_only"
    assert len(gateway.invocations) == 1
    assert len(sandbox.scripts) == scripts  # no script ran anywhere
    assert (truth.ec2_instances("333333333333"), truth.buckets("222222222222")) == before


# ----- settings -----


def test_gateway_settings_are_checked(tmp_path):
    with pytest.raises(ValueError, match="plain HTTP to another host"):
        Settings(gateway_url="http://gateway.example.com/mcp", registry=DEMO_REGISTRY)
    with pytest.raises(ValueError, match="needs OPSAGENT_GATEWAY_URL"):
        Settings(via="gateway", registry=DEMO_REGISTRY)
    with pytest.raises(ValueError, match="OPSAGENT_VIA=direct but OPSAGENT_GATEWAY_URL"):
        Settings(via="direct", gateway_url="https://gw.example.com/mcp", registry=DEMO_REGISTRY)
    settings = Settings(gateway_url="https://gw.example.com/mcp", registry=DEMO_REGISTRY)
    assert settings.via == "gateway" and not settings.uses_sandbox
    assert Settings(via="gateway").uses_sandbox  # the sandbox starts a Gateway of its own


def test_gateway_without_a_token_is_a_configuration_error(gateway_env):
    env = {k: v for k, v in gateway_env.items() if k != "OPSAGENT_GATEWAY_TOKEN"}
    done = run_cli("ask", "--registry", str(DEMO_REGISTRY), EXAMPLE_QUESTIONS[1], env=env)
    assert done.returncode == 1
    assert "OPSAGENT_GATEWAY_TOKEN" in done.stderr and "Traceback" not in done.stderr


# ----- how the bridge's answers map to what the worker understands -----


def _tool_result(payload: Any, *, is_error: bool = False):
    from mcp.types import CallToolResult, TextContent

    text = payload if isinstance(payload, str) else json.dumps(payload)
    return CallToolResult(content=[TextContent(type="text", text=text)], isError=is_error)


@pytest.mark.parametrize(
    ("payload", "is_error", "expected", "status", "says"),
    [
        (
            {"accounts": [{"account_id": "333333333333", "status": "denied", "error": "no"}]},
            False,
            "AccountAccessDenied",
            "denied",
            "no",
        ),
        (
            {"accounts": [{"account_id": "333333333333", "status": "timeout", "error": "slow"}]},
            False,
            "AccountTimeout",
            "timeout",
            "slow",
        ),
        (
            {
                "accounts": [
                    {
                        "account_id": "333333333333",
                        "status": "ok",
                        "omitted": "too big",
                        "results": [],
                    }
                ]
            },
            False,
            "AccountUnreachable",
            "error",
            "too big",
        ),
        (
            {"isError": True, "error": {"code": "forbidden", "message": "not your account"}},
            False,
            "AccountAccessDenied",
            "denied",
            "not your account",
        ),
        (
            {
                "isError": True,
                "error": {"code": "read_only", "message": "opsagent is read-only: x"},
            },
            False,
            "ReadOnlyViolation",
            "error",
            "opsagent is read-only: x",
        ),
        (
            {"isError": True, "error": {"code": "unauthenticated", "message": "no token"}},
            False,
            "AccountUnreachable",
            "error",
            "no token",
        ),
        (
            "An internal error occurred. Please retry later.",
            True,
            "AccountUnreachable",
            "error",
            "internal error",
        ),
        ("<html>", False, "AccountUnreachable", "error", "not JSON"),
        ({"accounts": []}, False, "AccountUnreachable", "error", "no entry"),
    ],
)
def test_the_bridges_answers_become_the_workers_errors(payload, is_error, expected, status, says):
    from opsagent.access.gateway import _results

    staging = load_registry(DEMO_REGISTRY).get("333333333333")
    reads = [Read(service="s3", operation="ListBuckets", region="us-east-1")]
    with pytest.raises(Exception) as raised:
        _results(staging, _tool_result(payload, is_error=is_error), reads)
    assert type(raised.value).__name__ == expected
    assert raised.value.status == status  # type: ignore[attr-defined]
    assert says in str(raised.value)


def test_per_read_results_are_kept_whatever_the_accounts_status():
    # Every read failed with AccessDenied: the bridge says "denied", but the results go to the
    # worker, which words the account's message as on the direct path.
    from opsagent.access.gateway import _results

    staging = load_registry(DEMO_REGISTRY).get("333333333333")
    reads = [Read(service="s3", operation="ListBuckets", region="us-east-1")]
    node = {"operation": "ListBuckets", "error": {"code": "AccessDenied", "message": "no"}}
    payload = {
        "accounts": [
            {"account_id": "333333333333", "status": "denied", "error": "x", "results": [node]}
        ]
    }
    [result] = _results(staging, _tool_result(payload), reads)
    assert result.error is not None and result.error.code == "AccessDenied"
