"""Assumed-role credentials refresh inside the one-hour role-chaining cap, end to end.

A chained role session (central role -> member role) lasts at most one hour
(https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use.html); the service runs for
days. These tests run a pool on the sandbox for a simulated day without sleeping: one clock,
moved by the test, is read by the credentials (``time_fetcher``) and by moto's STS (which
stamps each new session's expiry), and the server side of expiry follows it too: a session
whose hour is over on that clock is expired in moto, so the AWS MCP Server stand-in refuses
its key (ExpiredTokenException), as AWS would. botocore will not send DurationSeconds below
900 (the STS minimum), so the clock is what makes an hour pass quickly.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import moto.sts.models
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials
from dateutil.tz import tzlocal
from moto.sts.models import sts_backends

from opsagent.access import AccountAccessDenied, Asker, Read, RoleCredentials, role_session_name
from opsagent.registry import Account, load_registry
from tests.conftest import sandbox_pool

PRODUCTION = "222222222222"
DESCRIBE = Read(service="ec2", operation="DescribeInstances", region="us-east-1")


@dataclass
class Clock:
    """Real time plus an offset the test moves forward."""

    offset: timedelta = timedelta(0)

    def now(self) -> datetime:  # what the credentials read (botocore wants it tz-aware)
        return datetime.now(tzlocal()) + self.offset

    def utcnow(self) -> datetime:  # what moto reads (naive UTC)
        return datetime.now(UTC).replace(tzinfo=None) + self.offset


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    shared = Clock()
    # moto's STS stamps Expiration = its now + DurationSeconds: on the same clock as ours.
    monkeypatch.setattr(moto.sts.models, "utcnow", shared.utcnow)
    yield shared


@pytest.fixture(scope="module")
def production(sandbox) -> Account:
    return load_registry(sandbox.registry_path).get(PRODUCTION)


def assumed_keys(caplog: pytest.LogCaptureFixture, user: str) -> list[str]:
    """Access key ids of the successful AssumeRoles for this user, in order (audit trail)."""
    keys = []
    for record in caplog.records:
        if record.name == "opsagent.audit":
            data = json.loads(record.getMessage())
            if data["event"] == "sts.assume_role" and data["user"] == user:
                assert data["outcome"] == "ok", data
                keys.append(data["access_key_id"])
    return keys


def expire_server_side(user: str, clock: Clock) -> int:
    """Expire in moto every session of this user whose hour is over on the test's clock (the
    stand-in compares expiry with the real time). Returns how many are expired now."""
    backend = sts_backends[PRODUCTION]["aws"]
    now, past = clock.utcnow(), datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=1)
    sessions = [s for s in backend.assumed_roles if s.session_name == role_session_name(user)]
    for session in sessions:
        if session.expiration <= now:
            session.expiration = min(session.expiration, past)
    return sum(1 for s in sessions if s.expiration <= past)


def signed_initialize(sandbox, credentials: ReadOnlyCredentials) -> httpx.Response:
    """An MCP initialize request to the stand-in, SigV4-signed with the given keys."""
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "test", "version": "0"},
            },
        }
    ).encode()
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    request = AWSRequest(method="POST", url=sandbox.mcp_endpoint, data=body, headers=headers)
    keys = Credentials(credentials.access_key, credentials.secret_key, credentials.token)
    SigV4Auth(keys, sandbox.mcp_service, sandbox.mcp_region).add_auth(request)
    return httpx.post(sandbox.mcp_endpoint, content=body, headers=dict(request.headers.items()))


async def test_sessions_keep_answering_through_a_day_of_one_hour_credentials(
    sandbox, production: Account, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="opsagent.audit")
    user = f"refresh-{uuid.uuid4().hex[:8]}"
    asker = Asker(user)
    roles = RoleCredentials(
        sandbox.central_session(),
        sts_endpoint_url=sandbox.aws_endpoint,
        duration_seconds=3600,  # the role-chaining cap
        time_fetcher=clock.now,
    )
    pool = sandbox_pool(sandbox, credentials=roles, call_timeout=15)
    try:
        [answer] = await pool.run_reads(production, asker, [DESCRIBE])
        assert answer.error is None
        [first_key] = assumed_keys(caplog, user)
        first = roles.for_account(production, asker).get_frozen_credentials()
        assert first.access_key == first_key

        # The hour passes for AWS, and the client has not looked at its clock: AWS refuses
        # the old key. (The server is strict; only a refresh can keep the session working.)
        clock.offset = timedelta(minutes=61)
        assert expire_server_side(user, clock) == 1
        clock.offset = timedelta(0)
        with pytest.raises(AccountAccessDenied, match="ExpiredToken"):
            await pool.run_reads(production, asker, [DESCRIBE])

        # The client's clock catches up: its key is past expiry, get() assumes the role again
        # before the session is used, and the same pool answers again.
        clock.offset = timedelta(minutes=61)
        [answer] = await pool.run_reads(production, asker, [DESCRIBE])
        assert answer.error is None
        keys = assumed_keys(caplog, user)
        assert len(keys) == 2 and keys[1] != first_key

        # A day in 47-minute steps: each lands 13 minutes before the current key's expiry,
        # inside botocore's refresh window (15 min), so each read first refreshes; keys whose
        # hour is over are expired on the server as the day goes.
        for _ in range(31):
            clock.offset += timedelta(minutes=47)
            expire_server_side(user, clock)
            [answer] = await pool.run_reads(production, asker, [DESCRIBE])
            assert answer.error is None
        assert clock.offset > timedelta(hours=24)
        keys = assumed_keys(caplog, user)
        assert len(keys) == 2 + 31 == len(set(keys))
        assert expire_server_side(user, clock) >= 31  # all but the newest one or two are dead

        # What the stand-in does with an expired key, asked directly; the current key passes.
        refused = signed_initialize(sandbox, first)
        assert refused.status_code == 401
        assert refused.headers["x-amzn-errortype"] == "ExpiredTokenException"
        current = roles.for_account(production, asker).get_frozen_credentials()
        assert current.access_key == keys[-1]
        assert signed_initialize(sandbox, current).status_code == 200
    finally:
        await pool.aclose()
        roles.close()


async def test_refresh_needs_no_new_session_and_forget_starts_over(
    sandbox, production: Account, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="opsagent.audit")
    user = f"refresh-{uuid.uuid4().hex[:8]}"
    asker = Asker(user)
    roles = RoleCredentials(
        sandbox.central_session(), sts_endpoint_url=sandbox.aws_endpoint, time_fetcher=clock.now
    )
    pool = sandbox_pool(sandbox, credentials=roles, call_timeout=15)
    try:
        await pool.run_reads(production, asker, [DESCRIBE])
        credentials = roles.for_account(production, asker)
        clock.offset = timedelta(minutes=50)  # inside the mandatory window (10 min left)
        await pool.run_reads(production, asker, [DESCRIBE])
        # The signer holds the same self-refreshing object: refreshed in place.
        assert roles.for_account(production, asker) is credentials
        assert len(assumed_keys(caplog, user)) == 2
        clock.offset = timedelta(minutes=55)  # the new key is fresh: no third AssumeRole
        await pool.run_reads(production, asker, [DESCRIBE])
        assert len(assumed_keys(caplog, user)) == 2

        roles.forget(PRODUCTION, asker)
        assert roles.for_account(production, asker) is not credentials
    finally:
        await pool.aclose()
        roles.close()
