"""The bridge Lambda (``opsagent/bridge``) end to end, invoked as AgentCore Gateway invokes it.

``handler(event, context)`` is called the way the Lambda runtime calls it for the Gateway: the
event is the tool's arguments, the context a Lambda context whose ``client_context.custom``
carries ``bedrockAgentCoreToolName`` (``opsagent-bridge___<tool>``), the call's ids and the
propagated headers (the caller's JWT in ``X-Opsagent-Token``). The bridge is pointed at the
session sandbox as at any AWS, by environment only (``OPSAGENT_REGISTRY``,
``OPSAGENT_MCP_ENDPOINT``, ``OPSAGENT_JWT_SECRET``, the central identity's ``AWS_*``): moto for
STS, and a copy of the sandbox's AWS MCP Server stand-in over the same moto whose script
latency this module sets. Answers are compared with moto's ground truth (``truth``).

The registry is the demo's, plus an account whose role cannot be assumed (``retired``) and
groups: ``platform`` sees every account, ``prod-team`` only production.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest

from opsagent.bridge.handler import Bridge, close_default, default_bridge, handler
from opsagent.bridge.settings import BridgeSettings
from tests.service_helpers import DEVELOPMENT, PRODUCTION, STAGING, clean_env

ROOT = Path(__file__).resolve().parents[2]
DEMO_REGISTRY = ROOT / "opsagent" / "sandbox" / "demo-registry.json"
TARGET = "opsagent-bridge"
RETIRED = "999999999999"  # in the registry, but no role there trusts the central account
WORKLOAD = (PRODUCTION, STAGING, DEVELOPMENT)
SECRET = "bridge-tests-hs256-secret-of-at-least-32-bytes"
ALICE = ("alice", ("platform",))
BOB = ("bob", ("prod-team",))
ACCOUNT_TIMEOUT = 30.0


# ----------------------------------------------------------------------------- Lambda shapes


@dataclass
class ClientContext:
    custom: dict[str, Any]
    env: dict[str, Any] | None = None
    client: Any = None


@dataclass
class LambdaContext:
    """What the Lambda Python runtime hands the handler when the Gateway invokes it."""

    client_context: ClientContext | None
    aws_request_id: str = "lambda-request-1"
    function_name: str = "opsagent-bridge"
    deadline: float = field(default_factory=lambda: time.monotonic() + 300)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def token(user: str, groups: tuple[str, ...], *, secret: str = SECRET, **claims: Any) -> str:
    now = int(time.time())
    body = {"sub": user, "groups": list(groups), "iat": now, "exp": now + 600, **claims}
    return jwt.encode(body, secret, algorithm="HS256")


def context(
    tool: str | None,
    who: tuple[str, tuple[str, ...]] | None = ALICE,
    *,
    headers: dict[str, str] | None = None,
    remaining_s: float = 300,
) -> LambdaContext:
    custom: dict[str, Any] = {
        "bedrockAgentCoreMessageVersion": "1.0",
        "bedrockAgentCoreAwsRequestId": "gateway-request-1",
        "bedrockAgentCoreMcpMessageId": "7",
        "bedrockAgentCoreGatewayId": "gw-test",
        "bedrockAgentCoreTargetId": "tgt-test",
    }
    if tool is not None:
        custom["bedrockAgentCoreToolName"] = f"{TARGET}___{tool}"
    propagated = dict(headers or {})
    if who is not None:
        propagated["x-opsagent-token"] = token(*who)
    if propagated:
        custom["bedrockAgentCorePropagatedHeaders"] = propagated
    return LambdaContext(ClientContext(custom), deadline=time.monotonic() + remaining_s)


def call(tool: str, arguments: Any, who: tuple[str, tuple[str, ...]] | None = ALICE, **kw: Any):
    response = handler(arguments, context(tool, who, **kw))
    json.dumps(response)  # what Lambda returns to the Gateway must be JSON
    return response


def by_account(response: dict[str, Any]) -> dict[str, dict[str, Any]]:
    assert not response.get("isError"), response
    return {a["account_id"]: a for a in response["accounts"]}


def ids(account: dict[str, Any]) -> set[str]:
    return {row["id"] for row in account["rows"]}


def error_of(response: dict[str, Any], code: str) -> str:
    assert response.get("isError") is True, response
    assert response["error"]["code"] == code, response
    message = response["error"]["message"]
    assert "Traceback" not in message and 'File "' not in message
    return message


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def stand_in(sandbox):
    """The AWS MCP Server stand-in over the session sandbox's moto, ours to slow down."""
    from opsagent.sandbox.mcp_server import McpServer

    server = McpServer(sandbox.aws_endpoint)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def registry_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    registry = json.loads(DEMO_REGISTRY.read_text())
    registry["accounts"].append(
        {"id": RETIRED, "name": "Retired", "environment": "retired", "aliases": ["retired"]}
    )
    registry["groups"] = {"platform": ["all", "central"], "prod-team": ["production"]}
    path = tmp_path_factory.mktemp("bridge") / "registry.json"
    path.write_text(json.dumps(registry))
    return path


@pytest.fixture(scope="module")
def lambda_env(sandbox, stand_in, registry_file) -> Iterator[dict[str, str]]:
    """The Lambda's environment, pointed at the sandbox as at any AWS; the module-level
    bridge is made from it on the first ``handler`` call and closed at the end."""
    creds = sandbox.central_credentials
    env = {
        "OPSAGENT_REGISTRY": str(registry_file),
        "OPSAGENT_MCP_ENDPOINT": stand_in.endpoint,
        "OPSAGENT_JWT_SECRET": SECRET,
        "OPSAGENT_ACCOUNT_TIMEOUT": str(ACCOUNT_TIMEOUT),
        "OPSAGENT_DATA_MAX_AGE": "0",
        "AWS_ACCESS_KEY_ID": creds.access_key,
        "AWS_SECRET_ACCESS_KEY": creds.secret_key,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": sandbox.aws_endpoint,
    }
    if creds.token:
        env["AWS_SESSION_TOKEN"] = creds.token
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(("OPSAGENT_", "AWS_")):
                patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value)
        close_default()
        yield env
        close_default()


@pytest.fixture(autouse=True)
def fast_stand_in(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "stand_in" in request.fixturenames:
        request.getfixturevalue("stand_in").script_latency_ms = 0


# ----------------------------------------------------------------------------- the five questions


def test_ec2_instances_in_production(lambda_env, truth) -> None:
    response = call(
        "query_account",
        {"account": "production", "plan": {"queries": [{"resource_type": "ec2:instance"}]}},
    )
    [account] = response["accounts"]
    assert account["account_id"] == PRODUCTION and account["status"] == "ok", account
    assert ids(account) == set(truth.ec2_instances(PRODUCTION))
    assert {row["state"] for row in account["rows"]} == set(
        truth.ec2_instances(PRODUCTION).values()
    )
    assert response["tool"] == "query_account" and response["sandbox"] is False
    assert response["caller"] == {"user": "alice", "groups": ["platform"], "verified": True}


def test_s3_buckets_across_all_accounts(lambda_env, truth) -> None:
    response = call(
        "query_accounts",
        {"accounts": ["all"], "plan": {"queries": [{"resource_type": "s3:bucket"}]}},
    )
    accounts = by_account(response)
    assert set(accounts) == {*WORKLOAD, RETIRED}  # "all": every workload account alice sees
    for account_id in WORKLOAD:
        assert accounts[account_id]["status"] == "ok", accounts[account_id]
        assert ids(accounts[account_id]) == truth.buckets(account_id)
    assert accounts[RETIRED]["status"] == "denied"
    assert response["summary"] == {"ok": 3, "denied": 1}


def test_lambda_functions_in_staging(lambda_env, truth) -> None:
    response = call(
        "query_account",
        {"account": "staging", "plan": {"queries": [{"resource_type": "lambda:function"}]}},
    )
    [account] = response["accounts"]
    assert account["status"] == "ok", account
    assert {row["name"] for row in account["rows"]} == truth.lambda_functions(STAGING)


def test_eks_clusters_described_in_222222222222(lambda_env, truth) -> None:
    response = call(
        "query_account",
        {
            "account": PRODUCTION,
            "plan": {"queries": [{"resource_type": "eks:cluster", "intent": "describe"}]},
        },
    )
    [account] = response["accounts"]
    assert account["status"] == "ok", account
    expected = truth.eks_clusters(PRODUCTION)
    assert expected and {row["name"] for row in account["rows"]} == expected
    for row in account["rows"]:
        assert row["details"].get("version"), row  # describe: the rows carry details


def test_rds_instances_running_per_account(lambda_env, truth) -> None:
    response = call(
        "query_accounts",
        {
            "accounts": ["production", "staging", "development"],
            "plan": {"queries": [{"resource_type": "rds:db-instance", "states": ["running"]}]},
        },
    )
    accounts = by_account(response)
    assert set(accounts) == set(WORKLOAD)
    for account_id in WORKLOAD:
        running = {db for db, s in truth.rds_instances(account_id).items() if s == "available"}
        assert accounts[account_id]["status"] == "ok"
        assert ids(accounts[account_id]) == running
        assert accounts[account_id]["count"] == len(running)
        assert "details" not in (accounts[account_id]["rows"] or [{}])[0]  # a list: compact


# ----------------------------------------------------------------------------- parallel


def test_query_accounts_runs_the_accounts_in_parallel(lambda_env, stand_in) -> None:
    """Three accounts whose scripts take 1 s each: their scripts overlap in time (observed
    around the bridge's run_reads), and the whole call takes about one script's time."""
    call("list_accounts", {})  # opens the module's bridge
    service = default_bridge().service
    assert service is not None
    intervals: dict[str, tuple[float, float]] = {}
    original = service.run_reads

    async def recorded(account, asker, reads, **kw):
        started = time.monotonic()
        try:
            return await original(account, asker, reads, **kw)
        finally:
            intervals[account.id] = (started, time.monotonic())

    service.run_reads = recorded
    stand_in.script_latency_ms = 1000
    try:
        started = time.monotonic()
        response = call(
            "query_accounts",
            {
                "accounts": list(WORKLOAD),
                "plan": {"queries": [{"resource_type": "ec2:vpc"}]},
                "fresh": True,
            },
        )
        wall = time.monotonic() - started
    finally:
        service.run_reads = original
    assert {a["status"] for a in response["accounts"]} == {"ok"}, response
    assert set(intervals) == set(WORKLOAD)
    assert max(s for s, _ in intervals.values()) < min(e for _, e in intervals.values())
    assert service.slots.most_in_flight >= 3
    slowest = max(a["elapsed_ms"] for a in response["accounts"]) / 1000
    print(
        f"\nbridge: 3 accounts x 1 s script in {wall:.2f} s wall (slowest account {slowest:.2f} s)"
    )


def test_accounts_in_flight_are_bounded(sandbox, stand_in, registry_file) -> None:
    """OPSAGENT_MAX_ACCOUNTS_IN_FLIGHT=2: three accounts, never more than two at once."""
    bridge = Bridge.on_sandbox(
        sandbox,
        registry=registry_file,
        mcp_endpoint=stand_in.endpoint,
        jwt_secret=None,
        max_accounts_in_flight=2,
        data_max_age=0,
    )
    stand_in.script_latency_ms = 300
    try:
        response = bridge.invoke(
            {"accounts": list(WORKLOAD), "plan": {"queries": [{"resource_type": "ec2:vpc"}]}},
            context("query_accounts", None),
        )
        assert {a["status"] for a in response["accounts"]} == {"ok"}, response
        assert bridge.service is not None and bridge.service.slots.most_in_flight == 2
    finally:
        bridge.close()


# ----------------------------------------------------------------------------- reads as data


def test_reads_as_data(lambda_env, truth) -> None:
    response = call(
        "query_account",
        {
            "account": "production",
            "reads": [
                {"service": "ec2", "operation": "DescribeInstances", "region": "us-east-1"},
                {"service": "s3", "operation": "ListBuckets", "region": "us-east-1"},
            ],
        },
    )
    [account] = response["accounts"]
    assert account["status"] == "ok" and account["error"] is None, account
    instances, buckets = account["results"]
    found = {
        inst["InstanceId"]
        for reservation in instances["result"]["Reservations"]
        for inst in reservation["Instances"]
    }
    assert found == set(truth.ec2_instances(PRODUCTION, regions=("us-east-1",)))
    assert {b["Name"] for b in buckets["result"]["Buckets"]} == truth.buckets(PRODUCTION)


def test_catalogue_reads_answer_with_their_secrets_deleted(lambda_env, truth) -> None:
    """What the agent's Gateway client sends for a plan: the catalogue's own reads. Lambda's
    ListFunctions answers environment variables, so the model policy would refuse it; as
    catalogue reads it runs, with the script deleting every secret member from the answer
    (the deletion itself: tests/unit/test_access_script.py; the demo's functions have no
    variables to delete)."""
    response = call(
        "query_account",
        {
            "account": "staging",
            "reads": [{"service": "lambda", "operation": "ListFunctions", "region": "us-east-1"}],
        },
    )
    [account] = response["accounts"]
    assert account["status"] == "ok", account
    functions = account["results"][0]["result"]["Functions"]
    assert {f["FunctionName"] for f in functions} == truth.lambda_functions(
        STAGING, regions=("us-east-1",)
    )
    assert all("Variables" not in (f.get("Environment") or {}) for f in functions)
    # The same read beside one that is not the catalogue's: the model policy, refused.
    mixed = call(
        "query_account",
        {
            "account": "staging",
            "reads": [
                {"service": "lambda", "operation": "ListFunctions", "region": "us-east-1"},
                {"service": "ec2", "operation": "DescribeRegions", "region": "us-east-1"},
            ],
        },
    )
    assert "secret" in error_of(mixed, "read_only")


def test_a_write_is_refused_and_nothing_is_sent(lambda_env, stand_in, truth) -> None:
    instances = truth.ec2_instances(PRODUCTION)
    before = len(stand_in.scripts)
    response = call(
        "query_accounts",
        {
            "accounts": ["production", "staging"],
            "reads": [
                {"service": "ec2", "operation": "DescribeVpcs", "region": "us-east-1"},
                {
                    "service": "ec2",
                    "operation": "TerminateInstances",
                    "region": "us-east-1",
                    "params": {"InstanceIds": sorted(instances)},
                },
            ],
        },
    )
    message = error_of(response, "read_only")
    assert "opsagent is read-only" in message and "TerminateInstances" in message
    assert len(stand_in.scripts) == before  # no script, in no account
    assert truth.ec2_instances(PRODUCTION) == instances


def test_a_read_of_secrets_is_refused(lambda_env, stand_in) -> None:
    before = len(stand_in.scripts)
    response = call(
        "query_account",
        {
            "account": "production",
            "reads": [
                {
                    "service": "secretsmanager",
                    "operation": "GetSecretValue",
                    "region": "us-east-1",
                    "params": {"SecretId": "prod/db"},
                }
            ],
        },
    )
    assert "GetSecretValue" in error_of(response, "read_only")
    assert len(stand_in.scripts) == before


# ----------------------------------------------------------------------------- who asks


def test_an_account_the_caller_may_not_see(lambda_env) -> None:
    listed = call("list_accounts", {}, BOB)
    assert [a["account_id"] for a in listed["accounts"]] == [PRODUCTION]
    message = error_of(
        call(
            "query_account",
            {"account": "staging", "plan": {"queries": [{"resource_type": "s3:bucket"}]}},
            BOB,
        ),
        "forbidden",
    )
    assert "Staging (333333333333)" in message and "platform" in message
    everything = call(
        "query_accounts",
        {"accounts": ["all"], "plan": {"queries": [{"resource_type": "s3:bucket"}]}},
        BOB,
    )
    assert list(by_account(everything)) == [PRODUCTION]  # "all" is all of bob's


def test_a_denied_account_leaves_the_others_ok(lambda_env, truth) -> None:
    response = call(
        "query_accounts",
        {
            "accounts": ["production", "retired", "staging"],
            "plan": {"queries": [{"resource_type": "s3:bucket"}]},
        },
    )
    accounts = by_account(response)
    assert [a["account_id"] for a in response["accounts"]] == [PRODUCTION, RETIRED, STAGING]
    assert accounts[RETIRED]["status"] == "denied"
    assert "AssumeRole" in accounts[RETIRED]["error"] and accounts[RETIRED]["rows"] == []
    for account_id in (PRODUCTION, STAGING):
        assert accounts[account_id]["status"] == "ok"
        assert ids(accounts[account_id]) == truth.buckets(account_id)


def test_every_assume_role_names_the_caller(lambda_env, caplog) -> None:
    audit_logger = logging.getLogger("opsagent.audit")
    caplog.set_level("INFO", logger="opsagent.audit")
    audit_logger.addHandler(caplog.handler)  # whether or not the audit trail propagates
    try:
        response = call(
            "query_account",
            {
                "account": "staging",
                "plan": {"queries": [{"resource_type": "ec2:vpc"}]},
                "fresh": True,
            },
            ("carol", ("platform", "sre")),
        )
    finally:
        audit_logger.removeHandler(caplog.handler)
    assert response["accounts"][0]["status"] == "ok"
    unique = {id(r): r for r in caplog.records}.values()  # reached through root too, or not
    records = [getattr(r, "audit", {}) for r in unique]
    scripts = [r for r in records if r.get("event") == "aws.script" and r.get("user") == "carol"]
    assert scripts and scripts[-1]["groups"] == ["platform", "sre"]
    assumed = [
        r for r in records if r.get("event") == "sts.assume_role" and r.get("user") == "carol"
    ]
    assert assumed, "carol's own credentials were made"
    assert assumed[-1]["role_session_name"] == "opsagent-carol"
    assert assumed[-1]["source_identity"] == "carol"
    assert assumed[-1]["session_tags"] == {
        "opsagent:user": "carol",
        "opsagent:groups": "platform:sre",
    }
    [bridge_call] = [
        r for r in records if r.get("event") == "bridge.call" and r.get("user") == "carol"
    ]
    assert bridge_call["verified"] is True and bridge_call["accounts"] == {STAGING: "ok"}
    assert (
        bridge_call["gateway_id"] == "gw-test" and bridge_call["request_id"] == "lambda-request-1"
    )


def test_a_call_without_a_verified_token_is_refused(lambda_env) -> None:
    plan = {"account": "production", "plan": {"queries": [{"resource_type": "s3:bucket"}]}}
    assert "carries none" in error_of(call("query_account", plan, None), "unauthenticated")
    forged = {"x-opsagent-token": token("mallory", ("platform",), secret="x" * 40)}
    message = error_of(call("query_account", plan, None, headers=forged), "unauthenticated")
    assert "signature" in message
    # A claimed user in a header of its own is no token at all.
    claimed = {"x-user": "alice", "x-groups": "platform"}
    error_of(call("query_account", plan, None, headers=claimed), "unauthenticated")
    # The Authorization header, when a REQUEST interceptor forwards it, is checked the same way.
    forwarded = {"Authorization": f"Bearer {token(*ALICE)}"}
    response = call("list_accounts", {}, None, headers=forwarded)
    assert response["caller"]["user"] == "alice"


def test_without_token_settings_the_bridge_is_one_service_identity(
    sandbox, stand_in, registry_file
) -> None:
    """No OPSAGENT_JWT_*: every call is the bridge's service identity with every account, and
    a token or a claimed user that comes along is not believed."""
    bridge = Bridge.on_sandbox(
        sandbox, registry=registry_file, mcp_endpoint=stand_in.endpoint, jwt_secret=None
    )
    try:
        response = bridge.invoke(
            {"accounts": ["all"], "plan": {"queries": [{"resource_type": "ec2:vpc"}]}},
            context("query_accounts", BOB, headers={"x-user": "bob"}),
        )
        assert response["caller"] == {"user": "opsagent-bridge", "groups": [], "verified": False}
        assert set(by_account(response)) == {*WORKLOAD, RETIRED}
    finally:
        asyncio.run(bridge.aclose())


# ----------------------------------------------------------------------------- bad calls


def test_unknown_tool(lambda_env) -> None:
    message = error_of(call("delete_account", {"account": "production"}), "unknown_tool")
    assert "delete_account" in message and "query_accounts" in message
    no_name = handler({}, LambdaContext(client_context=None))
    assert "no tool name" in error_of(no_name, "unknown_tool")


@pytest.mark.parametrize(
    ("tool", "arguments", "says"),
    [
        ("query_account", {}, "account: Field required"),
        ("query_account", {"account": "production"}, "either plan or reads"),
        (
            "query_account",
            {
                "account": "production",
                "plan": {"queries": [{"resource_type": "s3:bucket"}]},
                "reads": [{"service": "s3", "operation": "ListBuckets", "region": "us-east-1"}],
            },
            "either plan or reads",
        ),
        (
            "query_account",
            {"account": "production", "plan": {"queries": [{"resource_type": "ec2:vm"}]}},
            "unknown resource_type 'ec2:vm'",
        ),
        (
            "query_accounts",
            {
                "accounts": ["all"],
                "plan": {"queries": [{"resource_type": "rds:db-instance", "states": ["asleep"]}]},
            },
            "has no state 'asleep'",
        ),
        (
            "query_accounts",
            {
                "accounts": ["all"],
                "plan": {"queries": [{"resource_type": "ec2:instance"}], "regions": ["mars-1"]},
            },
            "'mars-1' is not an AWS region code",
        ),
        (
            "query_account",
            {"account": "production", "command": "aws ec2 describe-instances"},
            "command: not a field of this tool",
        ),
        (
            "query_account",
            {
                "account": "production",
                "reads": [
                    {
                        "service": "ec2",
                        "operation": "DescribeInstances",
                        "region": "us-east-1",
                        "code": "import os",
                    }
                ],
            },
            "reads.0.code: not a field of this tool",
        ),
        ("query_accounts", {"accounts": [], "plan": {"queries": []}}, "accounts:"),
        ("list_accounts", {"account": "production"}, "account: not a field"),
        ("query_account", "aws ec2 describe-instances", "must be a JSON object"),
        (
            "query_account",
            {"account": "all", "plan": {"queries": [{"resource_type": "s3:bucket"}]}},
            "query_account takes one",
        ),
    ],
)
def test_bad_arguments_get_a_clear_error(lambda_env, tool, arguments, says) -> None:
    message = error_of(call(tool, arguments), "bad_arguments")
    assert says in message, message
    assert len(message) < 1000


def test_unknown_account(lambda_env) -> None:
    message = error_of(
        call(
            "query_accounts",
            {
                "accounts": ["production", "marketing"],
                "plan": {"queries": [{"resource_type": "s3:bucket"}]},
            },
        ),
        "unknown_account",
    )
    assert "'marketing'" in message and "Production (222222222222" in message


def test_a_call_that_runs_out_of_lambda_time_reports_timeouts(lambda_env, stand_in) -> None:
    """An invocation with 2.5 s left and 3 s scripts: each account says timeout, in time."""
    stand_in.script_latency_ms = 3000
    started = time.monotonic()
    response = call(
        "query_accounts",
        {
            "accounts": ["production", "staging"],
            "plan": {"queries": [{"resource_type": "ec2:vpc"}]},
            "fresh": True,
        },
        remaining_s=2.5,
    )
    assert time.monotonic() - started < 2.5
    assert {a["status"] for a in response["accounts"]} == {"timeout"}, response


def test_a_deployed_lambda_refuses_the_embedded_sandbox(monkeypatch) -> None:
    """Inside a Lambda (AWS_LAMBDA_FUNCTION_NAME set) with no registry and no endpoint, the
    bridge would answer from made-up accounts: it refuses, saying what to set."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "opsagent-bridge")
    bridge = Bridge(BridgeSettings(registry=None, mcp_endpoint=None, registry_source="file"))
    try:
        message = error_of(bridge.invoke({}, context("list_accounts", None)), "configuration")
        assert "OPSAGENT_REGISTRY" in message and "OPSAGENT_ALLOW_SANDBOX" in message
    finally:
        bridge.close()


def test_settings_that_cannot_work_are_a_configuration_error(sandbox, registry_file) -> None:
    off_loopback = Bridge.on_sandbox(
        sandbox, registry=registry_file, mcp_endpoint="http://mcp.example.com/mcp", jwt_secret=None
    )
    short_secret = Bridge(
        None, central=sandbox.central_session(), sts_endpoint_url=sandbox.aws_endpoint
    )
    try:
        message = error_of(off_loopback.invoke({}, context("list_accounts", None)), "configuration")
        assert "MCP endpoint" in message
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("OPSAGENT_JWT_SECRET", "too-short")
            response = short_secret.invoke({}, context("list_accounts", None))
        message = error_of(response, "configuration")
        assert "OPSAGENT_JWT_SECRET is 9 bytes" in message and "too-short" not in message
    finally:
        off_loopback.close()
        short_secret.close()


# ----------------------------------------------------------------------------- with nothing set


def test_with_nothing_configured_it_answers_from_the_embedded_sandbox() -> None:
    """A fresh process with no OPSAGENT_* or AWS_* settings: the bridge starts the embedded
    sandbox, as the agent does, and says its answers are the sandbox's."""
    script = """
import json
from types import SimpleNamespace as NS
from opsagent.bridge.handler import close_default, handler
def ctx(tool):
    custom = {"bedrockAgentCoreToolName": "opsagent-bridge___" + tool}
    return NS(client_context=NS(custom=custom), aws_request_id="r")
print(json.dumps(handler({"account": "production", "plan": {"queries": [
    {"resource_type": "s3:bucket"}]}}, ctx("query_account"))))
close_default()
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=clean_env(OPSAGENT_AUDIT_LOG="off"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    response = json.loads(done.stdout.strip().splitlines()[-1])
    assert response["sandbox"] is True
    [account] = response["accounts"]
    assert account["status"] == "ok" and account["count"] > 0


def test_the_handler_module_loads_no_graph_framework_or_web_server() -> None:
    """Cold start: ``import opsagent.bridge.handler`` loads neither LangGraph, LangChain,
    FastAPI nor moto (the import time itself is a benchmark's business, not a test's)."""
    heavy = ("langgraph", "langchain_core", "langchain_mcp_adapters", "fastapi", "moto")
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, json, opsagent.bridge.handler; "
            f"print(json.dumps([m for m in {heavy!r} if m in sys.modules]))",
        ],
        env=clean_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
