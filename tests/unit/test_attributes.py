"""Attributes (catalogue/attributes.py): how AWS's values are normalized, and what every
filter op means on every kind of attribute, a row without a value, tag presence, ranking
order, and ``matches`` on a declared type."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from opsagent.graph.catalogue import CATALOGUE
from opsagent.graph.catalogue.attributes import (
    filter_holds,
    instance_family,
    iso_time,
    sort_key,
    tags_hold,
    version_key,
)
from opsagent.graph.catalogue.common import matches
from opsagent.graph.models import AttributeFilter, Resource, ResourceQuery

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)  # the time of the question, fixed


def holds(kind, have, op, value, now=NOW) -> bool:
    return filter_holds(kind, have, AttributeFilter(attribute="a", op=op, value=value), now)


def resource(**fields) -> Resource:
    base = {
        "account_id": "111111111111",
        "account_alias": "prod",
        "region": "us-east-1",
        "resource_type": "lambda:function",
        "id": "orders-api",
        "name": "orders-api",
        "state": "active",
    }
    return Resource(**{**base, **fields})


# ----- normalizing what AWS returns -----


def test_iso_time_of_lambdas_last_modified():
    assert iso_time("2026-11-30T08:00:00.000+0000") == "2026-11-30T08:00:00Z"


def test_iso_time_of_iso_with_z_and_with_an_offset():
    assert iso_time("2026-11-30T08:00:00Z") == "2026-11-30T08:00:00Z"
    assert iso_time("2026-11-30T08:00:00.123Z") == "2026-11-30T08:00:00Z"
    assert iso_time("2026-11-30T10:00:00+02:00") == "2026-11-30T08:00:00Z"
    assert iso_time("2026-11-30T03:00:00-0500") == "2026-11-30T08:00:00Z"
    assert iso_time("2026-11-30 08:00:00+00:00") == "2026-11-30T08:00:00Z"


def test_iso_time_of_a_datetime():
    assert iso_time(datetime(2026, 11, 30, 8, 0, tzinfo=UTC)) == "2026-11-30T08:00:00Z"
    aware = datetime(2026, 11, 30, 9, 0, tzinfo=timezone(timedelta(hours=1)))
    assert iso_time(aware) == "2026-11-30T08:00:00Z"
    assert iso_time(datetime(2026, 11, 30, 8, 0)) == "2026-11-30T08:00:00Z"  # naive: UTC
    assert iso_time(date(2026, 11, 30)) == "2026-11-30T00:00:00Z"


def test_iso_time_of_epoch_seconds():
    epoch = int(datetime(2026, 11, 30, 8, 0, tzinfo=UTC).timestamp())
    assert iso_time(epoch) == "2026-11-30T08:00:00Z"
    assert iso_time(float(epoch) + 0.5) == "2026-11-30T08:00:00Z"


def test_iso_time_of_nothing_or_nonsense_is_none():
    assert iso_time(None) is None
    assert iso_time("") is None
    assert iso_time("last tuesday") is None


def test_version_key_compares_part_by_part():
    assert version_key("1.29") < version_key("1.30")
    assert version_key("14.9") < version_key("14.10")
    assert version_key("14.10") < version_key("15")
    assert version_key("1.9") < version_key("1.10") < version_key("1.30")
    assert sorted(["1.30", "1.9", "1.29", "1.10"], key=version_key) == [
        "1.9",
        "1.10",
        "1.29",
        "1.30",
    ]


def test_instance_family():
    assert instance_family("m5.large") == "m5"
    assert instance_family("db.r5.xlarge") == "r5"
    assert instance_family("t3a.2xlarge") == "t3a"
    assert instance_family("m5") is None
    assert instance_family("") is None
    assert instance_family(None) is None


# ----- filters: text -----


def test_text_eq_is_case_insensitive():
    assert holds("text", "python3.12", "eq", "Python3.12")
    assert holds("text", "T3.MICRO", "eq", "t3.micro")
    assert not holds("text", "python3.12", "eq", "python3.11")


def test_text_eq_with_a_list_is_any_of():
    assert holds("text", "nodejs20.x", "eq", ["python3.12", "NODEJS20.X"])
    assert not holds("text", "java21", "eq", ["python3.12", "nodejs20.x"])


def test_text_ne_and_ne_with_a_list_is_none_of():
    assert holds("text", "python3.12", "ne", "python3.11")
    assert not holds("text", "python3.12", "ne", "PYTHON3.12")
    assert holds("text", "java21", "ne", ["python3.12", "nodejs20.x"])
    assert not holds("text", "nodejs20.x", "ne", ["python3.12", "nodejs20.x"])


def test_text_prefix():
    assert holds("text", "python3.12", "prefix", "Python")
    assert holds("text", "m5.large", "prefix", ["t3", "m5"])
    assert not holds("text", "nodejs20.x", "prefix", "python")


# ----- filters: numbers -----


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("gt", 128, True),
        ("gt", 256, False),
        ("gte", 256, True),
        ("gte", 257, False),
        ("lt", 512, True),
        ("lt", 256, False),
        ("lte", 256, True),
        ("lte", 255, False),
        ("eq", 256, True),
        ("eq", "256", True),
        ("eq", ["128", "256"], True),  # a list value is list[str]
        ("ne", ["128", "512"], True),
        ("eq", 128, False),
        ("ne", 128, True),
        ("ne", 256, False),
    ],
)
def test_number_comparisons(op, value, expected):
    assert holds("number", 256, op, value) is expected


def test_numbers_compare_as_numbers_not_text():
    assert holds("number", 1024, "gt", 256)  # as text "1024" < "256"
    assert holds("number", "1024", "gt", "256")
    assert not holds("number", 9, "gt", 10)


def test_a_number_that_is_not_one_matches_no_comparison():
    assert not holds("number", "lots", "gt", 1)
    assert not holds("number", 5, "lt", "many")


# ----- filters: versions -----


def test_version_lt_and_gt_compare_part_by_part():
    assert holds("version", "1.29", "lt", "1.30")
    assert not holds("version", "1.30", "lt", "1.30")
    assert holds("version", "1.30", "lte", "1.30")
    assert holds("version", "14.10", "gt", "14.9")  # as text "14.10" < "14.9"
    assert holds("version", "14.10", "gte", "14.10")
    assert holds("version", "1.30", "eq", "1.30")
    assert holds("version", "1.30", "ne", "1.29")


def test_version_prefix_matches_whole_parts():
    assert holds("version", "14", "prefix", "14")
    assert holds("version", "14.9", "prefix", "14")
    assert holds("version", "14.10", "prefix", "14")
    assert not holds("version", "140.1", "prefix", "14")
    assert not holds("version", "15.2", "prefix", "14")
    assert holds("version", "14.9", "prefix", "14.9")
    assert not holds("version", "14.10", "prefix", "14.1")


# ----- filters: booleans -----


def test_bool_eq_true_and_false():
    assert holds("bool", True, "eq", True)
    assert not holds("bool", False, "eq", True)
    assert holds("bool", False, "eq", False)
    assert not holds("bool", True, "eq", False)


def test_bool_ne():
    assert holds("bool", True, "ne", False)
    assert not holds("bool", True, "ne", True)


def test_bool_as_text_false_is_false():
    # "false" is a non-empty string: it must not read as true.
    assert holds("bool", "false", "eq", False)
    assert not holds("bool", "false", "eq", True)
    assert holds("bool", "False", "eq", "false")
    assert holds("bool", True, "eq", "true")
    assert not holds("bool", True, "eq", "false")
    assert holds("bool", "yes", "eq", True)


def test_bool_that_is_neither_matches_nothing():
    assert not holds("bool", "maybe", "eq", True)
    assert not holds("bool", "maybe", "ne", True)
    assert not holds("bool", True, "eq", "perhaps")


# ----- filters: times -----


def test_within_days_against_a_fixed_now():
    five_days_ago = iso_time(NOW - timedelta(days=5))
    ten_days_ago = iso_time(NOW - timedelta(days=10))
    assert holds("time", five_days_ago, "within_days", 7)
    assert not holds("time", ten_days_ago, "within_days", 7)
    assert holds("time", "2026-11-30T12:00:00Z", "within_days", 7)  # exactly 7 days: within
    assert holds("time", "2026-11-30T12:00:00.000+0000", "within_days", "7")


def test_older_than_days_against_a_fixed_now():
    five_days_ago = iso_time(NOW - timedelta(days=5))
    ten_days_ago = iso_time(NOW - timedelta(days=10))
    assert holds("time", ten_days_ago, "older_than_days", 7)
    assert not holds("time", five_days_ago, "older_than_days", 7)
    assert not holds("time", "2026-11-30T12:00:00Z", "older_than_days", 7)
    assert holds("time", "2025-01-01T00:00:00Z", "older_than_days", 365)


def test_days_that_are_not_a_number_match_nothing():
    assert not holds("time", "2026-12-01T00:00:00Z", "within_days", "a week")
    assert not holds("time", "2026-12-01T00:00:00Z", "older_than_days", "a week")
    assert not holds("time", "2026-12-01T00:00:00Z", "within_days", True)
    assert not holds("time", "2026-12-01T00:00:00Z", "within_days", ["7"])
    assert not holds("time", "2026-12-01T00:00:00Z", "within_days", float("nan"))


def test_more_days_than_the_calendar_holds_does_not_raise():
    # 1,000,000 days before 2026 is before year 1: every time is within, none older.
    assert holds("time", "2026-12-01T00:00:00Z", "within_days", 1_000_000)
    assert not holds("time", "2026-12-01T00:00:00Z", "older_than_days", 1_000_000)
    assert holds("time", "1999-01-01T00:00:00Z", "within_days", 10**12)
    assert not holds("time", "1999-01-01T00:00:00Z", "older_than_days", 10**12)


def test_on_or_after_and_before_an_iso_date():
    assert holds("time", "2026-11-30T08:00:00Z", "on_or_after", "2026-11-30")
    assert holds("time", "2026-11-30T00:00:00Z", "on_or_after", "2026-11-30")
    assert not holds("time", "2026-11-29T23:59:59Z", "on_or_after", "2026-11-30")
    assert holds("time", "2026-11-29T23:59:59Z", "before", "2026-11-30")
    assert not holds("time", "2026-11-30T00:00:00Z", "before", "2026-11-30")
    assert holds("time", "2026-11-30T08:00:00.000+0000", "before", "2026-12-01T00:00:00Z")


def test_on_or_after_a_date_that_is_not_one_matches_nothing():
    assert not holds("time", "2026-11-30T08:00:00Z", "on_or_after", "soon")
    assert not holds("time", "2026-11-30T08:00:00Z", "before", "soon")


# ----- a row without a value -----


@pytest.mark.parametrize(
    ("kind", "op", "value"),
    [
        ("text", "eq", "python3.12"),
        ("text", "ne", "python3.12"),
        ("text", "prefix", "py"),
        ("number", "gt", 0),
        ("number", "ne", 1),
        ("version", "lt", "99"),
        ("version", "prefix", "1"),
        ("bool", "eq", False),
        ("bool", "ne", True),
        ("time", "within_days", 7),
        ("time", "older_than_days", 7),
        ("time", "on_or_after", "2000-01-01"),
        ("time", "before", "2999-01-01"),
    ],
)
@pytest.mark.parametrize("missing", [None, ""])
def test_a_missing_value_matches_no_filter(kind, op, value, missing):
    assert not holds(kind, missing, op, value)


# ----- tags -----


def test_tag_keys_present_case_insensitive():
    row = resource(tags={"Owner": "ana", "CostCenter": "42"})
    assert tags_hold(row, ResourceQuery(resource_type="lambda:function", tag_keys=["owner"]))
    assert tags_hold(
        row, ResourceQuery(resource_type="lambda:function", tag_keys=["OWNER", "costcenter"])
    )
    assert not tags_hold(
        row, ResourceQuery(resource_type="lambda:function", tag_keys=["owner", "team"])
    )


def test_missing_tags_absent_case_insensitive():
    row = resource(tags={"Owner": "ana"})
    assert tags_hold(row, ResourceQuery(resource_type="lambda:function", missing_tags=["team"]))
    assert not tags_hold(
        row, ResourceQuery(resource_type="lambda:function", missing_tags=["OWNER"])
    )


def test_untagged_means_no_tags_at_all():
    query = ResourceQuery(resource_type="lambda:function", untagged=True)
    assert tags_hold(resource(tags={}), query)
    assert not tags_hold(resource(tags={"Name": "x"}), query)


def test_no_tag_fields_holds_for_every_row():
    query = ResourceQuery(resource_type="lambda:function")
    assert tags_hold(resource(tags={}), query)
    assert tags_hold(resource(tags={"a": "b"}), query)


# ----- ranking -----


def test_sort_key_puts_missing_values_last():
    values = [256, None, 128, "", 1024]
    assert sorted(values, key=lambda v: sort_key("number", v)) == [128, 256, 1024, None, ""]


def test_sort_key_orders_each_kind_in_its_own_order():
    assert sorted(["1.30", None, "1.9", "1.29"], key=lambda v: sort_key("version", v)) == [
        "1.9",
        "1.29",
        "1.30",
        None,
    ]
    times = ["2026-11-30T08:00:00Z", None, "2026-11-29T10:00:00.000+0000"]
    assert sorted(times, key=lambda v: sort_key("time", v)) == [
        "2026-11-29T10:00:00.000+0000",
        "2026-11-30T08:00:00Z",
        None,
    ]
    assert sorted(["b", None, "A", "c"], key=lambda v: sort_key("text", v)) == [
        "A",
        "b",
        "c",
        None,
    ]


def test_sort_key_treats_an_unreadable_value_as_missing():
    assert sort_key("number", "lots") == sort_key("number", None)
    assert sort_key("time", "soon") == sort_key("time", None)


# ----- matches, with a type from the catalogue -----

LAMBDA = CATALOGUE["lambda:function"]


def lambda_row(**details) -> Resource:
    base = {
        "runtime": "python3.8",
        "runtime_deprecated": True,
        "memory_mb": 256,
        "last_modified": "2026-12-03T08:00:00Z",  # 4 days before NOW
    }
    return resource(tags={"Team": "payments"}, details={**base, **details})


def query(*filters: AttributeFilter, **fields) -> ResourceQuery:
    return ResourceQuery(resource_type="lambda:function", filters=list(filters), **fields)


def f(attribute: str, op: str, value) -> AttributeFilter:
    return AttributeFilter(attribute=attribute, op=op, value=value)


def test_the_lambda_type_declares_the_attributes_the_tests_use():
    kinds = {a.name: a.kind for a in LAMBDA.attributes}
    assert kinds["runtime"] == "text"
    assert kinds["runtime_deprecated"] == "bool"
    assert kinds["memory_mb"] == "number"
    assert kinds["last_modified"] == "time"


def test_matches_each_attribute_filter():
    row = lambda_row()
    assert matches(row, query(f("runtime", "eq", "PYTHON3.8")), LAMBDA, NOW)
    assert matches(row, query(f("runtime_deprecated", "eq", True)), LAMBDA, NOW)
    assert not matches(row, query(f("runtime_deprecated", "eq", False)), LAMBDA, NOW)
    assert matches(row, query(f("memory_mb", "gte", 256)), LAMBDA, NOW)
    assert not matches(row, query(f("memory_mb", "gt", 256)), LAMBDA, NOW)
    assert matches(row, query(f("last_modified", "within_days", 7)), LAMBDA, NOW)
    assert not matches(row, query(f("last_modified", "older_than_days", 30)), LAMBDA, NOW)


def test_matches_needs_every_filter_to_hold():
    row = lambda_row()
    both = query(f("runtime", "prefix", "python"), f("memory_mb", "lt", 512))
    assert matches(row, both, LAMBDA, NOW)
    one_fails = query(f("runtime", "prefix", "python"), f("memory_mb", "gt", 512))
    assert not matches(row, one_fails, LAMBDA, NOW)


def test_matches_with_states_tags_and_names_too():
    row = lambda_row()
    assert matches(row, query(f("runtime_deprecated", "eq", True), states=["ACTIVE"]), LAMBDA, NOW)
    assert not matches(row, query(states=["failed"]), LAMBDA, NOW)
    assert matches(row, query(tags={"team": "Payments"}), LAMBDA, NOW)
    assert not matches(row, query(tags={"team": "search"}), LAMBDA, NOW)
    assert matches(row, query(tag_keys=["TEAM"]), LAMBDA, NOW)
    assert not matches(row, query(missing_tags=["team"]), LAMBDA, NOW)
    assert not matches(row, query(untagged=True), LAMBDA, NOW)
    assert matches(row, query(name_contains="ORDERS"), LAMBDA, NOW)
    assert not matches(row, query(name_contains="billing"), LAMBDA, NOW)


def test_matches_a_row_without_the_value_matches_nothing():
    row = lambda_row(runtime_deprecated=None)  # a runtime the lifecycle table does not list
    assert not matches(row, query(f("runtime_deprecated", "eq", True)), LAMBDA, NOW)
    assert not matches(row, query(f("runtime_deprecated", "eq", False)), LAMBDA, NOW)
    assert not matches(row, query(f("runtime_deprecated", "ne", True)), LAMBDA, NOW)
    no_memory = resource(details={"runtime": "python3.12"})
    assert not matches(no_memory, query(f("memory_mb", "ne", 128)), LAMBDA, NOW)


def test_matches_an_undeclared_attribute_or_no_type_matches_nothing():
    row = lambda_row(colour="blue")
    assert not matches(row, query(f("colour", "eq", "blue")), LAMBDA, NOW)
    assert not matches(row, query(f("runtime", "eq", "python3.8")), None, NOW)
    assert matches(row, query(), None, NOW)  # no attribute filters: no type needed


def test_matches_uses_the_time_of_the_question():
    row = lambda_row(last_modified="2026-12-03T08:00:00.000+0000")
    recent = query(f("last_modified", "within_days", 7))
    assert matches(row, recent, LAMBDA, NOW)
    assert not matches(row, recent, LAMBDA, NOW + timedelta(days=30))
