"""The account worker on the sandbox: one script per account per question, every page, and
each read failing on its own."""

from __future__ import annotations

import pytest
from moto.iam.models import iam_backends

from opsagent.access import Asker
from opsagent.graph.answer import build_answer
from opsagent.graph.context import Context
from opsagent.graph.graph import build_graph
from opsagent.graph.models import Plan, ResourceQuery
from opsagent.graph.planner import rule_planner
from opsagent.graph.worker import run_account
from opsagent.registry import Account, load_registry
from opsagent.sandbox.identity import PARTITION
from opsagent.sandbox.seed import CENTRAL, READ_ONLY_ROLE, trust_policy
from tests.conftest import sandbox_pool

# An account of its own, so what this module seeds changes no other test's ground truth.
PAGED = "555555555555"
PRODUCTION = "222222222222"
EXTRA_ROLES = 130  # moto's ListRoles answers 100 per page
ALICE = Asker("alice")


@pytest.fixture(scope="module")
async def sessions(sandbox):
    pool = sandbox_pool(sandbox)
    yield pool
    await pool.aclose()


@pytest.fixture(scope="module")
def registry(sandbox):
    return load_registry(sandbox.registry_path)


@pytest.fixture(scope="module")
def paged_account(sandbox) -> Account:
    iam = iam_backends[PAGED][PARTITION]
    for name in [READ_ONLY_ROLE] + [f"paged-role-{i:03d}" for i in range(EXTRA_ROLES)]:
        iam.create_role(
            role_name=name,
            assume_role_policy_document=trust_policy(principal=f"arn:aws:iam::{CENTRAL}:root"),
            path="/",
            permissions_boundary=None,
            description="",
            tags=[],
            max_session_duration="3600",
        )
    return Account(
        id=PAGED,
        name="Paged",
        alias="paged",
        environment="sandbox",
        regions=["us-east-1"],
        role_arn=f"arn:aws:iam::{PAGED}:role/{READ_ONLY_ROLE}",
    )


async def test_one_script_per_account_queried_whatever_the_question_asks(
    sandbox, sessions, registry, truth
):
    context = Context(
        registry=registry, run_reads=sessions.run_reads, planner=rule_planner, user="alice"
    )
    sandbox.scripts.clear()
    state = await build_graph().ainvoke(
        {"question": "EC2 instances, S3 buckets and EKS clusters across all accounts"},
        context=context,
    )
    answer = state["answer"]
    queried = sorted(r.account_id for r in answer.results)
    assert len(queried) == 3 and all(r.status == "ok" for r in answer.results)
    assert sorted(account for account, _ in sandbox.scripts) == queried
    # One script carried every type in every region (and the per-cluster describes).
    assert all(calls >= 2 * 2 + 1 for _, calls in sandbox.scripts)
    production = [r for r in answer.resources if r.account_id == "222222222222"]
    assert {r.id for r in production if r.resource_type == "ec2:instance"} == set(
        truth.ec2_instances("222222222222")
    )
    assert {r.id for r in production if r.resource_type == "s3:bucket"} == truth.buckets(
        "222222222222"
    )


async def test_every_page_of_a_paginated_read_comes_back(sandbox, sessions, paged_account):
    plan = Plan(accounts=[PAGED], queries=[ResourceQuery(resource_type="iam:role")])
    sandbox.scripts.clear()
    result = await run_account(paged_account, plan, ALICE, sessions.run_reads, deadline_s=60)
    assert result.status == "ok", result.error
    assert len(result.rows) == EXTRA_ROLES + 1
    [(account, calls)] = sandbox.scripts
    assert account == PAGED and calls >= 2  # ListRoles was followed to its second page


@pytest.fixture
def west_denied(sandbox):
    """Production's us-west-2 denied by the sandbox's SCP rule for one test, then restored."""
    before = sandbox.denied_regions(PRODUCTION)
    sandbox.deny_regions(PRODUCTION, ["us-west-2"])
    yield
    sandbox.allow_all_regions(PRODUCTION)
    if before:
        sandbox.deny_regions(PRODUCTION, before)


async def test_a_read_denied_in_one_region_keeps_the_other_regions_rows(
    sessions, registry, truth, west_denied
):
    production = registry.get(PRODUCTION)
    plan = Plan(accounts=[production.id], queries=[ResourceQuery(resource_type="ec2:instance")])
    result = await run_account(production, plan, ALICE, sessions.run_reads, deadline_s=60)
    east = truth.ec2_instances(production.id, regions=("us-east-1",))
    assert east and {r.id for r in result.rows} == set(east)
    assert result.status == "ok"
    assert result.error is not None
    assert result.error == (
        "1 read failed: us-west-2 ec2 DescribeInstances: UnauthorizedOperation: "
        "You are not authorized to perform this operation. User: arn:aws:sts::222222222222:"
        "assumed-role/OpsAgentReadOnly/opsagent-alice is not authorized to perform: "
        "ec2:DescribeInstances with an explicit deny in a service control policy"
    )
    text = build_answer("EC2 in production", plan, None, [result]).text
    assert f"Found {len(east)} EC2 instances in production" in text
    assert "production (222222222222) answered in part: 1 read failed: us-west-2" in text


async def test_every_read_denied_is_the_accounts_denied_status(sessions, registry, west_denied):
    production = registry.get(PRODUCTION)
    plan = Plan(
        accounts=[production.id],
        regions=["us-west-2"],
        queries=[
            ResourceQuery(resource_type="ec2:instance"),
            ResourceQuery(resource_type="rds:db-instance"),
        ],
    )
    result = await run_account(production, plan, ALICE, sessions.run_reads, deadline_s=60)
    assert result.status == "denied" and result.rows == []
    assert result.error.startswith("every read failed")
    assert "us-west-2 ec2 DescribeInstances: UnauthorizedOperation" in result.error
    assert "us-west-2 rds DescribeDBInstances: AccessDenied" in result.error


async def test_the_agent_answers_a_question_with_a_denied_region_in_part(
    sessions, registry, truth, west_denied
):
    """What `opsagent ask "List EC2 instances in production"` answers with the SCP in place
    (the CLI's process has a sandbox of its own, so the same graph runs here)."""
    context = Context(
        registry=registry, run_reads=sessions.run_reads, planner=rule_planner, user="alice"
    )
    state = await build_graph().ainvoke(
        {"question": "List EC2 instances in production"}, context=context
    )
    answer = state["answer"]
    [result] = answer.results
    assert (result.account_id, result.status) == (PRODUCTION, "ok")
    east = truth.ec2_instances(PRODUCTION, regions=("us-east-1",))
    assert {r.id for r in answer.resources} == set(east)
    assert {r.region for r in answer.resources} == {"us-east-1"}
    assert f"Found {len(east)} EC2 instances in production" in answer.text
    assert (
        "production (222222222222) answered in part: 1 read failed: "
        "us-west-2 ec2 DescribeInstances: UnauthorizedOperation"
    ) in answer.text


@pytest.mark.parametrize("exc", [SystemExit(3), KeyboardInterrupt(), ValueError("bad")])
async def test_anything_raised_below_the_worker_is_that_accounts_error(registry, exc):
    async def explode(account, user, reads, *, allowed=None, fresh=True):
        raise exc

    production = registry.get("222222222222")
    plan = Plan(accounts=[production.id], queries=[ResourceQuery(resource_type="ec2:instance")])
    result = await run_account(production, plan, ALICE, explode, deadline_s=5)
    assert result.status == "error" and type(exc).__name__ in result.error
