"""The seeded organization holds what attribute questions need: for each kind of question,
some resources match and some don't, across several accounts; and the ages, runtimes,
versions and settings moto reports are the seed tables' (ground truth, read with boto3)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from opsagent.evals.truth import GroundTruth, TruthRow, utc_moment
from opsagent.registry import load_registry
from opsagent.sandbox import Sandbox, seed

MEMBERS = list(seed.MEMBER_ACCOUNTS)
EVERY = list(seed.ALL_ACCOUNTS)


@pytest.fixture(scope="module")
def ground(sandbox: Sandbox) -> GroundTruth:
    return GroundTruth.for_sandbox(sandbox, load_registry(sandbox.registry_path))


def _rows(
    ground: GroundTruth, rtype: str, accounts: list[str] = EVERY, **query: Any
) -> list[TruthRow]:
    return ground.rows(accounts, list(seed.REGIONS), {"resource_type": rtype, **query})


def _where(attribute: str, op: str, value: Any) -> dict[str, Any]:
    return {"filters": [{"attribute": attribute, "op": op, "value": value}]}


def _split(ground: GroundTruth, rtype: str, accounts: list[str] = MEMBERS, **query: Any) -> None:
    """Some rows match, some don't, and the matches span more than one account."""
    every = _rows(ground, rtype, accounts)
    matched = _rows(ground, rtype, accounts, **query)
    assert 0 < len(matched) < len(every), (rtype, query, [r.name for r in matched])
    assert len({r.account_id for r in matched}) >= 2, (rtype, query, [r.name for r in matched])


@pytest.mark.parametrize(
    ("rtype", "query"),
    [
        ("lambda:function", _where("runtime_deprecated", "eq", True)),
        ("lambda:function", _where("runtime_deprecated", "eq", False)),
        ("eks:cluster", _where("version_outdated", "eq", True)),
        ("eks:cluster", _where("version_outdated", "eq", False)),
        ("eks:cluster", _where("version", "gte", "1.32")),
        ("rds:db-instance", _where("publicly_accessible", "eq", True)),
        ("rds:db-instance", _where("publicly_accessible", "eq", False)),
        ("rds:db-instance", _where("storage_encrypted", "eq", False)),
        ("rds:db-instance", _where("engine_version", "prefix", "14")),
        ("ec2:volume", _where("encrypted", "eq", True)),
        ("ec2:volume", _where("encrypted", "eq", False)),
        ("ec2:volume", _where("volume_type", "eq", ["io1", "st1", "gp3"])),
        ("ec2:instance", _where("launch_time", "within_days", 7)),
        ("ec2:instance", _where("launch_time", "older_than_days", 90)),
        ("ec2:instance", _where("platform", "eq", "windows")),
        ("ec2:instance", {"untagged": True}),
        ("ec2:instance", {"missing_tags": ["team"]}),
        ("ec2:instance", {"tag_keys": ["owner"]}),
        ("s3:bucket", _where("public_access_blocked", "eq", True)),
        ("s3:bucket", _where("public_access_blocked", "eq", False)),
        ("s3:bucket", _where("encryption", "eq", "none")),
        ("s3:bucket", _where("created", "older_than_days", 90)),
    ],
)
def test_each_question_form_has_a_non_trivial_answer(
    ground: GroundTruth, rtype: str, query: dict[str, Any]
) -> None:
    _split(ground, rtype, **query)


def test_instances_a_year_old_and_untagged_ones(ground: GroundTruth) -> None:
    old = _rows(ground, "ec2:instance", **_where("launch_time", "older_than_days", 365))
    assert {r.name for r in old} == {r.name for r in seed.INSTANCES if r.days_ago > 365}
    untagged = _rows(ground, "ec2:instance", untagged=True)
    assert all(r.name is None and r.tags == () for r in untagged)
    assert len(untagged) == sum(1 for r in seed.INSTANCES if not r.tagged)


def test_top_n_over_every_account(ground: GroundTruth) -> None:
    largest = _rows(ground, "ec2:volume", sort_by="size_gb", descending=True, limit=3)
    assert [r.attribute_dict["size_gb"] for r in largest] == sorted(
        (v.size_gb for v in seed.VOLUMES), reverse=True
    )[:3]
    newest = _rows(
        ground, "lambda:function", MEMBERS, sort_by="last_modified", descending=True, limit=1
    )
    assert [r.name for r in newest] == [min(seed.FUNCTIONS, key=lambda f: f.days_ago).name]


def _age_days(row: TruthRow, attribute: str, now: datetime) -> int:
    moment = utc_moment(row.attribute_dict[attribute])
    assert moment is not None
    return (now - moment).days


AGES: list[tuple[str, str, Callable[[], dict[str, int]]]] = [
    (
        "ec2:instance",
        "launch_time",
        lambda: {r.name: r.days_ago for r in seed.INSTANCES if r.tagged},
    ),
    ("ec2:volume", "created", lambda: {r.name: r.days_ago for r in seed.VOLUMES}),
    ("s3:bucket", "created", lambda: {r.name: r.days_ago for r in seed.BUCKETS}),
    ("rds:db-instance", "created", lambda: {k: v.days_ago for k, v in seed.DB_SETTINGS.items()}),
    ("lambda:function", "last_modified", lambda: {r.name: r.days_ago for r in seed.FUNCTIONS}),
    ("eks:cluster", "created", lambda: {r.name: r.days_ago for r in seed.EKS_CLUSTERS}),
]


@pytest.mark.parametrize(("rtype", "attribute", "table"), AGES, ids=[a[0] for a in AGES])
def test_ages_are_the_seed_tables(
    ground: GroundTruth, rtype: str, attribute: str, table: Callable[[], dict[str, int]]
) -> None:
    """Backdated from the moment of seeding: each row is its days_ago days old (and a few
    minutes, the time since)."""
    now = datetime.now(UTC)
    want = table()
    have = {r.name: _age_days(r, attribute, now) for r in _rows(ground, rtype) if r.name in want}
    assert have == want


def test_instances_root_volumes_are_as_old_as_their_instances(ground: GroundTruth) -> None:
    now = datetime.now(UTC)
    named = {r.name for r in seed.VOLUMES}
    roots = [r for r in _rows(ground, "ec2:volume") if r.name not in named]
    assert len(roots) == len(seed.INSTANCES)  # moto's root volume, one per instance
    assert sorted(_age_days(r, "created", now) for r in roots) == sorted(
        r.days_ago for r in seed.INSTANCES
    )


def test_attributes_are_the_seed_tables(ground: GroundTruth, truth: Any) -> None:
    instances = {r.name: r.attribute_dict for r in _rows(ground, "ec2:instance") if r.name}
    for row in (r for r in seed.INSTANCES if r.tagged):
        assert instances[row.name]["instance_type"] == row.instance_type
        assert instances[row.name]["platform"] == row.platform
    tags = {r.name: r.tag_dict for r in _rows(ground, "ec2:instance") if r.name}
    assert tags == {r.name: r.tags() for r in seed.INSTANCES if r.tagged}
    functions = {r.name: r.attribute_dict for r in _rows(ground, "lambda:function")}
    assert {n: (a["runtime"], a["memory_mb"]) for n, a in functions.items()} == {
        f.name: (f.runtime, f.memory_mb) for f in seed.FUNCTIONS
    }
    dbs = {r.name: r.attribute_dict for r in _rows(ground, "rds:db-instance")}
    fields = ("engine_version", "storage_gb", "publicly_accessible", "storage_encrypted")
    assert {n: tuple(a[f] for f in (*fields, "multi_az")) for n, a in dbs.items()} == {
        n: (s.engine_version, s.storage_gb, s.public, s.encrypted, s.multi_az)
        for n, s in seed.DB_SETTINGS.items()
    }
    volumes = {r.name: r.attribute_dict for r in _rows(ground, "ec2:volume") if r.name}
    assert {n: (a["volume_type"], a["size_gb"], a["encrypted"]) for n, a in volumes.items()} == {
        v.name: (v.volume_type, v.size_gb, v.encrypted) for v in seed.VOLUMES
    }
    buckets = {r.name: r.attribute_dict for r in _rows(ground, "s3:bucket")}
    assert {n: (a["public_access_blocked"], a["encryption"]) for n, a in buckets.items()} == {
        b.name: (b.public_access_block, b.encryption or "none") for b in seed.BUCKETS
    }
    clusters = {r.name: r.attribute_dict["version"] for r in _rows(ground, "eks:cluster")}
    assert clusters == {c.name: c.version for c in seed.EKS_CLUSTERS}
    # The tests' own plain reading agrees on a Windows instance's Platform.
    windows = next(r for r in seed.INSTANCES if r.platform == "windows")
    described = [
        i
        for reservation in truth.client(
            windows.account, "ec2", windows.region
        ).describe_instances()["Reservations"]
        for i in reservation["Instances"]
        if {"Key": "Name", "Value": windows.name} in i.get("Tags", [])
    ]
    assert [i.get("Platform") for i in described] == ["windows"]
