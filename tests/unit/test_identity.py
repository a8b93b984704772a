"""Who asks, as STS takes it: the session name, SourceIdentity and session tags always fit.

The rules are read from botocore's STS model (the AssumeRole input shape: lengths and the
patterns STS validates with, ``\\p{L}`` & co. compiled with the ``regex`` module), not from the
code under test, so a sanitiser that lets through what STS would refuse fails here. moto does
not check them; real STS answers ValidationError.
"""

from __future__ import annotations

import botocore.session
import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from opsagent.access import Asker, role_session_name
from opsagent.access.identity import (
    GROUPS_TAG,
    MAX_SESSION_TAGS,
    USER_TAG,
    groups_tag_value,
    source_identity,
    tag_text,
    user_tag_value,
)

_INPUT = botocore.session.get_session().get_service_model("sts").operation_model("AssumeRole")
_MEMBERS = _INPUT.input_shape.members
_TAG = _MEMBERS["Tags"].member


def _rule(shape, flags: int = 0) -> tuple[regex.Pattern, int, int]:
    meta = shape.metadata
    return regex.compile(meta["pattern"], flags), meta.get("min", 0), meta["max"]


# STS validates in Java, whose \w is ASCII ("upper- and lower-case alphanumeric characters").
SESSION_NAME = _rule(_MEMBERS["RoleSessionName"], regex.ASCII)
# botocore's model allows 256; the AssumeRole API reference says 2-64, and we keep to that.
SOURCE_IDENTITY = (_rule(_MEMBERS["SourceIdentity"], regex.ASCII)[0], 2, 64)
TAG_KEY = _rule(_TAG.members["Key"])
TAG_VALUE = _rule(_TAG.members["Value"])


def fits(value: str, rule: tuple[regex.Pattern, int, int]) -> bool:
    pattern, low, high = rule
    # STS counts UTF-16 code units; every character we send is in the BMP (one unit each).
    units = len(value.encode("utf-16-le")) // 2
    return low <= units <= high and pattern.fullmatch(value) is not None


def assume_role_fits(asker: Asker) -> None:
    assert fits(asker.session_name, SESSION_NAME), asker.session_name
    assert fits(asker.source_identity, SOURCE_IDENTITY), asker.source_identity
    assert not asker.source_identity.lower().startswith("aws:")
    for compact in (False, True):
        tags = asker.session_tags(compact=compact)
        assert len(tags) <= MAX_SESSION_TAGS == _MEMBERS["Tags"].metadata["max"]
        keys = [tag["Key"].lower() for tag in tags]
        assert len(set(keys)) == len(keys)  # keys are case-insensitive
        for tag in tags:
            assert fits(tag["Key"], TAG_KEY) and not tag["Key"].lower().startswith("aws:")
            assert fits(tag["Value"], TAG_VALUE), tag


# --- SourceIdentity ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "user", ["alice", "alice@example.com", "bob+ops=1,2.x_y-z", "AB", "x" * 64]
)
def test_a_name_sts_takes_is_the_source_identity_itself(user: str) -> None:
    assert source_identity(user) == user


@pytest.mark.parametrize(
    ("user", "readable"),
    [
        ("Alice Smith/admin", "Alice-Smith-admin"),
        ("jürgen", "j-rgen"),
        ("carol ", "carol"),
        ("a", "a"),  # too short alone: STS wants at least 2
        ("x" * 65, "x" * 55),  # too long: cut
        ("aws:root", "aws-root"),  # never the reserved aws: prefix
    ],
)
def test_a_name_sts_rejects_becomes_a_valid_marked_source_identity(
    user: str, readable: str
) -> None:
    value = source_identity(user)
    assert fits(value, SOURCE_IDENTITY)
    # What is left of the name, then 8 hex digits of its SHA-256: changed, and visibly so.
    assert regex.fullmatch(rf"{regex.escape(readable)}-[0-9a-f]{{8}}", value), value


def test_two_names_that_clean_up_alike_stay_apart() -> None:
    assert source_identity("alice smith") != source_identity("alice/smith")
    assert source_identity("x" * 70 + "a") != source_identity("x" * 70 + "b")
    assert user_tag_value("a,b") != user_tag_value("a;b")


def test_no_name_is_anonymous() -> None:
    assert source_identity("") == source_identity("  ") == "anonymous"
    assert user_tag_value("") == "anonymous"
    assert role_session_name("") == "opsagent-anonymous"


# --- tags --------------------------------------------------------------------------------------


def test_the_tags_are_the_user_and_the_groups() -> None:
    asker = Asker("alice@example.com", ("sre-oncall", "platform"))
    assert asker.session_tags() == [
        {"Key": USER_TAG, "Value": "alice@example.com"},
        {"Key": GROUPS_TAG, "Value": "platform:sre-oncall"},
    ]
    assert Asker("bob").session_tags()[1] == {"Key": GROUPS_TAG, "Value": ""}
    assume_role_fits(asker)


def test_the_rules_are_sts_rules() -> None:
    assert not fits("jürgen", SOURCE_IDENTITY) and not fits("a b", SOURCE_IDENTITY)
    assert fits("jürgen müller", TAG_VALUE) and not fits("a,b", TAG_VALUE)
    assert fits("", TAG_VALUE) and not fits("x" * 257, TAG_VALUE)


def test_tag_values_keep_unicode_letters_and_replace_what_sts_refuses() -> None:
    assert tag_text("Jürgen Müller") == "Jürgen Müller"  # \p{L} and \p{Z} are allowed
    assert tag_text("a,b;c!d\te") == "a_b_c_d_e"
    assert tag_text("rocket🚀") == "rocket_"  # outside the BMP, and not a letter anyway
    assert user_tag_value("jürgen@example.com") == "jürgen@example.com"
    assert regex.fullmatch(r"a_b-[0-9a-f]{8}", user_tag_value("a,b"))


def test_a_colon_inside_a_group_name_cannot_pass_for_the_separator() -> None:
    assert groups_tag_value(["arn:aws:x", "ops"]) == "arn_aws_x:ops"


def test_groups_that_do_not_fit_end_in_a_marker_saying_how_many_were_left_out() -> None:
    groups = [f"team-{n:03d}" for n in range(100)]  # 8 characters each, 899 joined
    value = groups_tag_value(groups)
    assert len(value) <= 256
    *shown, marker = value.split(":")
    assert shown == groups[: len(shown)] and len(shown) > 20  # whole groups, in order
    assert marker == f"+{100 - len(shown)} more"


def test_a_group_longer_than_the_whole_value_is_counted_not_cut() -> None:
    assert groups_tag_value(["g" * 300]) == "+1 more"
    assert groups_tag_value(["ops", "g" * 300, "zed"]) == "ops:+2 more"


def test_compact_tags_keep_only_the_marker() -> None:
    asker = Asker("alice", ("sre-oncall", "platform"))
    assert asker.session_tags(compact=True)[1] == {"Key": GROUPS_TAG, "Value": "+2 more"}
    assert Asker("bob").session_tags(compact=True)[1]["Value"] == ""


# --- the Asker ---------------------------------------------------------------------------------


def test_the_same_groups_in_another_order_are_the_same_asker() -> None:
    assert Asker("alice", ("b", "a", "a", "")) == Asker("alice", ("a", "b"))
    assert Asker("alice", ("a", "b")).groups == ("a", "b")
    assert hash(Asker("alice", ("b", "a"))) == hash(Asker("alice", ("a", "b")))
    assert Asker("alice", ("a",)) != Asker("alice", ("b",)) != Asker("bob", ("b",))
    assert Asker("alice") != Asker("alice", ("a",))


def test_the_audit_keeps_every_group() -> None:
    groups = tuple(f"team-{n:03d}" for n in range(100))
    assert Asker("alice", groups).audit_fields() == {"user": "alice", "groups": list(groups)}


@settings(max_examples=300, deadline=None)
@given(user=st.text(max_size=300), groups=st.lists(st.text(max_size=80), max_size=80))
def test_any_user_and_any_groups_make_an_assume_role_sts_takes(
    user: str, groups: list[str]
) -> None:
    assume_role_fits(Asker(user, tuple(groups)))
