"""Every member account sees who asked: SourceIdentity and session tags on every AssumeRole.

Through the sandbox (moto on loopback, the AWS MCP Server stand-in, SigV4 and all), a read by a
user in some groups assumes the account's role with RoleSessionName ``opsagent-<user>``,
SourceIdentity ``<user>`` and the session tags ``opsagent:user`` / ``opsagent:groups``
(``opsagent/access/identity.py``); two callers never share a session or credentials.

Where it is checked: moto 5.2 keeps neither SourceIdentity nor session tags. Its STS
``AssumedRole`` (``moto.sts.models.sts_backends[account]["aws"].assumed_roles``) records the
session name, role ARN, external id and keys, and its AssumeRole answer has no SourceIdentity;
moto has no CloudTrail for STS either. So the ``received`` fixture wraps moto's own AssumeRole
handler (``TokenResponse.assume_role``, in this process: the sandbox serves moto from a
thread) and records, by the access key moto handed out, the SourceIdentity and Tags of the
request moto received over HTTP, as STS would write them into the member account's
CloudTrail ``AssumeRole`` event (requestParameters.sourceIdentity, requestParameters.tags).
Each test then finds moto's ``AssumedRole`` whose keys the pool really signs with, and reads
what that AssumeRole carried. Should a later moto keep them on ``AssumedRole`` (attributes
``source_identity`` / ``tags``), they are compared as well.

moto validates none of STS's rules for these values (real STS answers ValidationError), so the
values are also checked against them here (``tests/unit/test_identity.py`` has the rest).
"""

from __future__ import annotations

import json
import re
import unicodedata
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from moto.sts.exceptions import STSClientError
from moto.sts.models import AssumedRole, sts_backends
from moto.sts.responses import TokenResponse

from opsagent.access import AccountSessions, Asker, Read
from opsagent.access.errors import AccountAccessDenied
from opsagent.access.identity import GROUPS_TAG, USER_TAG
from opsagent.registry import Account, load_registry
from tests.conftest import sandbox_pool

PRODUCTION = "222222222222"
VPCS = Read(service="ec2", operation="DescribeVpcs", region="us-east-1")
# SourceIdentity: 2-64 characters of [\w+=,.@-] (ASCII), AssumeRole API reference.
SOURCE_IDENTITY = re.compile(r"[\w+=,.@-]{2,64}", flags=re.ASCII)


@pytest.fixture(scope="module")
def production(sandbox) -> Account:
    return load_registry(sandbox.registry_path).get(PRODUCTION)


class Received:
    """What moto's STS received with each AssumeRole, by the access key it answered with."""

    def __init__(self) -> None:
        self.by_key: dict[str, dict[str, Any]] = {}
        # When set: refuse AssumeRole as PackedPolicyTooLarge while the tags' keys and values
        # add up to more characters than this (STS's own limit is on a packed form).
        self.packed_limit: int | None = None
        self.refused = 0

    def __call__(self, original: Any, handler: TokenResponse) -> Any:
        tags = handler._get_param("Tags") or []
        size = sum(len(t["Key"]) + len(t.get("Value") or "") for t in tags)
        if self.packed_limit is not None and size > self.packed_limit:
            self.refused += 1
            raise STSClientError(
                "PackedPolicyTooLarge",
                f"Serialized token is too large for session: {size} > {self.packed_limit}",
            )
        answer = original(handler)
        role: AssumedRole = answer.result["Credentials"]
        self.by_key[role.access_key_id] = {
            "RoleSessionName": handler._get_param("RoleSessionName"),
            "SourceIdentity": handler._get_param("SourceIdentity"),
            "Tags": [{"Key": t["Key"], "Value": t.get("Value") or ""} for t in tags],
            "TransitiveTagKeys": handler._get_param("TransitiveTagKeys"),
        }
        return answer


@pytest.fixture
def received(monkeypatch: pytest.MonkeyPatch) -> Iterator[Received]:
    seen = Received()
    original = TokenResponse.assume_role
    monkeypatch.setattr(TokenResponse, "assume_role", lambda self: seen(original, self))
    yield seen


@pytest.fixture
async def pool(sandbox) -> Any:
    sessions = sandbox_pool(sandbox)
    yield sessions
    await sessions.aclose()


def unique(name: str) -> str:
    """A user name no other test of the session uses (moto's STS is shared)."""
    local, _, domain = name.partition("@")
    return f"{local}-{uuid.uuid4().hex[:6]}" + (f"@{domain}" if domain else "")


def assumed(pool: AccountSessions, account: Account, asker: Asker) -> AssumedRole:
    """moto's record of the role session whose keys the pool signs this asker's calls with."""
    key = pool.credentials.for_account(account, asker).get_frozen_credentials().access_key
    [role] = [r for r in sts_backends[account.id]["aws"].assumed_roles if r.access_key_id == key]
    return role


def carried(received: Received, role: AssumedRole) -> dict[str, Any]:
    """The SourceIdentity and Tags that the AssumeRole behind this session carried."""
    sent = received.by_key[role.access_key_id]
    if getattr(role, "source_identity", None) is not None:  # a moto that keeps them
        assert role.source_identity == sent["SourceIdentity"]
    if getattr(role, "tags", None) is not None:
        assert role.tags == sent["Tags"]
    return sent


def tags(sent: dict[str, Any]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in sent["Tags"]}


def audits(caplog: pytest.LogCaptureFixture, event: str, user: str) -> list[dict[str, Any]]:
    found = []
    for record in caplog.records:
        if record.name == "opsagent.audit":
            data = json.loads(record.getMessage())
            if data["event"] == event and data.get("user") == user:
                found.append(data)
    return found


def valid_tag_value(value: str) -> bool:
    """[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]{0,256} (the STS Tag type)."""
    return len(value) <= 256 and all(
        ch in "_.:/=+-@" or unicodedata.category(ch)[0] in "LNZ" for ch in value
    )


async def test_a_read_carries_the_user_and_groups_into_the_member_account(
    pool: AccountSessions,
    production: Account,
    received: Received,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO", logger="opsagent.audit")
    user = unique("alice@example.com")
    asker = Asker(user, ("sre-oncall", "platform"))
    [result] = await pool.run_reads(production, asker, [VPCS])
    assert result.ok, result.error

    role = assumed(pool, production, asker)
    assert role.arn == (f"arn:aws:sts::{PRODUCTION}:assumed-role/OpsAgentReadOnly/opsagent-{user}")
    sent = carried(received, role)
    assert sent["RoleSessionName"] == f"opsagent-{user}"
    assert sent["SourceIdentity"] == user
    assert tags(sent) == {USER_TAG: user, GROUPS_TAG: "platform:sre-oncall"}
    assert not sent["TransitiveTagKeys"]  # nothing chains on from the member role

    # The central audit trail says the same, and the script's record names the groups too.
    [assume] = audits(caplog, "sts.assume_role", user)
    assert assume["outcome"] == "ok" and assume["access_key_id"] == role.access_key_id
    assert assume["source_identity"] == user and assume["groups"] == ["platform", "sre-oncall"]
    assert assume["session_tags"] == tags(sent)
    assert isinstance(assume["packed_policy_size"], int)
    [script] = audits(caplog, "aws.script", user)
    assert script["groups"] == ["platform", "sre-oncall"] and script["outcome"] == "ok"


async def test_two_callers_never_share_a_session(
    pool: AccountSessions, production: Account, received: Received
) -> None:
    alice, bob = unique("alice"), unique("bob")
    callers = [
        Asker(alice, ("sre-oncall",)),
        Asker(bob, ("sre-oncall",)),  # another user, same groups
        Asker(alice, ("platform",)),  # the same user with other groups (another token)
        Asker(alice),  # and with none
    ]
    for asker in callers:
        [result] = await pool.run_reads(production, asker, [VPCS])
        assert result.ok, result.error
    assert len(pool) == 4 and pool.credentials.cached_count == 4
    roles = [assumed(pool, production, asker) for asker in callers]
    assert len({role.access_key_id for role in roles}) == 4  # four role sessions
    sent = [carried(received, role) for role in roles]
    assert [tags(s)[GROUPS_TAG] for s in sent] == ["sre-oncall", "sre-oncall", "platform", ""]
    assert [s["SourceIdentity"] for s in sent] == [alice, bob, alice, alice]

    # The same groups in another order are the same caller: its session is used again.
    again = Asker(alice, ("platform", "platform"))
    await pool.run_reads(production, again, [VPCS])
    assert len(pool) == 4 and assumed(pool, production, again) is roles[2]


async def test_a_user_name_sts_rejects_still_gets_a_valid_source_identity(
    pool: AccountSessions,
    production: Account,
    received: Received,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO", logger="opsagent.audit")
    user = f"Jürgen Müller/admin, ops {uuid.uuid4().hex[:6]}"
    asker = Asker(user, ("Équipe SRE", "a,b"))
    [result] = await pool.run_reads(production, asker, [VPCS])
    assert result.ok, result.error

    sent = carried(received, assumed(pool, production, asker))
    assert SOURCE_IDENTITY.fullmatch(sent["SourceIdentity"]), sent["SourceIdentity"]
    assert re.fullmatch(r"J-rgen-M-ller-admin,-ops-\w{6}-[0-9a-f]{8}", sent["SourceIdentity"])
    assert SOURCE_IDENTITY.fullmatch(sent["RoleSessionName"])
    values = tags(sent)
    assert all(valid_tag_value(v) for v in values.values()), values
    assert values[USER_TAG].startswith("Jürgen Müller/admin_ ops")  # letters kept, "," not
    assert values[GROUPS_TAG] == "a_b:Équipe SRE"
    # The audit record maps the name as given to what the member account sees.
    [assume] = audits(caplog, "sts.assume_role", user)
    assert assume["source_identity"] == sent["SourceIdentity"]


async def test_many_groups_do_not_break_the_assume_role(
    pool: AccountSessions,
    production: Account,
    received: Received,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO", logger="opsagent.audit")
    user = unique("carol")
    groups = tuple(f"team-{n:03d}-{'x' * 20}" for n in range(300))
    asker = Asker(user, groups)
    [result] = await pool.run_reads(production, asker, [VPCS])
    assert result.ok, result.error

    value = tags(carried(received, assumed(pool, production, asker)))[GROUPS_TAG]
    assert len(value) <= 256 and valid_tag_value(value)
    *shown, marker = value.split(":")
    assert shown == list(groups[: len(shown)]) and marker == f"+{300 - len(shown)} more"
    [assume] = audits(caplog, "sts.assume_role", user)
    assert assume["groups"] == list(groups)  # every group, in the central audit trail


async def test_tags_sts_finds_too_large_are_sent_again_compact_not_failed(
    pool: AccountSessions,
    production: Account,
    received: Received,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """STS's packed-size limit is not stated in characters: should it refuse our two tags,
    the groups tag is cut to its marker and AssumeRole made again; the question is answered."""
    caplog.set_level("INFO", logger="opsagent.audit")
    received.packed_limit = 100
    user = unique("dave")
    asker = Asker(user, tuple(f"group-{n:02d}" for n in range(12)))
    [result] = await pool.run_reads(production, asker, [VPCS])
    assert result.ok, result.error
    assert received.refused == 1

    sent = carried(received, assumed(pool, production, asker))
    assert tags(sent) == {USER_TAG: user, GROUPS_TAG: "+12 more"}
    assert sent["SourceIdentity"] == user
    [too_large] = audits(caplog, "sts.assume_role.tags_too_large", user)
    assert too_large["error_code"] in {"PackedPolicyTooLarge", "PackedPolicyTooLargeException"}
    [assume] = audits(caplog, "sts.assume_role", user)
    assert assume["outcome"] == "ok" and assume["session_tags"][GROUPS_TAG] == "+12 more"
    assert len(assume["groups"]) == 12


@pytest.mark.parametrize(
    ("actions", "missing"),
    [
        (["sts:AssumeRole"], "sts:SetSourceIdentity"),
        (["sts:AssumeRole", "sts:SetSourceIdentity"], "sts:TagSession"),
    ],
)
async def test_a_member_role_whose_trust_lacks_the_new_actions_is_denied_saying_which(
    pool: AccountSessions, sandbox, actions: list[str], missing: str
) -> None:
    """A member role deployed from the template before attribution: AWS refuses an AssumeRole
    that names its caller or tags its session unless the trust policy allows those actions
    too, and so does the sandbox's STS."""
    from moto.iam.models import iam_backends

    name = f"OldTrust{uuid.uuid4().hex[:6]}"
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:root"}, "Action": a}
            for a in actions
        ],
    }
    iam_backends[PRODUCTION]["aws"].create_role(
        role_name=name,
        assume_role_policy_document=json.dumps(trust),
        path="/",
        permissions_boundary=None,
        description="",
        tags=[],
        max_session_duration="3600",
    )
    account = load_registry(sandbox.registry_path).get(PRODUCTION)
    old = account.model_copy(update={"role_arn": f"arn:aws:iam::{PRODUCTION}:role/{name}"})
    with pytest.raises(AccountAccessDenied) as refused:
        await pool.run_reads(old, Asker(unique("dana"), ("sre",)), [VPCS])
    assert refused.value.status == "denied"
    message = str(refused.value)
    assert f"not authorized to perform: {missing}" in message
    assert "sts:SetSourceIdentity and sts:TagSession" in message  # what to change, in words
