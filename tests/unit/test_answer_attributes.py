"""Answers to attribute questions: the top N over every account, groups, totals, the group
with the most, the values that explain a filter, and the attribute columns in the JSON."""

from __future__ import annotations

import pytest

from opsagent.graph.answer import build_answer
from opsagent.graph.catalogue.checks import plan_problems, query_problems
from opsagent.graph.models import AccountResult, AttributeFilter, Plan, Resource, ResourceQuery

PROD, STAGING, DEV = "222222222222", "333333333333", "444444444444"
ALIASES = {PROD: "Production", STAGING: "Staging", DEV: "Development"}


def _volume(account: str, vid: str, size: int | None, region: str = "us-east-1") -> Resource:
    return Resource(
        account_id=account,
        account_alias=ALIASES[account],
        region=region,
        resource_type="ec2:volume",
        id=vid,
        details={"size_gb": size, "volume_type": "gp3", "encrypted": False},
    )


def _function(account: str, name: str, runtime: str, deprecated: bool, memory: int) -> Resource:
    return Resource(
        account_id=account,
        account_alias=ALIASES[account],
        region="us-east-1",
        resource_type="lambda:function",
        id=name,
        name=name,
        details={"runtime": runtime, "runtime_deprecated": deprecated, "memory_mb": memory},
    )


def _results(rows: list[Resource]) -> list[AccountResult]:
    return [
        AccountResult(
            account_id=account,
            alias=alias,
            status="ok",
            rows=[r for r in rows if r.account_id == account],
        )
        for account, alias in ALIASES.items()
    ]


def _answer(rows: list[Resource], *queries: ResourceQuery, **plan_fields):
    plan = Plan(accounts=list(ALIASES), queries=list(queries), **plan_fields)
    return build_answer("q", plan, None, _results(rows))


VOLUMES = [
    _volume(PROD, "vol-a", 500),
    _volume(PROD, "vol-b", 8),
    _volume(STAGING, "vol-c", 2000),
    _volume(STAGING, "vol-d", 500),
    _volume(DEV, "vol-e", None),  # no size reported: ranks last
    _volume(DEV, "vol-f", 100),
]


def test_top_n_is_over_every_account_and_trims_each_accounts_rows():
    query = ResourceQuery(resource_type="ec2:volume", sort_by="size_gb", descending=True, limit=3)
    answer = _answer(VOLUMES, query)
    # 500 twice: the tie goes to the lower account id (Production before Staging).
    assert [r.id for r in answer.resources] == ["vol-c", "vol-a", "vol-d"]
    assert {r.alias: r.count for r in answer.results} == {
        "Production": 1,
        "Staging": 2,
        "Development": 0,
    }
    assert "vol-c (Staging, us-east-1, 2,000 GiB), vol-a (Production" in answer.text
    # The JSON carries the ranked attribute as a detail, in the ranked order.
    resources = answer.to_json()["resources"]
    assert [r["details"] for r in resources] == [
        {"size_gb": 2000},
        {"size_gb": 500},
        {"size_gb": 500},
    ]


def test_smallest_first_puts_rows_without_a_value_last():
    query = ResourceQuery(resource_type="ec2:volume", sort_by="size_gb")
    answer = _answer(VOLUMES, query)
    assert [r.id for r in answer.resources] == [
        "vol-b",
        "vol-f",
        "vol-a",
        "vol-d",
        "vol-c",
        "vol-e",
    ]
    assert sum(r.count for r in answer.results) == 6  # no limit: nothing trimmed


def test_a_deprecated_runtime_answer_names_the_runtimes():
    rows = [
        _function(PROD, "a", "python3.8", True, 128),
        _function(PROD, "b", "nodejs16.x", True, 256),
        _function(DEV, "c", "python3.8", True, 512),
    ]
    query = ResourceQuery(
        resource_type="lambda:function",
        filters=[AttributeFilter(attribute="runtime_deprecated", value=True)],
    )
    answer = _answer(rows, query)
    assert "Found 3 Lambda functions on a deprecated runtime across 3 accounts" in answer.text
    assert "By runtime: python3.8 2, nodejs16.x 1." in answer.text
    # The column shows the runtime that explains "deprecated", then the flag itself.
    details = answer.to_json()["resources"][0]["details"]
    assert list(details.items()) == [("runtime", "python3.8"), ("runtime_deprecated", True)]


def test_group_by_an_attribute_and_the_most_common_value():
    rows = [
        _function(PROD, "a", "python3.12", False, 128),
        _function(STAGING, "b", "python3.12", False, 128),
        _function(DEV, "c", "nodejs20.x", False, 128),
    ]
    query = ResourceQuery(resource_type="lambda:function", intent="count", group_by="runtime")
    answer = _answer(rows, query, rank="most")
    assert answer.text.startswith("python3.12 has the most Lambda functions")
    assert "By runtime: python3.12 2, nodejs20.x 1." in answer.text


@pytest.mark.parametrize(
    ("rank", "lead"),
    [
        ("most", "Staging has the most EBS volumes (2)."),
        ("fewest", "Production and Development have the fewest EBS volumes (1 each)."),
    ],
)
def test_which_account_has_the_most_or_fewest(rank, lead):
    rows = [
        _volume(PROD, "a", 1),
        _volume(STAGING, "b", 1),
        _volume(STAGING, "c", 1),
        _volume(DEV, "d", 1),
    ]
    query = ResourceQuery(resource_type="ec2:volume", intent="count")
    answer = _answer(rows, query, group_by="account", rank=rank)
    assert answer.text.startswith(lead)


def test_an_account_with_none_has_the_fewest():
    rows = [_volume(PROD, "a", 1), _volume(STAGING, "b", 1)]
    answer = _answer(
        rows, ResourceQuery(resource_type="ec2:volume"), group_by="account", rank="fewest"
    )
    assert answer.text.startswith("Development has the fewest EBS volumes (0).")


def test_total_storage_per_account():
    query = ResourceQuery(resource_type="ec2:volume", intent="count", total="size_gb")
    answer = _answer(VOLUMES, query, group_by="account", rank="most")
    assert (
        "Total size: 3,108 GiB (Production 508 GiB, Staging 2,500 GiB, Development 100 GiB)."
        in (answer.text)
    )
    assert answer.text.startswith("Staging has the largest total size of EBS volumes (2,500 GiB).")


def test_a_describe_answer_keeps_every_detail():
    query = ResourceQuery(resource_type="ec2:volume", intent="describe")
    answer = _answer(VOLUMES[:1], query)
    assert answer.to_json()["resources"][0]["details"] == {
        "size_gb": 500,
        "volume_type": "gp3",
        "encrypted": False,
    }


def test_a_plain_list_carries_no_details():
    answer = _answer(VOLUMES[:1], ResourceQuery(resource_type="ec2:volume"))
    assert "details" not in answer.to_json()["resources"][0]


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        (
            ResourceQuery(
                resource_type="ec2:volume",
                filters=[AttributeFilter(attribute="runtime", value="python3.8")],
            ),
            "EBS volumes have no attribute 'runtime'",
        ),
        (
            ResourceQuery(
                resource_type="ec2:volume",
                filters=[AttributeFilter(attribute="encrypted", op="gt", value=True)],
            ),
            "encrypted (bool) takes eq, ne, not gt",
        ),
        (
            ResourceQuery(
                resource_type="ec2:volume",
                filters=[AttributeFilter(attribute="size_gb", op="gt", value="big")],
            ),
            "size gt needs a number",
        ),
        (
            ResourceQuery(
                resource_type="ec2:instance",
                filters=[AttributeFilter(attribute="launch_time", op="on_or_after", value="soon")],
            ),
            "needs a date (YYYY-MM-DD)",
        ),
        (ResourceQuery(resource_type="ec2:volume", limit=5), "a limit needs"),
        (ResourceQuery(resource_type="ec2:volume", total="volume_type"), "has no total"),
        (
            ResourceQuery(resource_type="ec2:volume", tag_keys=["owner"], missing_tags=["Owner"]),
            "both present and missing: owner",
        ),
    ],
)
def test_nonsense_attribute_fields_are_named(query, problem):
    assert any(problem in p for p in query_problems(query)), query_problems(query)


def test_most_needs_groups():
    plan = Plan(accounts=[PROD], queries=[ResourceQuery(resource_type="ec2:volume")], rank="most")
    assert plan_problems(plan) == [
        "'most' or 'fewest' needs groups: by account, region or an attribute"
    ]
