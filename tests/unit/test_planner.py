"""The rule planner: operators' questions become Plans, or Refusals that say why.

Each case states what the plan must be; anything a case does not mention must be empty
(no state, tag, name, id or condition filter, every region, no grouping), so a planner that
quietly adds or drops a filter fails.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from opsagent.graph.catalogue import CATALOGUE, CONDITIONS, RESOURCE_TYPES, TYPE_STATES
from opsagent.graph.models import Plan, Refusal
from opsagent.graph.planner import example_questions, plan_question, rule_planner
from opsagent.registry import Registry, load_registry, parse_registry
from tests.conftest import ROOT

CENTRAL, PROD, STAGING, DEV = "111111111111", "222222222222", "333333333333", "444444444444"
WORKLOAD = [PROD, STAGING, DEV]


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry(ROOT / "opsagent" / "sandbox" / "demo-registry.json")


def planned(question: str, registry: Registry, previous: Plan | None = None) -> Plan:
    outcome = plan_question(question, registry, previous)
    assert isinstance(outcome, Plan), f"{question!r} was refused: {outcome.message}"
    _assert_valid(outcome, registry)
    return outcome


def refused(question: str, registry: Registry, previous: Plan | None = None) -> Refusal:
    outcome = plan_question(question, registry, previous)
    assert isinstance(outcome, Refusal), f"{question!r} was planned: {outcome.summary}"
    return outcome


def _assert_valid(plan: Plan, registry: Registry) -> None:
    """Every plan the planner emits is one the workers can run."""
    known = {a.id for a in registry.all_accounts}
    assert plan.accounts and set(plan.accounts) <= known
    assert plan.summary
    for q in plan.queries:
        assert q.resource_type in RESOURCE_TYPES
        assert set(q.states) <= set(TYPE_STATES.get(q.resource_type, ())), q
        assert all(CONDITIONS[c] == q.resource_type for c in q.conditions), q


def expect(
    plan: Plan,
    *,
    intent: str,
    types: list[str],
    accounts: list[str],
    regions: list[str] | None = None,
    group: str | None = None,
    states: Any = (),
    tags: dict[str, str] | None = None,
    name: str | None = None,
    ids: list[str] | None = None,
    conditions: Any = (),
) -> None:
    """Compare a plan with what the question means; unmentioned filters must be empty."""
    assert [q.resource_type for q in plan.queries] == types, plan.summary
    assert all(q.intent == intent for q in plan.queries), plan.summary
    assert plan.accounts == accounts, plan.summary
    assert plan.regions == regions, plan.summary
    assert plan.group_by == group, plan.summary
    for q in plan.queries:
        want_states = states.get(q.resource_type, []) if isinstance(states, dict) else states
        assert q.states == list(want_states), plan.summary
        want_conditions = (
            conditions.get(q.resource_type, []) if isinstance(conditions, dict) else conditions
        )
        assert q.conditions == list(want_conditions), plan.summary
        assert q.tags == (tags or {}), plan.summary
        assert q.name_contains == name, plan.summary
        assert q.ids == (ids or []), plan.summary


# ----- the product's five example questions -----


def test_list_ec2_in_the_production_account(registry):
    plan = planned("List all EC2 instances in the production account", registry)
    expect(plan, intent="list", types=["ec2:instance"], accounts=[PROD])
    assert plan.summary == "list EC2 instances in production"


def test_s3_buckets_across_all_accounts(registry):
    plan = planned("Show me S3 buckets across all accounts", registry)
    expect(plan, intent="list", types=["s3:bucket"], accounts=WORKLOAD)


def test_lambda_functions_in_staging(registry):
    plan = planned("What Lambda functions exist in staging?", registry)
    expect(plan, intent="list", types=["lambda:function"], accounts=[STAGING])


def test_describe_eks_clusters_by_account_id(registry):
    plan = planned("Describe EKS clusters in account 222222222222", registry)
    expect(plan, intent="describe", types=["eks:cluster"], accounts=[PROD])


def test_count_running_rds_in_each_account(registry):
    plan = planned("How many RDS instances are running in each account?", registry)
    expect(
        plan,
        intent="count",
        types=["rds:db-instance"],
        accounts=WORKLOAD,
        states=["available"],
        group="account",
    )
    assert plan.summary == (
        "count of available RDS instances in production, staging, development, grouped by account"
    )


# ----- paraphrases and combinations -----

EC2, S3, RDS, LAMBDA = "ec2:instance", "s3:bucket", "rds:db-instance", "lambda:function"
ECS, EKS, SERVICE, NODEGROUP = "ecs:cluster", "eks:cluster", "ecs:service", "eks:nodegroup"
VOLUME, EIP, TABLE, VPC = "ec2:volume", "ec2:elastic-ip", "dynamodb:table", "ec2:vpc"
SG, STACK, ROLE = "ec2:security-group", "cloudformation:stack", "iam:role"

PARAPHRASES: list[tuple[str, dict[str, Any]]] = [
    # the five, reworded
    ("list the VMs in prod", dict(intent="list", types=[EC2], accounts=[PROD])),
    ("which buckets do we have?", dict(intent="list", types=[S3], accounts=WORKLOAD)),
    (
        "count running databases per account",
        dict(intent="count", types=[RDS], accounts=WORKLOAD, states=["available"], group="account"),
    ),
    ("show me lambdas in stage", dict(intent="list", types=[LAMBDA], accounts=[STAGING])),
    ("k8s clusters in 222222222222 details", dict(intent="describe", types=[EKS], accounts=[PROD])),
    (
        "Give me every server we run in production",
        dict(intent="list", types=[EC2], accounts=[PROD]),
    ),
    ("s3 buckets in all of our accounts", dict(intent="list", types=[S3], accounts=WORKLOAD)),
    (
        "Tell me about the Kubernetes clusters in the prod account",
        dict(intent="describe", types=[EKS], accounts=[PROD]),
    ),
    (
        "number of running DB instances for each account",
        dict(intent="count", types=[RDS], accounts=WORKLOAD, states=["available"], group="account"),
    ),
    (
        "What serverless functions are deployed to the staging environment?",
        dict(intent="list", types=[LAMBDA], accounts=[STAGING]),
    ),
    # resource synonyms
    ("display all virtual machines in dev", dict(intent="list", types=[EC2], accounts=[DEV])),
    ("find boxes in development", dict(intent="list", types=[EC2], accounts=[DEV])),
    ("list hosts in the staging account", dict(intent="list", types=[EC2], accounts=[STAGING])),
    ("enumerate storage buckets in prod", dict(intent="list", types=[S3], accounts=[PROD])),
    ("list postgres instances in prod", dict(intent="list", types=[RDS], accounts=[PROD])),
    ("show the mysql databases in dev", dict(intent="list", types=[RDS], accounts=[DEV])),
    ("ECS clusters in staging", dict(intent="list", types=[ECS], accounts=[STAGING])),
    ("list container clusters everywhere", dict(intent="list", types=[ECS], accounts=WORKLOAD)),
    ("what ECS services run in prod?", dict(intent="list", types=[SERVICE], accounts=[PROD])),
    ("list the EKS nodegroups in dev", dict(intent="list", types=[NODEGROUP], accounts=[DEV])),
    (
        "how many worker node groups are there in production?",
        dict(intent="count", types=[NODEGROUP], accounts=[PROD]),
    ),
    (
        "which DynamoDB tables exist in staging?",
        dict(intent="list", types=[TABLE], accounts=[STAGING]),
    ),
    ("dynamo tables in prod", dict(intent="list", types=[TABLE], accounts=[PROD])),
    ("list the VPCs in dev", dict(intent="list", types=[VPC], accounts=[DEV])),
    ("show cfn stacks in staging", dict(intent="list", types=[STACK], accounts=[STAGING])),
    (
        "list IAM roles in the central account",
        dict(intent="list", types=[ROLE], accounts=[CENTRAL]),
    ),
    ("what roles exist in ops?", dict(intent="list", types=[ROLE], accounts=[CENTRAL])),
    (
        "count the SGs in each account",
        dict(intent="count", types=[SG], accounts=WORKLOAD, group="account"),
    ),
    # conditions
    (
        "list unattached EBS volumes in dev",
        dict(intent="list", types=[VOLUME], accounts=[DEV], conditions=["unattached"]),
    ),
    (
        "are there any disks not attached to anything in staging?",
        dict(intent="list", types=[VOLUME], accounts=[STAGING], conditions=["unattached"]),
    ),
    (
        "find unused elastic IPs across all accounts",
        dict(intent="list", types=[EIP], accounts=WORKLOAD, conditions=["unassociated"]),
    ),
    (
        "idle EIPs in prod",
        dict(intent="list", types=[EIP], accounts=[PROD], conditions=["unassociated"]),
    ),
    (
        "which security groups are open to 0.0.0.0/0?",
        dict(intent="list", types=[SG], accounts=WORKLOAD, conditions=["open-to-world"]),
    ),
    (
        "security groups open to the world in prod",
        dict(intent="list", types=[SG], accounts=[PROD], conditions=["open-to-world"]),
    ),
    (
        "how many firewall rules are open to the internet per account?",
        dict(
            intent="count",
            types=[SG],
            accounts=WORKLOAD,
            conditions=["open-to-world"],
            group="account",
        ),
    ),
    (
        "list publicly open SGs in staging",
        dict(intent="list", types=[SG], accounts=[STAGING], conditions=["open-to-world"]),
    ),
    # states, mapped per type
    (
        "list stopped instances in dev",
        dict(intent="list", types=[EC2], accounts=[DEV], states=["stopped"]),
    ),
    (
        "which EC2 instances are running in prod right now?",
        dict(intent="list", types=[EC2], accounts=[PROD], states=["running"]),
    ),
    (
        "show instances that were terminated",
        dict(intent="list", types=[EC2], accounts=WORKLOAD, states=["terminated"]),
    ),
    (
        "any pending instances in staging?",
        dict(intent="list", types=[EC2], accounts=[STAGING], states=["pending"]),
    ),
    (
        "list databases that are stopped",
        dict(intent="list", types=[RDS], accounts=WORKLOAD, states=["stopped"]),
    ),
    (
        "how many available RDS instances in prod",
        dict(intent="count", types=[RDS], accounts=[PROD], states=["available"]),
    ),
    (
        "active EKS clusters in dev",
        dict(intent="list", types=[EKS], accounts=[DEV], states=["active"]),
    ),
    (
        "list failed stacks in staging",
        dict(
            intent="list",
            types=[STACK],
            accounts=[STAGING],
            states=[s for s in TYPE_STATES[STACK] if s.endswith("_failed")],
        ),
    ),
    (
        "list instances that are not running in prod",
        dict(
            intent="list",
            types=[EC2],
            accounts=[PROD],
            states=["pending", "shutting-down", "terminated", "stopping", "stopped"],
        ),
    ),
    (
        "show running or stopping instances",
        dict(intent="list", types=[EC2], accounts=WORKLOAD, states=["running", "stopping"]),
    ),
    (
        "list shut down servers in staging",
        dict(intent="list", types=[EC2], accounts=[STAGING], states=["stopped"]),
    ),
    (
        "What Lambda functions are available in staging?",
        dict(intent="list", types=[LAMBDA], accounts=[STAGING]),
    ),
    # tags and names
    (
        "list instances tagged team=payments",
        dict(intent="list", types=[EC2], accounts=WORKLOAD, tags={"team": "payments"}),
    ),
    (
        "buckets with tag team:payments in prod",
        dict(intent="list", types=[S3], accounts=[PROD], tags={"team": "payments"}),
    ),
    (
        "lambdas owned by team payments",
        dict(intent="list", types=[LAMBDA], accounts=WORKLOAD, tags={"team": "payments"}),
    ),
    (
        "instances tagged Environment=prod",
        dict(intent="list", types=[EC2], accounts=WORKLOAD, tags={"Environment": "prod"}),
    ),
    (
        "databases where team is payments",
        dict(intent="list", types=[RDS], accounts=WORKLOAD, tags={"team": "payments"}),
    ),
    (
        "show the payments team's functions in staging",
        dict(intent="list", types=[LAMBDA], accounts=[STAGING], tags={"team": "payments"}),
    ),
    ("list instances named web", dict(intent="list", types=[EC2], accounts=WORKLOAD, name="web")),
    (
        "instances with web in the name in prod",
        dict(intent="list", types=[EC2], accounts=[PROD], name="web"),
    ),
    (
        "functions whose name contains api",
        dict(intent="list", types=[LAMBDA], accounts=WORKLOAD, name="api"),
    ),
    ("lambdas called api-*", dict(intent="list", types=[LAMBDA], accounts=WORKLOAD, name="api-")),
    (
        "count running instances tagged team=payments in prod",
        dict(
            intent="count",
            types=[EC2],
            accounts=[PROD],
            states=["running"],
            tags={"team": "payments"},
        ),
    ),
    # describe, with ids
    (
        "describe instance i-0abc123def4567890",
        dict(intent="describe", types=[EC2], accounts=WORKLOAD, ids=["i-0abc123def4567890"]),
    ),
    (
        "describe the EKS cluster prod-main",
        dict(intent="describe", types=[EKS], accounts=WORKLOAD, ids=["prod-main"]),
    ),
    (
        "details of the lambda function checkout-api in prod",
        dict(intent="describe", types=[LAMBDA], accounts=[PROD], ids=["checkout-api"]),
    ),
    (
        "info on vol-0123abcd",
        dict(intent="describe", types=[VOLUME], accounts=WORKLOAD, ids=["vol-0123abcd"]),
    ),
    # accounts: several, exclusions, ids, central
    (
        "EC2 instances in prod and staging",
        dict(intent="list", types=[EC2], accounts=[PROD, STAGING]),
    ),
    ("buckets in prod, staging", dict(intent="list", types=[S3], accounts=[PROD, STAGING])),
    (
        "instances in all accounts except development",
        dict(intent="list", types=[EC2], accounts=[PROD, STAGING]),
    ),
    (
        "list lambdas in all accounts but dev",
        dict(intent="list", types=[LAMBDA], accounts=[PROD, STAGING]),
    ),
    ("databases excluding staging", dict(intent="list", types=[RDS], accounts=[PROD, DEV])),
    (
        "volumes everywhere other than prod",
        dict(intent="list", types=[VOLUME], accounts=[STAGING, DEV]),
    ),
    ("list non-production instances", dict(intent="list", types=[EC2], accounts=[STAGING, DEV])),
    (
        "instances in 333333333333 and 444444444444",
        dict(intent="list", types=[EC2], accounts=[STAGING, DEV]),
    ),
    ("tables across the organisation", dict(intent="list", types=[TABLE], accounts=WORKLOAD)),
    (
        "buckets in every account including central",
        dict(intent="list", types=[S3], accounts=[CENTRAL, *WORKLOAD]),
    ),
    # regions
    (
        "instances in us-west-2",
        dict(intent="list", types=[EC2], accounts=WORKLOAD, regions=["us-west-2"]),
    ),
    (
        "lambdas in Oregon and N. Virginia",
        dict(intent="list", types=[LAMBDA], accounts=WORKLOAD, regions=["us-west-2", "us-east-1"]),
    ),
    (
        "buckets in São Paulo",
        dict(intent="list", types=[S3], accounts=WORKLOAD, regions=["sa-east-1"]),
    ),
    (
        "prod databases in Frankfurt or Ireland",
        dict(intent="list", types=[RDS], accounts=[PROD], regions=["eu-central-1", "eu-west-1"]),
    ),
    (
        "EKS clusters in eu-west-1 in staging",
        dict(intent="list", types=[EKS], accounts=[STAGING], regions=["eu-west-1"]),
    ),
    ("VPCs in every region", dict(intent="list", types=[VPC], accounts=WORKLOAD)),
    (
        "stacks in US East (N. Virginia)",
        dict(intent="list", types=[STACK], accounts=WORKLOAD, regions=["us-east-1"]),
    ),
    (
        "count instances in each region",
        dict(intent="count", types=[EC2], accounts=WORKLOAD, group="region"),
    ),
    (
        "number of lambdas in staging broken down by region",
        dict(intent="count", types=[LAMBDA], accounts=[STAGING], group="region"),
    ),
    # several resource types at once
    ("EC2 and RDS in prod", dict(intent="list", types=[EC2, RDS], accounts=[PROD])),
    (
        "buckets and functions across all accounts",
        dict(intent="list", types=[S3, LAMBDA], accounts=WORKLOAD),
    ),
    (
        "how many running EC2 and RDS instances per account",
        dict(
            intent="count",
            types=[EC2, RDS],
            accounts=WORKLOAD,
            group="account",
            states={EC2: ["running"], RDS: ["available"]},
        ),
    ),
    ("list ECS and EKS clusters in dev", dict(intent="list", types=[ECS, EKS], accounts=[DEV])),
    (
        "show buckets, tables and roles in staging",
        dict(intent="list", types=[S3, TABLE, ROLE], accounts=[STAGING]),
    ),
    (
        "how many running instances in prod vs staging?",
        dict(
            intent="count",
            types=[EC2],
            accounts=[PROD, STAGING],
            states=["running"],
            group="account",
        ),
    ),
    (
        "list lambdas but only the active ones",
        dict(intent="list", types=[LAMBDA], accounts=WORKLOAD, states=["active"]),
    ),
    (
        "list ec2 instances w/ tag team=payments",
        dict(intent="list", types=[EC2], accounts=WORKLOAD, tags={"team": "payments"}),
    ),
    # context decides an ambiguous noun
    (
        "list ECS services and their clusters in prod",
        dict(intent="list", types=[SERVICE, ECS], accounts=[PROD]),
    ),
    # typos, case and punctuation
    ("LIST EC2 INSTANCES IN PROD!!!", dict(intent="list", types=[EC2], accounts=[PROD])),
    ("list instnaces in prodution", dict(intent="list", types=[EC2], accounts=[PROD])),
    ("instances in prod/staging", dict(intent="list", types=[EC2], accounts=[PROD, STAGING])),
]


@pytest.mark.parametrize(("question", "want"), PARAPHRASES, ids=[q for q, _ in PARAPHRASES])
def test_paraphrases(registry, question, want):
    expect(planned(question, registry), **want)


# ----- children scoped by their parents' type -----

CHILD_IN_PARENTS: list[tuple[str, dict[str, Any]]] = [
    (
        "display every nodegroup of the production Kubernetes clusters",
        dict(intent="list", types=[NODEGROUP], accounts=[PROD]),
    ),
    (
        "which services run inside the staging ECS clusters?",
        dict(intent="list", types=[SERVICE], accounts=[STAGING]),
    ),
    (
        "enumerate worker groups throughout the k8s clusters",
        dict(intent="list", types=[NODEGROUP], accounts=WORKLOAD),
    ),
    (
        "how many ECS services run on our ECS clusters in dev?",
        dict(intent="count", types=[SERVICE], accounts=[DEV]),
    ),
    (
        "node groups belonging to the Kubernetes clusters in staging",
        dict(intent="list", types=[NODEGROUP], accounts=[STAGING]),
    ),
    ("EKS cluster node groups in dev", dict(intent="list", types=[NODEGROUP], accounts=[DEV])),
    ("the prod ECS clusters' services", dict(intent="list", types=[SERVICE], accounts=[PROD])),
    (
        "node groups of the prod and staging EKS clusters",
        dict(intent="list", types=[NODEGROUP], accounts=[PROD, STAGING]),
    ),
    (
        "how many node groups do the EKS clusters in staging have?",
        dict(intent="count", types=[NODEGROUP], accounts=[STAGING]),
    ),
    (
        "which node groups are degraded across the EKS clusters in prod?",
        dict(intent="list", types=[NODEGROUP], accounts=[PROD], states=["degraded"]),
    ),
    (
        "list the services in each ECS cluster in prod",
        dict(intent="list", types=[SERVICE], accounts=[PROD]),
    ),
    (
        "count node groups of all EKS clusters per account",
        dict(intent="count", types=[NODEGROUP], accounts=WORKLOAD, group="account"),
    ),
]


@pytest.mark.parametrize(
    ("question", "want"), CHILD_IN_PARENTS, ids=[q for q, _ in CHILD_IN_PARENTS]
)
def test_children_of_every_parent_need_no_parent_query(registry, question, want):
    plan = planned(question, registry)
    expect(plan, **want)
    parent = RESOURCE_TYPES[ECS if want["types"] == [SERVICE] else EKS][0]
    assert f"in every {parent}" in plan.summary


@pytest.mark.parametrize(
    ("question", "says"),
    [
        # a named parent or one in particular
        ("node groups in the EKS cluster named prod-main", "a particular EKS cluster"),
        ("ECS services in ECS cluster payments-api", "a particular ECS cluster"),
        ("list the node groups in this EKS cluster", "a particular EKS cluster"),
        # parents chosen by a filter: the plan has no parent filter
        ("node groups of active EKS clusters", "what their EKS clusters are"),
        ("services in ECS clusters tagged team=payments", "what their ECS clusters are"),
        ("node groups in EKS clusters that are updating", "what their EKS clusters are"),
        # a number per parent is a grouping the plan does not have
        ("how many node groups per EKS cluster?", "not by EKS cluster"),
        ("count the ECS services in each ECS cluster", "not by ECS cluster"),
        ("how many services does each ECS cluster in prod have", "not by ECS cluster"),
        ("count volumes by instance", "not by EC2 instance"),
        # a type that does not live in the other one
        ("list buckets across our k8s clusters", "inside or attached to EKS clusters"),
        ("volumes in stopped instances", "inside or attached to EC2 instances"),
    ],
)
def test_parents_that_a_plan_cannot_express_are_refused(registry, question, says):
    refusal = refused(question, registry)
    assert refusal.kind == "unsupported", refusal.message
    assert says in refusal.message


def test_children_of_the_parents_from_the_last_turn(registry):
    first = planned("list EKS clusters in prod", registry)
    expect(
        planned("and the node groups of those clusters?", registry, first),
        intent="list",
        types=[NODEGROUP],
        accounts=[PROD],
    )
    # "those" were filtered clusters: their node groups are not all node groups
    first = planned("list active EKS clusters in prod", registry)
    assert refused("and the node groups of those clusters?", registry, first).kind == (
        "unsupported"
    )


def test_a_second_noun_after_a_place_is_not_placed_in_it(registry):
    expect(
        planned("instances in prod and buckets in staging", registry),
        intent="list",
        types=[EC2, S3],
        accounts=[PROD, STAGING],
    )


def test_no_account_named_means_all_workload_accounts_and_the_summary_says_so(registry):
    plan = planned("which buckets do we have?", registry)
    assert plan.accounts == WORKLOAD
    assert "no account named" in plan.summary


def test_the_central_account_only_when_named(registry):
    assert CENTRAL not in planned("list roles in every account", registry).accounts
    assert planned("list roles in the central account", registry).accounts == [CENTRAL]
    assert planned("list roles in account 111111111111", registry).accounts == [CENTRAL]


def test_a_typo_is_corrected_out_loud(registry):
    plan = planned("list instnaces in prod", registry)
    assert "'instnaces'" in plan.summary


def test_accounts_come_from_the_registry_file_not_a_fixed_list():
    registry = parse_registry(
        {
            "accounts": [
                {
                    "id": "111111111111",
                    "name": "Shared Services",
                    "environment": "operations",
                    "role": "central",
                    "aliases": ["shared"],
                },
                {
                    "id": "555555555555",
                    "name": "Payments Production",
                    "environment": "production",
                    "aliases": ["payments-prod", "pay prod"],
                },
                {"id": "666666666666", "name": "Data Lake", "environment": "analytics"},
                {"id": "777777777777", "name": "QA", "environment": "qa"},
            ]
        }
    )
    cases = {
        "list buckets in payments-prod": ["555555555555"],
        "databases in pay prod": ["555555555555"],
        "instances in the data lake account": ["666666666666"],
        "functions in qa": ["777777777777"],
        "roles in the shared account": ["111111111111"],
        "instances in prod": ["555555555555"],
        "buckets across all accounts": ["555555555555", "666666666666", "777777777777"],
        "tables everywhere except qa": ["555555555555", "666666666666"],
    }
    for question, accounts in cases.items():
        assert planned(question, registry).accounts == accounts, question
    assert refused("instances in staging", registry).kind == "unknown_account"


# ----- follow-ups -----


def test_follow_up_with_new_accounts_keeps_the_question(registry):
    first = planned("How many RDS instances are running in each account?", registry)
    plan = planned("and in staging?", registry, first)
    expect(
        plan, intent="count", types=[RDS], accounts=[STAGING], states=["available"], group="account"
    )
    plan = planned("what about prod and dev?", registry, plan)
    assert plan.accounts == [PROD, DEV]


def test_follow_up_narrows_by_state(registry):
    first = planned("list EC2 instances in prod", registry)
    expect(
        planned("only the stopped ones", registry, first),
        intent="list",
        types=[EC2],
        accounts=[PROD],
        states=["stopped"],
    )
    expect(
        planned("just the running ones", registry, first),
        intent="list",
        types=[EC2],
        accounts=[PROD],
        states=["running"],
    )


def test_follow_up_with_a_new_resource_type_keeps_accounts_regions_and_filters(registry):
    first = planned("count running instances in staging in Oregon by account", registry)
    plan = planned("what about the databases?", registry, first)
    # "running" carries over through its meaning: available, for RDS.
    expect(
        plan,
        intent="count",
        types=[RDS],
        accounts=[STAGING],
        regions=["us-west-2"],
        states=["available"],
        group="account",
    )
    plan = planned("and Lambda?", registry, plan)
    expect(
        plan,
        intent="count",
        types=[LAMBDA],
        accounts=[STAGING],
        regions=["us-west-2"],
        states=["active"],
        group="account",
    )


def test_follow_up_drops_a_filter_that_does_not_apply_and_says_so(registry):
    first = planned("list stopped instances in dev", registry)
    plan = planned("what about buckets?", registry, first)
    expect(plan, intent="list", types=[S3], accounts=[DEV])
    assert "does not apply" in plan.summary


def test_follow_up_changes_the_intent(registry):
    first = planned("list lambdas in prod", registry)
    expect(planned("how many?", registry, first), intent="count", types=[LAMBDA], accounts=[PROD])
    expect(planned("count them", registry, first), intent="count", types=[LAMBDA], accounts=[PROD])
    expect(
        planned("describe them", registry, first),
        intent="describe",
        types=[LAMBDA],
        accounts=[PROD],
    )


def test_follow_up_changes_region_and_grouping(registry):
    first = planned("how many buckets in each account", registry)
    plan = planned("in Oregon?", registry, first)
    expect(
        plan, intent="count", types=[S3], accounts=WORKLOAD, regions=["us-west-2"], group="account"
    )
    plan = planned("by region", registry, plan)
    assert plan.group_by == "region" and plan.regions == ["us-west-2"]
    plan = planned("and in total?", registry, plan)
    assert plan.group_by is None


def test_follow_up_adds_or_leaves_out(registry):
    first = planned("list volumes in prod", registry)
    assert planned("staging too", registry, first).accounts == [PROD, STAGING]
    assert planned("also include dev", registry, first).accounts == [PROD, DEV]
    everything = planned("and across all accounts?", registry, first)
    assert planned("but not staging", registry, everything).accounts == [PROD, DEV]
    plan = planned("and the EIPs as well", registry, first)
    assert [q.resource_type for q in plan.queries] == [VOLUME, EIP]


def test_follow_up_to_the_other_accounts(registry):
    first = planned("how many lambdas in prod", registry)
    expect(
        planned("what about the other accounts?", registry, first),
        intent="count",
        types=[LAMBDA],
        accounts=[STAGING, DEV],
    )
    expect(
        planned("switch to staging", registry, first),
        intent="count",
        types=[LAMBDA],
        accounts=[STAGING],
    )
    expect(
        planned("can you break that down by region?", registry, first),
        intent="count",
        types=[LAMBDA],
        accounts=[PROD],
        group="region",
    )


def test_which_accounts_answers_per_account(registry):
    plan = planned("Which accounts have stopped instances?", registry)
    expect(plan, intent="list", types=[EC2], accounts=WORKLOAD, states=["stopped"], group="account")


def test_follow_up_carries_a_condition_through_its_meaning(registry):
    first = planned("unattached volumes in staging", registry)
    expect(
        planned("and Elastic IPs?", registry, first),
        intent="list",
        types=[EIP],
        accounts=[STAGING],
        conditions=["unassociated"],
    )


def test_follow_up_settles_an_ambiguous_noun_from_the_last_turn(registry):
    first = planned("list ECS services in prod", registry)
    expect(
        planned("and the clusters?", registry, first), intent="list", types=[ECS], accounts=[PROD]
    )
    first = planned("list k8s node groups in dev", registry)
    expect(
        planned("what about clusters?", registry, first), intent="list", types=[EKS], accounts=[DEV]
    )


def test_a_full_question_after_a_plan_starts_afresh(registry):
    first = planned("list instances in prod", registry)
    plan = planned("How many buckets are there in each account?", registry, first)
    expect(plan, intent="count", types=[S3], accounts=WORKLOAD, group="account")


@pytest.mark.parametrize(
    "question",
    [
        "and in staging?",
        "what about staging?",
        "only the stopped ones",
        "how many?",
        "count them",
        "in Oregon?",
        "by region",
    ],
)
def test_a_follow_up_without_a_previous_plan_asks_for_a_full_question(registry, question):
    refusal = refused(question, registry)
    assert refusal.kind == "unsupported"
    assert "full question" in refusal.message


# ----- read-only -----


@pytest.mark.parametrize(
    "question",
    [
        "terminate all EC2 instances in staging",
        "delete the buckets",
        "please stop the dev servers",
        "can you reboot prod boxes",
        "Stop the dev servers",
        "shut down the staging instances",
        "could you start the stopped instances in dev?",
        "go ahead and remove the unattached volumes",
        "release the unused elastic IPs in prod",
        "create a bucket in prod",
        "launch 3 new instances in staging",
        "scale the payments ECS service to zero",
        "tag the prod instances with team=payments",
        "untag i-0abc1234",
        "enable deletion protection on the prod databases",
        "kill all lambdas in dev",
        "restart the EKS node groups",
        "update the cloudformation stacks in staging",
        "list the idle volumes and delete them",
        "Show me EC2 instances in dev. Terminate the stopped ones.",
        "which instances should I stop?",
        "I want all dev instances stopped",
        "open port 22 on the prod security groups",
        "detach the volume vol-0123abcd",
        "make sure the staging databases are stopped",
        "let's spin up a new cluster",
    ],
)
def test_changes_are_refused_as_read_only(registry, question):
    refusal = refused(question, registry)
    assert refusal.kind == "read_only", refusal.message
    assert refusal.message.startswith("opsagent is read-only: ")


def test_read_only_refusal_offers_the_read_it_implies(registry):
    refusal = refused("terminate all EC2 instances in staging", registry)
    assert "list EC2 instances in staging" in refusal.message


@pytest.mark.parametrize(
    ("question", "states"),
    [
        ("list stopped instances", ["stopped"]),
        ("show instances that were terminated", ["terminated"]),
        ("how many instances are stopping right now?", ["stopping"]),
        ("list the shut down boxes", ["stopped"]),
        ("which instances are shutting down?", ["shutting-down"]),
        ("instances stopped in prod", ["stopped"]),
        ("list instances that were started", ["running"]),
    ],
)
def test_state_words_as_adjectives_are_filters_not_commands(registry, question, states):
    plan = planned(question, registry)
    assert plan.queries[0].states == states


def test_deleted_is_a_state_where_the_type_has_one(registry):
    assert planned("how many deleted stacks are there", registry).queries[0].states == [
        "delete_complete"
    ]
    assert planned("list deleted volumes", registry).queries[0].states == ["deleted"]
    assert refused("how many deleted buckets", registry).kind == "unsupported"


def test_open_is_a_condition_after_a_noun_and_a_change_as_a_verb(registry):
    plan = planned("which security groups are open?", registry)
    assert plan.queries[0].conditions == ["open-to-world"]
    assert refused("open the security group to the world", registry).kind == "read_only"


def test_tag_is_a_filter_after_a_noun_and_a_change_as_a_verb(registry):
    assert planned("instances tag team=payments", registry).queries[0].tags == {"team": "payments"}
    assert refused("tag instances with team=payments", registry).kind == "read_only"


# ----- unknown accounts -----


@pytest.mark.parametrize(
    "question",
    [
        "list instances in 999999999999",
        "list instances in the qa account",
        "buckets in the sandbox environment",
        "functions in account payments",
        "what databases are in uat?",
        "describe arn:aws:eks:us-east-1:555555555555:cluster/main",
    ],
)
def test_an_unknown_account_is_refused_naming_the_known_ones(registry, question):
    refusal = refused(question, registry)
    assert refusal.kind == "unknown_account", refusal.message
    for name in registry.known_names():
        assert name in refusal.message


@pytest.mark.parametrize(
    "question",
    [
        # listed with accounts the registry knows
        "servers in production and preprod",
        "how many databases in staging, dev and qa?",
        "lambdas in uat or dev",
        "count the buckets in prod vs perf by account",
        "list the volumes in prod as well as sandbox",
        # in an account's place, whatever follows
        "which functions exist in sbx-3?",
        "tables in uat in Oregon",
        "list functions in qa that are active",
        # left out of every account
        "volumes everywhere except uat",
        "list roles in all accounts but qa",
        # a word the planner knows as a verb, used as a name
        "how many tables are in the audit account",
    ],
)
def test_a_word_in_an_accounts_place_is_an_unknown_account(registry, question):
    refusal = refused(question, registry)
    assert refusal.kind == "unknown_account", refusal.message
    for name in registry.known_names():
        assert name in refusal.message


def test_every_unknown_account_in_a_list_is_named(registry):
    message = refused("volumes in the perf and loadtest accounts", registry).message
    assert "'perf'" in message and "'loadtest'" in message


def test_an_unknown_account_close_to_a_known_one_gets_a_suggestion(registry):
    refusal = refused("show the instances in the prdo account", registry)
    assert refusal.kind == "unknown_account"
    assert "'prod'" in refusal.message


def test_unknown_accounts_are_named_from_the_registry_in_use():
    registry = parse_registry(
        {
            "accounts": [
                {
                    "id": "111111111111",
                    "name": "Hub",
                    "environment": "operations",
                    "role": "central",
                },
                {
                    "id": "555555555555",
                    "name": "Shop Live",
                    "environment": "production",
                    "aliases": ["shop"],
                },
            ]
        }
    )
    refusal = refused("functions in shop and storefront", registry)
    assert refusal.kind == "unknown_account"
    assert "'storefront'" in refusal.message
    assert "Shop Live (555555555555, production)" in refusal.message


@pytest.mark.parametrize(
    ("question", "says"),
    [
        # region names, whole or in part, and zones
        ("instances in europe", "names no single region"),
        ("buckets in prod and us east", "us-east-1, us-east-2"),
        ("lambdas in eu-west", "eu-west-1"),
        ("list instances in asia pacific", "'asia pacific'"),
        ("instances in us-east-1a", "availability zone"),
        # typos of known words are not names
        ("instances in prdo", "'prod'"),
        ("list databases in prod and dve", "'dev'"),
        # filter words the planner has no filter for (dates, runtimes and platforms it
        # has: tests/unit/test_planner_attributes.py)
        ("lambdas in golang", "'golang'"),
        ("list instances in prod and ubuntu", "'ubuntu'"),
        # a word that starts a noun phrase, or resource words
        ("list instances in prod and web servers", "'web'"),
        ("instances in subnet-0abc1234", "'subnet-0abc1234'"),
        ("buckets in prod and load balancers", "load balancers"),
        # nothing readable at all
        ("zorp blarg in florb", "'zorp'"),
    ],
)
def test_words_that_are_not_account_names_stay_unsupported(registry, question, says):
    refusal = refused(question, registry)
    assert refusal.kind == "unsupported", refusal.message
    assert says.lower() in refusal.message.lower()


# ----- what it cannot answer -----


@pytest.mark.parametrize(
    ("question", "says"),
    [
        ("list clusters in prod", "ECS clusters or EKS clusters"),
        ("list services in dev", "ECS services"),
        ("what's running in prod?", "which kind of resource"),
        ("show me everything in staging", "Which kind of resource"),
        ("list load balancers in prod", "load balancers"),
        ("how many SQS queues do we have", "sqs"),
        ("which instances cost the most?", "cost"),
        ("instances with more than 4 vCPUs", "vcpus"),
        ("count instances by state", "not by state"),
        ("list buckets sorted by size", "sort"),
        ("public buckets in prod", "only for security groups"),
        ("running buckets", "no state to filter on"),
        ("stopped lambdas in dev", "no 'stopped' state"),
        ("instances in eu-west-9", "region 'eu-west-9'"),
        ("list services in the payments ECS cluster", "inside or attached to"),
        ("volumes attached to i-0abc1234", "attached to"),
        ("instances tagged", "key and a value"),
        ("count instances by account and by region", "not both"),
        ("databases owned by alice", "owner"),
        ("EBS volumes with a deprecated runtime", "no 'deprecated runtime'"),
        ("volumes over 100", "with a unit"),
    ],
)
def test_unsupported_questions_say_what_and_what_would_work(registry, question, says):
    refusal = refused(question, registry)
    assert refusal.kind == "unsupported", refusal.message
    assert says.lower() in refusal.message.lower()
    assert "Questions I can answer look like:" in refusal.message


def test_refusal_examples_are_questions_the_planner_answers(registry):
    for rtype in [None, *RESOURCE_TYPES]:
        for question in example_questions(registry, rtype):
            planned(question, registry)


def test_refusal_says_what_it_understood(registry):
    refusal = refused("list instances in prod with more than 4 vCPUs", registry)
    assert "EC2 instances" in refusal.message and "production" in refusal.message
    assert "'vcpus'" in refusal.message.lower()


# ----- the state vocabulary -----


# (That every state a concept maps to is one the type reports is tests/unit/test_catalogue.py's.)


def test_running_means_each_types_serving_state(registry):
    wants = {
        EC2: "running",
        RDS: "available",
        LAMBDA: "active",
        ECS: "active",
        EKS: "active",
        NODEGROUP: "active",
        SERVICE: "active",
        TABLE: "active",
    }
    for rtype, state in wants.items():
        assert CATALOGUE[rtype].state_concepts["running"] == (state,)


def test_aws_state_spellings_are_understood(registry):
    assert planned("stacks in UPDATE_ROLLBACK_COMPLETE", registry).queries[0].states == [
        "update_rollback_complete"
    ]
    assert planned("instances in state=running", registry).queries[0].states == ["running"]


def test_rule_planner_fits_the_graphs_async_planner_slot(registry):
    outcome = asyncio.run(rule_planner("list buckets in prod", registry, None))
    assert isinstance(outcome, Plan) and outcome.accounts == [PROD]
