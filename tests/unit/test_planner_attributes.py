"""The rule planner on attribute questions (issue 13): filters on what a type reports,
tag keys, times, rankings, groupings by attribute and totals, as CONVENTIONS.md plans them."""

from __future__ import annotations

from datetime import date

import pytest

from opsagent.graph.models import Plan, Refusal
from opsagent.graph.planner import attribute_patterns, plan_question
from opsagent.registry import Registry, load_registry
from tests.conftest import DEMO_REGISTRY

ALL = ["222222222222", "333333333333", "444444444444"]


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry(DEMO_REGISTRY)


@pytest.fixture(autouse=True)
def fixed_today(monkeypatch):
    monkeypatch.setattr(attribute_patterns, "today", lambda: date(2026, 12, 7))


def planned(question: str, registry: Registry, previous: Plan | None = None) -> Plan:
    outcome = plan_question(question, registry, previous)
    assert isinstance(outcome, Plan), f"{question!r} was refused: {outcome.message}"
    return outcome


def filters(plan: Plan) -> list[tuple]:
    return sorted(
        (f.attribute, f.op, tuple(f.value) if isinstance(f.value, list) else f.value)
        for f in plan.queries[0].filters
    )


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("m5 instances", [("instance_family", "eq", "m5")]),
        ("instances in the m5 family", [("instance_family", "eq", "m5")]),
        ("m5.large instances", [("instance_type", "eq", "m5.large")]),
        ("t3.micro or t3.small instances", [("instance_type", "eq", ("t3.micro", "t3.small"))]),
        ("windows instances", [("platform", "eq", "windows")]),
        ("instances running linux", [("platform", "eq", "linux")]),
        ("postgres databases", [("engine", "eq", "postgres")]),
        ("aurora postgres databases", [("engine", "eq", "aurora-postgresql")]),
        ("postgres or mysql databases", [("engine", "eq", ("postgres", "mysql"))]),
        ("gp3 volumes", [("volume_type", "eq", "gp3")]),
        ("buckets with block public access enabled", [("public_access_blocked", "eq", True)]),
        (
            "functions last modified more than 90 days ago",
            [("last_modified", "older_than_days", 90)],
        ),
        (
            "postgres 14 databases",
            [("engine", "eq", "postgres"), ("engine_version", "prefix", "14")],
        ),
        (
            "MySQL 8.0 databases",
            [("engine", "eq", "mysql"), ("engine_version", "prefix", "8.0")],
        ),
        ("db.t3.medium databases", [("class", "eq", "db.t3.medium")]),
        ("publicly accessible RDS", [("publicly_accessible", "eq", True)]),
        ("public databases", [("publicly_accessible", "eq", True)]),
        ("unencrypted databases", [("storage_encrypted", "eq", False)]),
        ("encrypted volumes", [("encrypted", "eq", True)]),
        ("multi-AZ databases", [("multi_az", "eq", True)]),
        ("single-AZ databases", [("multi_az", "eq", False)]),
        ("databases that are not multi-AZ", [("multi_az", "eq", False)]),
        ("buckets without a public access block", [("public_access_blocked", "eq", False)]),
        ("buckets with a public access block", [("public_access_blocked", "eq", True)]),
        ("unencrypted buckets", [("encryption", "eq", "none")]),
        ("buckets without default encryption", [("encryption", "eq", "none")]),
        ("buckets encrypted with KMS", [("encryption", "eq", "aws:kms")]),
        ("functions still on a deprecated runtime", [("runtime_deprecated", "eq", True)]),
        ("lambdas with deprecated runtimes", [("runtime_deprecated", "eq", True)]),
        (
            "which EKS clusters run an outdated Kubernetes version",
            [("version_outdated", "eq", True)],
        ),
        ("EKS clusters out of standard support", [("version_outdated", "eq", True)]),
        ("python3.8 functions", [("runtime", "eq", "python3.8")]),
        ("functions on python 3.8", [("runtime", "eq", "python3.8")]),
        ("node 16 functions", [("runtime", "eq", "nodejs16.x")]),
        ("python functions", [("runtime", "prefix", "python")]),
        ("node functions", [("runtime", "prefix", "nodejs")]),
        ("databases with more than 100 GB of storage", [("storage_gb", "gt", 100)]),
        ("functions with at least 1 GB of memory", [("memory_mb", "gte", 1024)]),
        ("volumes under 10 GB", [("size_gb", "lt", 10)]),
        ("volumes larger than 1 TB", [("size_gb", "gt", 1024)]),
        ("100 GB volumes", [("size_gb", "eq", 100)]),
        ("volumes between 100 and 500 GB", [("size_gb", "gte", 100), ("size_gb", "lte", 500)]),
        ("EKS clusters below 1.30", [("version", "lt", "1.30")]),
        ("EKS clusters older than 1.30", [("version", "lt", "1.30")]),
        ("EKS clusters on 1.29", [("version", "eq", "1.29")]),
        ("EKS clusters on 1.30 or newer", [("version", "gte", "1.30")]),
        ("instances launched in the last 7 days", [("launch_time", "within_days", 7)]),
        ("volumes created in the past week", [("created", "within_days", 7)]),
        ("buckets created in the past month", [("created", "within_days", 30)]),
        ("instances launched in the last 24 hours", [("launch_time", "within_days", 1)]),
        ("volumes older than 90 days", [("created", "older_than_days", 90)]),
        ("volumes more than 90 days old", [("created", "older_than_days", 90)]),
        ("functions not modified in 90 days", [("last_modified", "older_than_days", 90)]),
        ("instances older than a year", [("launch_time", "older_than_days", 365)]),
        ("buckets created this month", [("created", "on_or_after", "2026-12-01")]),
        ("clusters on EKS created this year", [("created", "on_or_after", "2026-01-01")]),
        ("databases created since October 1", [("created", "on_or_after", "2026-10-01")]),
        ("buckets created since December 25", [("created", "on_or_after", "2025-12-25")]),
        ("buckets created before 2026-01-01", [("created", "before", "2026-01-01")]),
    ],
)
def test_attribute_filters(registry, question, expected):
    assert filters(planned(question, registry)) == sorted(expected)


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("instances without an owner tag", {"missing_tags": ["owner"]}),
        ("instances missing owner", {"missing_tags": ["owner"]}),
        ("instances with no owner tag", {"missing_tags": ["owner"]}),
        ("instances with an owner tag", {"tag_keys": ["owner"]}),
        ("buckets that have a cost-center tag", {"tag_keys": ["cost-center"]}),
        ("untagged volumes", {"untagged": True}),
        ("volumes with no tags", {"untagged": True}),
        ("instances tagged env but not team", {"tag_keys": ["env"], "missing_tags": ["team"]}),
        ("instances tagged team=web", {"tags": {"team": "web"}}),
    ],
)
def test_tag_keys(registry, question, expected):
    query = planned(question, registry).queries[0]
    for field, value in expected.items():
        assert getattr(query, field) == value


@pytest.mark.parametrize(
    ("question", "sort_by", "descending", "limit"),
    [
        ("top 5 largest volumes", "size_gb", True, 5),
        ("5 biggest volumes", "size_gb", True, 5),
        ("the largest volume", "size_gb", True, 1),
        ("oldest instance", "launch_time", False, 1),
        ("the 3 oldest instances", "launch_time", False, 3),
        ("the newest bucket", "created", True, 1),
        ("volumes by size, largest first", "size_gb", True, None),
        ("top 10 volumes by size", "size_gb", True, 10),
        ("the function with the most memory", "memory_mb", True, 1),
    ],
)
def test_rankings(registry, question, sort_by, descending, limit):
    query = planned(question, registry).queries[0]
    assert (query.sort_by, query.descending, query.limit) == (sort_by, descending, limit)
    assert query.intent == "list"


@pytest.mark.parametrize(
    ("question", "intent", "group_by", "query_group_by", "rank", "total"),
    [
        ("which account has the most stopped instances", "count", "account", None, "most", None),
        ("which account has the fewest buckets", "count", "account", None, "fewest", None),
        ("which region has the most running instances", "count", "region", None, "most", None),
        ("instances by type", "count", None, "instance_type", None, None),
        ("how many instances of each type", "count", None, "instance_type", None, None),
        ("count instances per instance type", "count", None, "instance_type", None, None),
        ("list instances by type", "list", None, "instance_type", None, None),
        ("functions per runtime", "count", None, "runtime", None, None),
        ("databases by engine", "count", None, "engine", None, None),
        ("which runtime is most common", "count", None, "runtime", "most", None),
        ("total EBS storage", "count", None, None, None, "size_gb"),
        ("total EBS storage per account", "count", "account", None, None, "size_gb"),
        ("how much EBS storage do we have", "count", None, None, None, "size_gb"),
        ("total memory of Lambda functions", "count", None, None, None, "memory_mb"),
        ("total allocated RDS storage", "count", None, None, None, "storage_gb"),
    ],
)
def test_counts_groups_and_totals(
    registry, question, intent, group_by, query_group_by, rank, total
):
    plan = planned(question, registry)
    query = plan.queries[0]
    assert (query.intent, plan.group_by, query.group_by, plan.rank, query.total) == (
        intent,
        group_by,
        query_group_by,
        rank,
        total,
    )
    assert plan.accounts == ALL


@pytest.mark.parametrize(
    ("question", "says"),
    [
        ("EBS volumes with a deprecated runtime", "EBS volumes have no 'deprecated runtime'"),
        ("windows buckets", "S3 buckets have no 'windows'"),
        ("volumes over 100", "with a unit"),
        ("instances with more than 4 vCPUs", "vcpus"),
        ("the largest EC2 instance", "rank"),
        ("total storage of S3 buckets", "total"),
        ("buckets by runtime", "group"),
        ("instances by state", "not by state"),
        ("the most", "the most of what"),
    ],
)
def test_attribute_refusals_say_what_was_not_understood(registry, question, says):
    refusal = plan_question(question, registry, None)
    assert isinstance(refusal, Refusal), refusal.summary
    assert refusal.kind == "unsupported"
    assert says.lower() in refusal.message.lower()


def test_follow_ups_carry_and_merge_attributes(registry):
    plan = planned("m5 instances in prod", registry)
    plan = planned("what about staging?", registry, plan)
    assert plan.accounts == ["333333333333"]
    assert filters(plan) == [("instance_family", "eq", "m5")]
    plan = planned("only the windows ones", registry, plan)
    assert filters(plan) == [("instance_family", "eq", "m5"), ("platform", "eq", "windows")]
    plan = planned("and the oldest 3?", registry, plan)
    query = plan.queries[0]
    assert (query.sort_by, query.descending, query.limit) == ("launch_time", False, 3)
    assert len(query.filters) == 2


def test_follow_ups_translate_attributes_to_a_new_type(registry):
    plan = planned("instances launched in the last 7 days", registry)
    plan = planned("what about buckets?", registry, plan)
    assert filters(plan) == [("created", "within_days", 7)]
    plan = planned("unencrypted volumes", registry)
    plan = planned("and databases?", registry, plan)
    assert filters(plan) == [("storage_encrypted", "eq", False)]
    plan = planned("m5 instances", registry)
    plan = planned("what about databases?", registry, plan)
    assert plan.queries[0].filters == []
    assert "does not apply" in plan.summary


def test_follow_ups_keep_a_ranking_of_groups(registry):
    plan = planned("which account has the most stopped instances", registry)
    plan = planned("what about running ones?", registry, plan)
    assert (plan.group_by, plan.rank, plan.queries[0].states) == ("account", "most", ["running"])


def test_a_new_value_replaces_the_old_one_on_its_attribute(registry):
    plan = planned("windows instances", registry)
    plan = planned("and the linux ones?", registry, plan)
    assert filters(plan) == [("platform", "eq", "linux")]


# ----- wordings of the second held-out set's families -----


def _query(question: str, registry: Registry):
    return planned(question, registry).queries[0]


@pytest.mark.parametrize(
    "question",
    [
        "How much Lambda memory have we allocated in total in dev?",
        "team=data instances that nobody put an owner tag on",
        "how many volumes have we provisioned in prod",
        "which roles are assigned in prod",
        "instances someone configured in dev",
        "list the stacks we set up in staging",
        "volumes attached in prod",
        "functions we deployed in dev",
    ],
)
def test_change_participles_and_relative_clauses_are_reads(registry, question):
    planned(question, registry)


@pytest.mark.parametrize(
    "question",
    [
        "allocate 2 GB more memory to the payments function",
        "put an owner tag on the dev instances",
        "I want more memory allocated to the dev functions",
        "can you set up a new bucket",
        "which instances should we stop",
        "stop the instances we launched yesterday",
        "please configure the dev buckets",
        "assign an owner to the prod volumes",
    ],
)
def test_change_requests_stay_read_only(registry, question):
    refusal = plan_question(question, registry, None)
    assert isinstance(refusal, Refusal), refusal.summary
    assert refusal.kind == "read_only", refusal.message


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("team=data instances that nobody put an owner tag on", {"missing_tags": ["owner"]}),
        ("functions no one has added a team tag to", {"missing_tags": ["team"]}),
        ("eks clusters that DO have a cost-center tag", {"tag_keys": ["cost-center"]}),
        ("instances that don't have an owner tag", {"missing_tags": ["owner"]}),
        ("buckets which do not have a cost-center tag", {"missing_tags": ["cost-center"]}),
        (
            "volumes with neither an owner tag nor a cost-center tag",
            {"missing_tags": ["owner", "cost-center"]},
        ),
        ("volumes with neither owner nor team tags", {"missing_tags": ["owner", "team"]}),
    ],
)
def test_tag_keys_said_other_ways(registry, question, expected):
    query = _query(question, registry)
    for field, value in expected.items():
        assert getattr(query, field) == value


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        (
            "lambdas that nobody has touched in 90 days",
            [("last_modified", "older_than_days", 90)],
        ),
        (
            "functions that haven't been touched for 90 days",
            [("last_modified", "older_than_days", 90)],
        ),
        ("functions not modified in over 90 days", [("last_modified", "older_than_days", 90)]),
        ("functions untouched for 3 months", [("last_modified", "older_than_days", 90)]),
        ("functions not updated since October 1", [("last_modified", "before", "2026-10-01")]),
        (
            "buckets that have no public access block",
            [("public_access_blocked", "eq", False)],
        ),
        ("databases that have no encryption", [("storage_encrypted", "eq", False)]),
        ("buckets that has no default encryption", [("encryption", "eq", "none")]),
        ("any m5s stopped in production", [("instance_family", "eq", "m5")]),
        ("how many t3.micros in dev", [("instance_type", "eq", "t3.micro")]),
        ("unencrypted EBS vols", [("encrypted", "eq", False)]),
    ],
)
def test_negated_times_no_flags_and_plurals_of_values(registry, question, expected):
    assert filters(planned(question, registry)) == sorted(expected)


@pytest.mark.parametrize(
    ("question", "resource_type"),
    [
        ("anything on a deprecated lambda runtime?", "lambda:function"),
        ("anything on an outdated k8s version in prod", "eks:cluster"),
        ("any deprecated runtimes", "lambda:function"),
        ("list fns in dev", "lambda:function"),
        ("how many funcs", "lambda:function"),
        ("list the vols", "ec2:volume"),
        ("count the dbs", "rds:db-instance"),
        ("how many insts in prod", "ec2:instance"),
    ],
)
def test_a_type_named_inside_an_attribute_or_by_a_short_form(registry, question, resource_type):
    assert _query(question, registry).resource_type == resource_type


@pytest.mark.parametrize(
    ("question", "sort_by", "descending", "limit"),
    [
        ("give me the two smallest databases by storage in dev", "storage_gb", False, 2),
        ("the 3 biggest functions by memory", "memory_mb", True, 3),
        ("oldest 5 instances by launch date", "launch_time", False, 5),
    ],
)
def test_by_after_a_ranking_names_what_it_ranks_by(registry, question, sort_by, descending, limit):
    query = _query(question, registry)
    assert (query.sort_by, query.descending, query.limit, query.group_by) == (
        sort_by,
        descending,
        limit,
        None,
    )


@pytest.mark.parametrize(
    ("question", "group_by", "query_group_by", "total"),
    [
        ("S3 buckets grouped by encryption type", None, "encryption", None),
        ("count buckets by encryption", None, "encryption", None),
        ("total EBS GiB per region", "region", None, "size_gb"),
        ("how many TB of RDS storage do we have", None, None, "storage_gb"),
        ("total lambda MB", None, None, "memory_mb"),
    ],
)
def test_groups_by_a_flag_word_and_totals_by_a_unit(
    registry, question, group_by, query_group_by, total
):
    plan = planned(question, registry)
    query = plan.queries[0]
    assert (plan.group_by, query.group_by, query.total, query.filters) == (
        group_by,
        query_group_by,
        total,
        [],
    )


def test_an_aside_is_left_out_and_said(registry):
    plan = planned(
        "Total size of gp2 volumes per account — trying to size a gp3 migration", registry
    )
    assert filters(plan) == [("volume_type", "eq", "gp2")]
    assert plan.queries[0].total == "size_gb" and plan.group_by == "account"
    assert "left out 'trying to size a gp3 migration'" in plan.summary
    plan = planned("anything launched in dev in the last 24 hours? ec2 I mean", registry)
    assert plan.queries[0].resource_type == "ec2:instance"
    assert filters(plan) == [("launch_time", "within_days", 1)]
    assert filters(planned("list unencrypted volumes for the audit", registry)) == [
        ("encrypted", "eq", False)
    ]
    # An aside keeps its accounts, and an unknown word outside one is still reported.
    assert planned("list volumes - need it for the prod report", registry).accounts == [
        "222222222222"
    ]
    refusal = plan_question("list blurfl volumes for the audit", registry, None)
    assert isinstance(refusal, Refusal) and "blurfl" in refusal.message


@pytest.mark.parametrize(
    ("question", "states", "expected"),
    [
        # A state before a value that describes the noun after it is the state, never dropped.
        ("running m5 instances", ["running"], [("instance_family", "eq", "m5")]),
        (
            "running m5 instances in us-east-1 in prod",
            ["running"],
            [("instance_family", "eq", "m5")],
        ),
        ("running windows instances in staging", ["running"], [("platform", "eq", "windows")]),
        ("stopped windows instances", ["stopped"], [("platform", "eq", "windows")]),
        ("running t3.micro instances", ["running"], [("instance_type", "eq", "t3.micro")]),
        ("available postgres databases", ["available"], [("engine", "eq", "postgres")]),
        # After the noun, "running" is the verb: the value is what they run.
        ("instances running windows", [], [("platform", "eq", "windows")]),
        ("EKS clusters running 1.29", [], [("version", "eq", "1.29")]),
        ("running instances on windows", ["running"], [("platform", "eq", "windows")]),
    ],
)
def test_a_state_before_a_value_is_kept(registry, question, states, expected):
    query = _query(question, registry)
    assert query.states == states
    assert filters(planned(question, registry)) == sorted(expected)


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        # Lifecycle said with a verb, or as EOL / end of life.
        ("lambdas on an EOL runtime", [("runtime_deprecated", "eq", True)]),
        ("lambdas on an end of life runtime", [("runtime_deprecated", "eq", True)]),
        ("functions on an unsupported runtime", [("runtime_deprecated", "eq", True)]),
        ("EKS clusters that reach end of life", [("version_outdated", "eq", True)]),
        # A named algorithm says "encrypted" already.
        ("buckets using AES256 default encryption", [("encryption", "eq", "AES256")]),
        ("buckets with default encryption", [("encryption", "ne", "none")]),
        # "at rest" is the storage encryption.
        (
            "databases in staging that are not encrypted at rest",
            [("storage_encrypted", "eq", False)],
        ),
        ("volumes encrypted at rest", [("encrypted", "eq", True)]),
        # A language after a Lambda noun and "are"/"on"/"running"/"using" is a runtime.
        ("which functions are node?", [("runtime", "prefix", "nodejs")]),
        ("functions on node", [("runtime", "prefix", "nodejs")]),
        ("lambdas running python", [("runtime", "prefix", "python")]),
        ("functions using go", [("runtime", "prefix", "go")]),
        ("functions on node 18.x", [("runtime", "eq", "nodejs18.x")]),
        # The same value said twice stays one value.
        (
            "show me the c5 fleet - every c5 family instance we run",
            [("instance_family", "eq", "c5")],
        ),
    ],
)
def test_lifecycle_encryption_and_runtime_words(registry, question, expected):
    assert filters(planned(question, registry)) == sorted(expected)


@pytest.mark.parametrize(
    ("question", "expected", "said"),
    [
        # A reason for a change after a resource noun: the reason is what to find.
        (
            "functions we must upgrade before their runtime goes out of support",
            [("runtime_deprecated", "eq", True)],
            "left out 'we must upgrade'",
        ),
        # Headings and purposes ahead of the question.
        (
            "cleanup list: EC2 instances missing both the owner and cost-center tags",
            [],
            "left out 'cleanup list'",
        ),
        (
            "For the audit next week I need every database in staging that isn't encrypted"
            " at rest.",
            [("storage_encrypted", "eq", False)],
            "left out 'For the audit next week'",
        ),
        (
            "Before the SOC2 review: which buckets don't have a public access block?",
            [("public_access_blocked", "eq", False)],
            "left out 'Before the SOC2 review'",
        ),
        (
            "FinOps here - can you pull the 5 largest EBS volumes in production? checking"
            " whether they're oversized",
            [],
            "left out 'FinOps here'",
        ),
        # Chatter after what it describes, said in the summary.
        ("any unencrypted EBS vols left in staging?", [("encrypted", "eq", False)], "'left'"),
        ("show me the c5 fleet", [("instance_family", "eq", "c5")], "'fleet'"),
        # "new" before a time says no more than the time.
        (
            "new buckets created this month?",
            [("created", "on_or_after", "2026-12-01")],
            "left out 'new'",
        ),
        # Who changed something is not reported: left out, and said.
        ("functions we updated", [], "left out 'we updated'"),
        ("the stacks we set up in staging", [], "left out 'we set up'"),
    ],
)
def test_words_left_out_are_said(registry, question, expected, said):
    plan = planned(question, registry)
    assert filters(plan) == sorted(expected)
    assert said in plan.summary


def test_headings_and_reasons_keep_what_they_hold(registry):
    query = _query(
        "cleanup list: EC2 instances missing both the owner and cost-center tags", registry
    )
    assert query.missing_tags == ["owner", "cost-center"]
    assert _query("buckets that carry an owner tag", registry).tag_keys == ["owner"]
    plan = planned(
        "FinOps here - can you pull the 5 largest EBS volumes in production? checking whether"
        " they're oversized",
        registry,
    )
    assert (plan.queries[0].sort_by, plan.queries[0].limit, plan.accounts) == (
        "size_gb",
        5,
        ["222222222222"],
    )
    assert "left out 'checking whether they are oversized'" in plan.summary
    # "new" with no time stays a word the planner cannot read.
    refusal = plan_question("new buckets", registry, None)
    assert isinstance(refusal, Refusal) and "'new'" in refusal.message
    # "I'm wondering if ...": the question itself, not an aside after one.
    assert _query("I'm wondering if any instances are stopped", registry).states == ["stopped"]


@pytest.mark.parametrize(
    "question",
    [
        "convert all gp2 volumes to gp3",
        "migrate the gp2 volumes to gp3",
        "change the gp2 volumes to gp3",
        "move the dev functions to python 3.12",
        "upgrade the functions on node 16",
        "switch the prod volumes to gp3",
        "which instances should I stop?",
        "cleanup the dev instances",
    ],
)
def test_change_verbs_of_kind_are_read_only(registry, question):
    refusal = plan_question(question, registry, None)
    assert isinstance(refusal, Refusal), refusal.summary
    assert refusal.kind == "read_only", refusal.message


@pytest.mark.parametrize(
    "question",
    [
        "weekly review: untagged EBS volumes",
        "oncall note - stopped instances in dev",
        "Q4 audit prep: databases that are publicly accessible",
    ],
)
def test_a_short_heading_that_names_nothing_is_left_out_and_said(registry, question):
    plan = planned(question, registry)
    heading = question.split(":")[0].split(" - ")[0]
    assert f"left out {heading!r}" in plan.summary


@pytest.mark.parametrize(
    "question",
    ["prod: list the instances", "windows: instances in staging", "stopped - instances in dev"],
)
def test_a_heading_that_names_a_filter_is_part_of_the_question(registry, question):
    plan = planned(question, registry)
    assert "left out" not in plan.summary
