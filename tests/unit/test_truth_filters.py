"""The eval's own reading of attribute filters, tag presence and rankings (ground truth),
on hand-made rows: no moto, no AWS."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from opsagent.evals import truth as truth_module
from opsagent.evals.truth import (
    ATTRIBUTE_KINDS,
    GroundTruth,
    TruthRow,
    ranked,
    row_matches,
    utc_text,
)

NOW = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)
PROD, STAGING, DEV = "222222222222", "333333333333", "444444444444"


def _row(rtype: str = "ec2:instance", **kw: Any) -> TruthRow:
    attributes = kw.pop("attributes", {})
    fields: dict[str, Any] = {
        "account_id": PROD,
        "region": "us-east-1",
        "resource_type": rtype,
        "id": "i-0abc",
        "name": "prod-web-1",
        "state": "running",
        "tags": (("Name", "prod-web-1"), ("team", "web")),
        "conditions": frozenset(),
        "attributes": tuple(sorted(attributes.items())),
    }
    fields.update(kw)
    return TruthRow(**fields)


def _holds(row: TruthRow, attribute: str, op: str, value: Any) -> bool:
    query = {
        "resource_type": row.resource_type,
        "filters": [{"attribute": attribute, "op": op, "value": value}],
    }
    return row_matches(row, query, NOW)


def _ago(days: float) -> str:
    return (NOW - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


INSTANCE = _row(
    attributes={
        "instance_type": "m5.large",
        "instance_family": "m5",
        "platform": "linux",
        "launch_time": _ago(3),
    }
)
DB = _row(
    "rds:db-instance",
    id="prod-orders-db",
    name="prod-orders-db",
    attributes={
        "engine": "postgres",
        "engine_version": "14.9",
        "class": "db.r5.large",
        "publicly_accessible": False,
        "storage_encrypted": True,
        "multi_az": True,
        "storage_gb": 500,
        "created": _ago(400),
    },
)


def test_rows_carry_their_attributes_as_sorted_pairs() -> None:
    assert INSTANCE.attributes[0] == ("instance_family", "m5")
    assert INSTANCE.attribute_dict["instance_type"] == "m5.large"
    # Rows made without attributes (as before attributes existed) still work.
    plain = TruthRow(PROD, "us-east-1", "ec2:instance", "i-1", None, None, (), frozenset())
    assert plain.attribute_dict == {}
    assert row_matches(plain, {"resource_type": "ec2:instance"})


def test_text_eq_ne_and_prefix_are_case_insensitive_and_lists_mean_any_of() -> None:
    assert _holds(INSTANCE, "instance_type", "eq", "M5.Large")
    assert not _holds(INSTANCE, "instance_type", "eq", "m5.xlarge")
    assert _holds(INSTANCE, "instance_family", "eq", ["t3", "M5"])
    assert not _holds(INSTANCE, "instance_family", "ne", ["t3", "m5"])
    assert _holds(INSTANCE, "instance_family", "ne", ["t3", "c5"])
    assert _holds(INSTANCE, "platform", "ne", "windows")
    assert _holds(INSTANCE, "instance_type", "prefix", "M5.")
    assert _holds(INSTANCE, "instance_type", "prefix", ["t3", "m5"])
    assert not _holds(INSTANCE, "instance_type", "prefix", "m5.x")


def test_a_row_without_the_attribute_matches_no_filter_on_it() -> None:
    bare = _row(attributes={"instance_type": "m5.large"})
    for op, value in (("eq", "linux"), ("ne", "linux"), ("prefix", "l"), ("ne", ["windows"])):
        assert not _holds(bare, "platform", op, value)
    assert not _holds(bare, "launch_time", "older_than_days", 1)
    # An attribute the type does not have: nothing matches either.
    assert not _holds(INSTANCE, "engine_version", "ne", "1")
    # Every filter must hold.
    both = {
        "resource_type": "ec2:instance",
        "filters": [
            {"attribute": "instance_family", "op": "eq", "value": "m5"},
            {"attribute": "platform", "op": "eq", "value": "windows"},
        ],
    }
    assert not row_matches(INSTANCE, both, NOW)


def test_numbers_compare_as_numbers() -> None:
    assert _holds(DB, "storage_gb", "eq", 500)
    assert _holds(DB, "storage_gb", "eq", "500.0")
    assert _holds(DB, "storage_gb", "gt", 99)  # as text, "500" < "99"
    assert _holds(DB, "storage_gb", "gte", 500) and not _holds(DB, "storage_gb", "gt", 500)
    assert _holds(DB, "storage_gb", "lt", 1000) and _holds(DB, "storage_gb", "lte", 500)
    assert not _holds(DB, "storage_gb", "lt", 500)
    assert not _holds(DB, "storage_gb", "gt", "lots")


def test_booleans() -> None:
    assert _holds(DB, "multi_az", "eq", True) and not _holds(DB, "multi_az", "eq", False)
    assert _holds(DB, "publicly_accessible", "ne", True)
    assert _holds(DB, "storage_encrypted", "eq", "true")
    assert not _holds(DB, "storage_encrypted", "eq", "maybe")


def test_versions_compare_part_by_part() -> None:
    assert _holds(DB, "engine_version", "lt", "14.10")  # as text, "14.9" > "14.10"
    assert _holds(DB, "engine_version", "gt", "14.8")
    assert _holds(DB, "engine_version", "gte", "14.9") and _holds(
        DB, "engine_version", "lte", "14.9"
    )
    assert _holds(DB, "engine_version", "lt", "16")
    assert _holds(DB, "engine_version", "eq", "14.9") and not _holds(
        DB, "engine_version", "eq", "14"
    )
    assert _holds(DB, "engine_version", "prefix", "14")
    assert _holds(DB, "engine_version", "prefix", ["13", "14.9"])
    assert not _holds(DB, "engine_version", "prefix", "1")  # "14" is one part, not "1"
    not_14 = _row("rds:db-instance", attributes={"engine_version": "140.1"})
    assert not _holds(not_14, "engine_version", "prefix", "14")
    eks = _row("eks:cluster", attributes={"version": "1.29"})
    assert _holds(eks, "version", "lt", "1.30")
    assert _holds(eks, "version", "gt", "1.3")  # as text, "1.29" < "1.3"


def test_times_relative_to_now() -> None:
    recent = _row(attributes={"launch_time": _ago(3)})
    old = _row(attributes={"launch_time": _ago(100)})
    assert _holds(recent, "launch_time", "within_days", 7)
    assert not _holds(old, "launch_time", "within_days", 7)
    assert _holds(old, "launch_time", "older_than_days", 90)
    assert _holds(old, "launch_time", "older_than_days", "90")
    assert not _holds(recent, "launch_time", "older_than_days", 90)
    # The cut-off itself: within N days includes it, older than N days does not.
    edge = _row(attributes={"launch_time": _ago(7)})
    assert _holds(edge, "launch_time", "within_days", 7)
    assert not _holds(edge, "launch_time", "older_than_days", 7)
    assert not _holds(recent, "launch_time", "within_days", True)


def test_times_against_dates_and_times() -> None:
    row = _row(attributes={"launch_time": "2026-11-01T00:00:00Z"})
    assert _holds(row, "launch_time", "on_or_after", "2026-11-01")  # midnight UTC
    assert not _holds(row, "launch_time", "before", "2026-11-01")
    assert _holds(row, "launch_time", "before", "2026-11-01T00:00:01Z")
    assert _holds(row, "launch_time", "on_or_after", "2026-10-31T23:00:00-01:00")
    assert not _holds(row, "launch_time", "on_or_after", "2026-10-31T23:00:01-01:00")
    assert _holds(row, "launch_time", "gt", "2026-10-31") and _holds(
        row, "launch_time", "lt", "2026-11-02"
    )
    assert _holds(row, "launch_time", "eq", "2026-11-01T01:00:00+01:00")
    assert not _holds(row, "launch_time", "before", "next tuesday")


def test_times_are_normalized_to_utc_seconds() -> None:
    want = "2026-11-30T08:00:00Z"
    assert utc_text(datetime(2026, 11, 30, 8, 0, 0, 500_000, tzinfo=UTC)) == want
    assert utc_text(datetime(2026, 11, 30, 8, 0, 0)) == want  # naive: UTC
    assert utc_text("2026-11-30T08:00:00.000+0000") == want  # Lambda's spelling
    assert utc_text("2026-11-30T08:00:00.123456789Z") == want  # moto's Lambda spelling
    assert utc_text("2026-11-30T09:00:00+01:00") == want
    assert utc_text(date(2026, 11, 30)) == "2026-11-30T00:00:00Z"
    assert utc_text("not a time") is None and utc_text(None) is None


def test_tag_presence_absence_and_untagged() -> None:
    tagged = _row(tags=(("Name", "a"), ("Owner", "alice")))
    untagged = _row(name=None, tags=())
    assert row_matches(tagged, {"tag_keys": ["owner"]})
    assert not row_matches(tagged, {"tag_keys": ["owner", "cost-center"]})
    assert row_matches(tagged, {"missing_tags": ["team", "cost-center"]})
    assert not row_matches(tagged, {"missing_tags": ["OWNER"]})
    assert row_matches(untagged, {"untagged": True}) and not row_matches(tagged, {"untagged": True})
    assert row_matches(untagged, {"missing_tags": ["team"]})
    assert not row_matches(untagged, {"tag_keys": ["Name"]})


def _sized(account: str, region: str, rid: str, size: int | None) -> TruthRow:
    attributes = {} if size is None else {"size_gb": size}
    return _row(
        "ec2:volume", account_id=account, region=region, id=rid, name=rid, attributes=attributes
    )


VOLUMES = [
    _sized(DEV, "us-west-2", "vol-d2", 2000),
    _sized(PROD, "us-east-1", "vol-p1", 100),
    _sized(STAGING, "us-east-1", "vol-s1", 20),
    _sized(PROD, "us-west-2", "vol-p2", 20),
    _sized(DEV, "us-east-1", "vol-d1", None),
    _sized(PROD, "us-east-1", "vol-p0", 20),
    _sized(PROD, "us-east-1", "vol-p3", None),
]


def _ids(rows: list[TruthRow]) -> list[str]:
    return [r.id for r in rows]


def test_ranking_orders_over_every_account_with_ties_by_account_region_id() -> None:
    query = {"resource_type": "ec2:volume", "sort_by": "size_gb"}
    assert _ids(ranked(VOLUMES, query)) == [
        "vol-p0",  # 20: 222.../us-east-1
        "vol-p2",  # 20: 222.../us-west-2
        "vol-s1",  # 20: 333...
        "vol-p1",
        "vol-d2",
        "vol-p3",  # no size: last, in tie-break order
        "vol-d1",
    ]
    largest = ranked(VOLUMES, {**query, "descending": True, "limit": 4})
    # Descending keeps ties in (account, region, id) order, and rows without a value last.
    assert _ids(largest) == ["vol-d2", "vol-p1", "vol-p0", "vol-p2"]
    assert _ids(ranked(VOLUMES, {**query, "limit": 2})) == ["vol-p0", "vol-p2"]
    assert _ids(ranked(VOLUMES, {**query, "descending": True, "limit": 99}))[-2:] == [
        "vol-p3",
        "vol-d1",
    ]


def test_without_a_ranking_rows_stay_as_found() -> None:
    assert ranked(VOLUMES, {"resource_type": "ec2:volume"}) == VOLUMES
    # group_by and total do not change which rows are expected.
    assert (
        ranked(VOLUMES, {"resource_type": "ec2:volume", "group_by": "size_gb", "total": "size_gb"})
        == VOLUMES
    )
    # A limit without sort_by keeps the first rows in tie-break order.
    assert _ids(ranked(VOLUMES, {"resource_type": "ec2:volume", "limit": 2})) == [
        "vol-p0",
        "vol-p1",
    ]


def test_ranks_versions_and_times_in_their_own_order() -> None:
    clusters = [
        _row("eks:cluster", id=name, attributes={"version": version, "created": created})
        for name, version, created in (
            ("a", "1.9", _ago(1)),
            ("b", "1.29", _ago(500)),
            ("c", "1.10", _ago(40)),
        )
    ]
    by_version = ranked(clusters, {"resource_type": "eks:cluster", "sort_by": "version"})
    assert _ids(by_version) == ["a", "c", "b"]
    newest = ranked(
        clusters,
        {"resource_type": "eks:cluster", "sort_by": "created", "descending": True, "limit": 1},
    )
    assert _ids(newest) == ["a"]


class _Registry:
    """A Registry GroundTruth.rows never asks: regions are given and every read is cached."""

    def get(self, account_id: str) -> Any:
        raise AssertionError(account_id)


def test_ground_truth_rows_rank_over_every_account() -> None:
    truth = GroundTruth(_Registry(), endpoint_url=None, access_key="k", secret_key="s")  # type: ignore[arg-type]
    for account in (PROD, STAGING, DEV):
        for region in ("us-east-1", "us-west-2"):
            truth._cache[(account, region, "ec2:volume")] = [
                r for r in VOLUMES if (r.account_id, r.region) == (account, region)
            ]
    query = {
        "resource_type": "ec2:volume",
        "filters": [{"attribute": "size_gb", "op": "lt", "value": 1000}],
        "sort_by": "size_gb",
        "descending": True,
        "limit": 2,
    }
    rows = truth.rows([PROD, STAGING, DEV], ["us-east-1", "us-west-2"], query, now=NOW)
    assert _ids(rows) == ["vol-p1", "vol-p0"]
    assert _ids(truth.rows([STAGING, DEV], ["us-east-1", "us-west-2"], query, now=NOW)) == [
        "vol-s1"
    ]


def test_attribute_names_and_kinds_are_the_catalogues() -> None:
    """Ground truth keeps its own table; it must name what the catalogue declares."""
    from opsagent.graph.catalogue import CATALOGUE

    for rtype, kinds in ATTRIBUTE_KINDS.items():
        assert {a.name: a.kind for a in CATALOGUE[rtype].attributes} == kinds
    declared = {t for t, d in CATALOGUE.items() if d.attributes}
    assert declared == set(ATTRIBUTE_KINDS)


# ----- readers: boto3 answers to attribute values -----


class _Client:
    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers

    def can_paginate(self, operation: str) -> bool:
        return False

    def __getattr__(self, operation: str) -> Any:
        def call(**params: Any) -> Any:
            answer = self.answers[operation]
            answer = answer(**params) if callable(answer) else answer
            if isinstance(answer, ClientError):
                raise answer
            return answer

        return call


def _error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, "op")


def test_ec2_reader_normalizes_type_family_platform_and_launch_time() -> None:
    ec2 = _Client(
        {
            "describe_instances": {
                "Reservations": [
                    {
                        "Instances": [
                            {
                                "InstanceId": "i-1",
                                "InstanceType": "g4dn.xlarge",
                                "Platform": "Windows",
                                "LaunchTime": datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC),
                                "State": {"Name": "running"},
                            },
                            {
                                "InstanceId": "i-2",
                                "InstanceType": "t3.micro",
                                "PlatformDetails": "Linux/UNIX",
                                "State": {"Name": "stopped"},
                                "Tags": [{"Key": "Name", "Value": "two"}],
                            },
                        ]
                    }
                ]
            }
        }
    )
    one, two = truth_module.READERS["ec2:instance"](lambda service: ec2, PROD, "us-east-1")
    assert one.attribute_dict == {
        "instance_type": "g4dn.xlarge",
        "instance_family": "g4dn",
        "platform": "windows",
        "launch_time": "2026-01-02T03:04:05Z",
    }
    assert one.name is None and one.tags == ()
    assert "launch_time" not in two.attribute_dict and two.attribute_dict["platform"] == "linux"


def test_s3_reader_reads_public_access_block_and_default_encryption() -> None:
    blocked = {
        k: True
        for k in (
            "BlockPublicAcls",
            "IgnorePublicAcls",
            "BlockPublicPolicy",
            "RestrictPublicBuckets",
        )
    }
    blocks = {
        "all": {"PublicAccessBlockConfiguration": blocked},
        "some": {"PublicAccessBlockConfiguration": {**blocked, "RestrictPublicBuckets": False}},
        "none": _error("NoSuchPublicAccessBlockConfiguration"),
    }
    encryption = {
        "all": {
            "ServerSideEncryptionConfiguration": {
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]
            }
        },
        "some": {
            "ServerSideEncryptionConfiguration": {
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            }
        },
        "none": _error("ServerSideEncryptionConfigurationNotFoundError"),
    }
    s3 = _Client(
        {
            "list_buckets": {
                "Buckets": [
                    {"Name": n, "CreationDate": datetime(2025, 5, 6, tzinfo=UTC)} for n in blocks
                ]
            },
            "get_bucket_location": {"LocationConstraint": None},
            "get_bucket_tagging": _error("NoSuchTagSet"),
            "get_public_access_block": lambda Bucket: blocks[Bucket],
            "get_bucket_encryption": lambda Bucket: encryption[Bucket],
        }
    )
    rows = {
        r.id: r.attribute_dict
        for r in truth_module.READERS["s3:bucket"](lambda service: s3, PROD, "us-east-1")
    }
    assert rows["all"] == {
        "created": "2025-05-06T00:00:00Z",
        "public_access_blocked": True,
        "encryption": "aws:kms",
    }
    assert rows["some"]["public_access_blocked"] is False and rows["some"]["encryption"] == "AES256"
    assert rows["none"]["public_access_blocked"] is False and rows["none"]["encryption"] == "none"


def test_s3_reader_raises_other_errors() -> None:
    s3 = _Client(
        {
            "list_buckets": {"Buckets": [{"Name": "b"}]},
            "get_bucket_location": {"LocationConstraint": "us-west-2"},
            "get_bucket_tagging": {"TagSet": []},
            "get_public_access_block": _error("AccessDenied"),
        }
    )
    with pytest.raises(ClientError):
        truth_module.READERS["s3:bucket"](lambda service: s3, PROD, "us-east-1")


def test_lambda_reader_reads_the_lifecycle_table_for_today() -> None:
    lam = _Client(
        {
            "list_functions": {
                "Functions": [
                    {
                        "FunctionName": "old",
                        "FunctionArn": "arn:old",
                        "Runtime": "python3.8",
                        "MemorySize": 128,
                        "LastModified": "2024-01-02T03:04:05.000+0000",
                    },
                    {"FunctionName": "image", "FunctionArn": "arn:image", "MemorySize": 2048},
                    {"FunctionName": "odd", "FunctionArn": "arn:odd", "Runtime": "cobol85"},
                ]
            },
            "list_tags": {"Tags": {}},
        }
    )
    old, image, odd = truth_module.READERS["lambda:function"](
        lambda service: lam, PROD, "us-east-1"
    )
    assert old.attribute_dict == {
        "runtime": "python3.8",
        "runtime_deprecated": True,
        "memory_mb": 128,
        "last_modified": "2024-01-02T03:04:05Z",
    }
    # No runtime (a container image), or one the lifecycle table does not know: no value.
    assert image.attribute_dict == {"memory_mb": 2048}
    assert odd.attribute_dict == {"runtime": "cobol85"}
