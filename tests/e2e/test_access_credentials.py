"""Assumed-role credentials against a real moto server on loopback."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from datetime import datetime, timedelta

import boto3
import botocore.credentials
import pytest
from botocore.credentials import Credentials
from moto.server import ThreadedMotoServer
from moto.sts.models import sts_backends

from opsagent.access import (
    AccountTimeout,
    AccountUnreachable,
    Asker,
    RoleCredentials,
    role_session_name,
)
from opsagent.registry import Account

CENTRAL = Credentials("AKIAOPSAGENTCENTRAL1", "central-secret")


def account(account_id: str = "222222222222", external_id: str | None = None) -> Account:
    return Account(
        id=account_id,
        name="Production",
        alias="production",
        environment="production",
        regions=["us-east-1"],
        role_arn=f"arn:aws:iam::{account_id}:role/OpsAgentReadOnly",
        external_id=external_id,
    )


@pytest.fixture(scope="module")
def sts_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def audit_records(caplog: pytest.LogCaptureFixture, event: str) -> list[dict]:
    return [
        json.loads(r.getMessage())
        for r in caplog.records
        if r.name == "opsagent.audit" and json.loads(r.getMessage())["event"] == event
    ]


def caller_arn(sts_url: str, credentials: botocore.credentials.RefreshableCredentials) -> str:
    frozen = credentials.get_frozen_credentials()
    sts = boto3.client(
        "sts",
        endpoint_url=sts_url,
        region_name="us-east-1",
        aws_access_key_id=frozen.access_key,
        aws_secret_access_key=frozen.secret_key,
        aws_session_token=frozen.token,
    )
    return sts.get_caller_identity()["Arn"]


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ("alice", "opsagent-alice"),
        ("alice@example.com", "opsagent-alice@example.com"),
        ("Alice Smith/admin", "opsagent-Alice-Smith-admin"),
        ("bob+ops=1,2.x_y-z", "opsagent-bob+ops=1,2.x_y-z"),
        ("jürgen", "opsagent-j-rgen"),
        ("", "opsagent-anonymous"),
        ("  ", "opsagent-anonymous"),
    ],
)
def test_session_name_names_the_user_in_sts_alphabet(user: str, expected: str) -> None:
    assert role_session_name(user) == expected


def test_session_name_is_at_most_64_characters() -> None:
    name = role_session_name("a-very-long-user-name." * 10)
    assert len(name) == 64
    assert name.startswith("opsagent-a-very-long-user-name.")


async def test_assumes_the_account_role_as_the_user(
    sts_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="opsagent.audit")
    roles = RoleCredentials(CENTRAL, sts_endpoint_url=sts_url)
    credentials = await roles.get(account(), Asker("alice@example.com"))
    assert caller_arn(sts_url, credentials) == (
        "arn:aws:sts::222222222222:assumed-role/OpsAgentReadOnly/opsagent-alice@example.com"
    )
    [record] = audit_records(caplog, "sts.assume_role")
    assert record["outcome"] == "ok"
    assert record["user"] == "alice@example.com"
    assert record["account_id"] == "222222222222"
    assert record["role_arn"] == "arn:aws:iam::222222222222:role/OpsAgentReadOnly"
    assert record["role_session_name"] == "opsagent-alice@example.com"
    assert record["assumed_role_arn"].endswith("/opsagent-alice@example.com")


async def test_external_id_is_sent_when_the_account_has_one(sts_url: str) -> None:
    roles = RoleCredentials(CENTRAL, sts_endpoint_url=sts_url)
    await roles.get(account("555555555555", external_id="ext-555"), Asker("carol"))
    await roles.get(account("666666666666"), Asker("carol"))
    # moto's STS keeps what it was asked (in this process: ThreadedMotoServer is a thread).
    assumed = {
        r.arn.split(":")[4]: r.external_id
        for backend in sts_backends.values()
        for r in backend["global"].assumed_roles
        if r.session_name == "opsagent-carol"
    }
    assert assumed == {"555555555555": "ext-555", "666666666666": None}


async def test_cache_reuses_credentials_per_account_and_user(
    sts_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="opsagent.audit")
    roles = RoleCredentials(CENTRAL, sts_endpoint_url=sts_url)
    first = await roles.get(account(), Asker("dave"))
    again = await roles.get(account(), Asker("dave"))
    other_user = await roles.get(account(), Asker("erin"))
    other_account = await roles.get(account("333333333333"), Asker("dave"))
    assert first is again
    assert first.get_frozen_credentials() == again.get_frozen_credentials()
    assert other_user is not first and other_account is not first
    assert len(audit_records(caplog, "sts.assume_role")) == 3
    assert caller_arn(sts_url, other_account).startswith("arn:aws:sts::333333333333:")


def test_for_account_makes_no_call_until_used(
    sts_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="opsagent.audit")
    roles = RoleCredentials(CENTRAL, sts_endpoint_url=sts_url)
    credentials = roles.for_account(account(), Asker("frank"))
    assert audit_records(caplog, "sts.assume_role") == []
    assert credentials.get_frozen_credentials().access_key
    assert len(audit_records(caplog, "sts.assume_role")) == 1


async def test_refreshes_before_expiry_not_after(
    sts_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO, logger="opsagent.audit")
    offset = timedelta(0)

    def clock() -> datetime:
        return datetime.now(botocore.credentials.tzlocal()) + offset

    # botocore's fetcher cache reads the module clock; the credentials get the same one.
    monkeypatch.setattr(botocore.credentials, "_local_now", clock)
    roles = RoleCredentials(
        CENTRAL, sts_endpoint_url=sts_url, duration_seconds=3600, time_fetcher=clock
    )
    credentials = await roles.get(account(), Asker("grace"))
    first_key = credentials.get_frozen_credentials().access_key

    offset = timedelta(minutes=40)  # 20 minutes left: no refresh yet
    await roles.get(account(), Asker("grace"))
    assert credentials.get_frozen_credentials().access_key == first_key
    assert len(audit_records(caplog, "sts.assume_role")) == 1

    offset = timedelta(minutes=47)  # 13 minutes left: inside the refresh window, not expired
    await roles.get(account(), Asker("grace"))
    assert len(audit_records(caplog, "sts.assume_role")) == 2
    # moto stamped the new set with the real clock: back to real time, it has a full hour.
    offset = timedelta(0)
    refreshed_key = credentials.get_frozen_credentials().access_key
    assert refreshed_key != first_key
    assert not credentials.refresh_needed()

    offset = timedelta(minutes=30)
    await roles.get(account(), Asker("grace"))
    assert credentials.get_frozen_credentials().access_key == refreshed_key
    assert len(audit_records(caplog, "sts.assume_role")) == 2


async def test_unreachable_sts_is_a_readable_error(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="opsagent.audit")
    with socket.socket() as probe:  # a loopback port with nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    roles = RoleCredentials(CENTRAL, sts_endpoint_url=f"http://127.0.0.1:{port}", max_attempts=1)
    with pytest.raises(AccountUnreachable) as failed:
        await roles.get(account(), Asker("heidi"))
    assert failed.value.status == "error"
    assert failed.value.account_id == "222222222222"
    assert "could not reach STS" in str(failed.value)
    assert "production (222222222222)" in str(failed.value)
    assert audit_records(caplog, "sts.assume_role")[-1]["outcome"] == "error"


async def test_silent_sts_is_a_timeout(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="opsagent.audit")
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        roles = RoleCredentials(
            CENTRAL, sts_endpoint_url=f"http://127.0.0.1:{port}", read_timeout=0.3, max_attempts=1
        )
        with pytest.raises(AccountTimeout) as failed:
            await roles.get(account(), Asker("ivan"))
    assert failed.value.status == "timeout"
    assert "did not answer in time" in str(failed.value)
    assert audit_records(caplog, "sts.assume_role")[-1]["outcome"] == "timeout"


def test_central_identity_may_be_a_boto3_session(sts_url: str) -> None:
    session = boto3.Session(
        aws_access_key_id=CENTRAL.access_key,
        aws_secret_access_key=CENTRAL.secret_key,
        region_name="us-east-1",
    )
    roles = RoleCredentials(session, sts_endpoint_url=sts_url)
    credentials = roles.for_account(account(), Asker("judy"))
    assert caller_arn(sts_url, credentials).endswith("/opsagent-judy")
