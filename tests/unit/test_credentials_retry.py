"""RoleCredentials against a tiny STS on loopback: throttling retries, deadlines, forget, scale.

The server speaks STS's query protocol (XML): it answers ``Throttling`` / "Rate exceeded"
(HTTP 400, what STS answers when throttling) as many times as told, then AssumeRole
credentials, optionally after a delay, and counts requests and their peak concurrency.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from botocore.credentials import Credentials
from botocore.retries import standard

from opsagent.access import AccountTimeout, AccountUnreachable, Asker, RoleCredentials
from opsagent.registry import Account

CENTRAL = Credentials("AKIAOPSAGENTCENTRAL1", "central-secret")
NS = "https://sts.amazonaws.com/doc/2011-06-15/"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default listen backlog (5) would stall 60 parallel calls


class FakeSts:
    """Throttles the first ``throttle`` AssumeRoles (all of them if None), then answers."""

    def __init__(self) -> None:
        self.throttle: int | None = 0
        self.delay = 0.0
        self.requests = 0
        self.in_flight = 0
        self.peak = 0
        self.lock = threading.Lock()
        self.server = _Server(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        sts = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                params = dict(urllib.parse.parse_qsl(body.decode()))
                with sts.lock:
                    sts.requests += 1
                    number = sts.requests
                    sts.in_flight += 1
                    sts.peak = max(sts.peak, sts.in_flight)
                try:
                    time.sleep(sts.delay)
                    if sts.throttle is None or number <= sts.throttle:
                        self._send(400, throttling())
                    else:
                        self._send(200, assumed(params["RoleArn"], params["RoleSessionName"]))
                finally:
                    with sts.lock:
                        sts.in_flight -= 1

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


def throttling() -> bytes:
    return (
        f'<ErrorResponse xmlns="{NS}"><Error><Type>Sender</Type><Code>Throttling</Code>'
        f"<Message>Rate exceeded</Message></Error><RequestId>{uuid.uuid4()}</RequestId>"
        "</ErrorResponse>"
    ).encode()


def assumed(role_arn: str, session_name: str) -> bytes:
    account_id = role_arn.split(":")[4]
    expires = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    key = "ASIA" + uuid.uuid4().hex[:16].upper()
    return (
        f'<AssumeRoleResponse xmlns="{NS}"><AssumeRoleResult><Credentials>'
        f"<AccessKeyId>{key}</AccessKeyId><SecretAccessKey>secret</SecretAccessKey>"
        f"<SessionToken>token-{key}</SessionToken><Expiration>{expires}</Expiration>"
        "</Credentials><AssumedRoleUser><AssumedRoleId>AROAEXAMPLE:"
        + session_name
        + "</AssumedRoleId>"
        f"<Arn>arn:aws:sts::{account_id}:assumed-role/OpsAgentReadOnly/{session_name}</Arn>"
        "</AssumedRoleUser></AssumeRoleResult>"
        f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
        "</AssumeRoleResponse>"
    ).encode()


@pytest.fixture
def sts() -> Iterator[FakeSts]:
    fake = FakeSts()
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


@pytest.fixture
def backoff(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """botocore's own backoff delays, recorded; the sleep itself shortened to 10 ms."""
    delays: list[float] = []
    original = standard.ExponentialBackoff.delay_amount

    def recorded(self: standard.ExponentialBackoff, context: Any) -> float:
        delays.append(original(self, context))
        return 0.01

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", recorded)
    return delays


def account(account_id: str = "222222222222") -> Account:
    return Account(
        id=account_id,
        name=f"Account {account_id}",
        alias=f"acct-{account_id[-3:]}",
        environment="production",
        regions=["us-east-1"],
        role_arn=f"arn:aws:iam::{account_id}:role/OpsAgentReadOnly",
    )


def audit_records(caplog: pytest.LogCaptureFixture, event: str) -> list[dict[str, Any]]:
    records = (json.loads(r.getMessage()) for r in caplog.records if r.name == "opsagent.audit")
    return [r for r in records if r["event"] == event]


async def test_throttled_assume_role_is_retried_with_backoff_and_jitter(
    sts: FakeSts, backoff: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="opsagent.audit")
    sts.throttle = 2
    roles = RoleCredentials(CENTRAL, sts_endpoint_url=sts.url)
    try:
        credentials = await roles.get(account(), Asker("alice"))
    finally:
        roles.close()
    assert credentials.get_frozen_credentials().access_key.startswith("ASIA")
    assert sts.requests == 3
    # botocore standard mode, throttling: rand(0, 1) * min(2 ** (attempt - 1), 20) seconds.
    assert len(backoff) == 2
    assert 0 <= backoff[0] <= 1 and 0 <= backoff[1] <= 2
    throttled = audit_records(caplog, "sts.assume_role.throttled")
    assert [(r["attempt"], r["error_code"]) for r in throttled] == [
        (1, "Throttling"),
        (2, "Throttling"),
    ]
    assert throttled[0]["account_id"] == "222222222222" and throttled[0]["user"] == "alice"
    [ok] = audit_records(caplog, "sts.assume_role")
    assert ok["outcome"] == "ok" and ok["attempts"] == 3


async def test_persistent_throttle_ends_as_a_typed_error_within_the_attempts(
    sts: FakeSts, backoff: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="opsagent.audit")
    sts.throttle = None
    roles = RoleCredentials(CENTRAL, sts_endpoint_url=sts.url, max_attempts=4)
    try:
        with pytest.raises(AccountUnreachable) as failed:
            await roles.get(account(), Asker("bob"))
    finally:
        roles.close()
    assert sts.requests == 4
    assert failed.value.status == "error"
    assert failed.value.account_id == "222222222222"
    assert "throttled AssumeRole" in str(failed.value) and "on every attempt (4)" in str(
        failed.value
    )
    assert "Rate exceeded" in str(failed.value)
    assert len(audit_records(caplog, "sts.assume_role.throttled")) == 4
    [final] = audit_records(caplog, "sts.assume_role")
    assert final["outcome"] == "throttled" and final["attempts"] == 4


def slow_backoff(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, ctx: seconds)


async def wait_for_final_record(caplog: pytest.LogCaptureFixture) -> dict[str, Any]:
    for _ in range(100):
        records = audit_records(caplog, "sts.assume_role")
        if records:
            return records[-1]
        await asyncio.sleep(0.05)
    raise AssertionError("the STS thread never finished")


@pytest.mark.parametrize("how", ["deadline_s", "caller timeout"])
async def test_a_caller_that_stops_waiting_stops_the_retries(
    sts: FakeSts, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    caplog.set_level(logging.INFO, logger="opsagent.audit")
    roles = RoleCredentials(CENTRAL, sts_endpoint_url=sts.url, max_attempts=20)
    # The STS client exists: no cold start.
    await roles.get(account("999999999999"), Asker("warm-up"))
    caplog.clear()
    sts.throttle, sts.requests = None, 0
    slow_backoff(monkeypatch, 0.2)  # attempts at about 0, 0.2, 0.4, ... s
    started = time.monotonic()
    try:
        if how == "deadline_s":
            with pytest.raises(AccountTimeout) as failed:
                await roles.get(account(), Asker("carol"), deadline_s=1.0)
            assert failed.value.status == "timeout"
            assert "within 1s" in str(failed.value)
            assert "throttled" in str(failed.value) and "(Throttling)" in str(failed.value)
        else:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(1.0):
                    await roles.get(account(), Asker("carol"))
        assert time.monotonic() - started < 2.0
        # The thread ends after the attempt that follows the give-up: not 20 attempts.
        final = await wait_for_final_record(caplog)
        assert final["outcome"] == "throttled" and final["abandoned"] is True
        made = sts.requests
        assert 3 <= made <= 9  # about 6; a loaded machine may shift a few
        await asyncio.sleep(0.5)
        assert sts.requests == made
    finally:
        roles.close()


async def test_credentials_fetched_after_the_caller_gave_up_are_kept(
    sts: FakeSts, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="opsagent.audit")
    sts.delay = 0.4  # slower than the caller's patience, but it does answer
    roles = RoleCredentials(CENTRAL, sts_endpoint_url=sts.url)
    try:
        with pytest.raises(AccountTimeout):
            await roles.get(account(), Asker("dave"), deadline_s=0.1)
        final = await wait_for_final_record(caplog)
        assert final["outcome"] == "ok"
        sts.delay = 0
        credentials = await roles.get(account(), Asker("dave"))  # no new AssumeRole needed
        assert sts.requests == 1
        assert credentials.get_frozen_credentials().access_key == final["access_key_id"]
    finally:
        roles.close()


async def test_forget_drops_the_pair_and_the_next_use_assumes_again(sts: FakeSts) -> None:
    roles = RoleCredentials(CENTRAL, sts_endpoint_url=sts.url)
    try:
        first = await roles.get(account(), Asker("erin"))
        other = await roles.get(account("333333333333"), Asker("erin"))
        assert roles.cached_count == 2
        roles.forget("222222222222", Asker("erin"))
        roles.forget("222222222222", Asker("nobody"))  # unknown pairs are fine
        assert roles.cached_count == 1
        assert roles.for_account(account("333333333333"), Asker("erin")) is other
        again = await roles.get(account(), Asker("erin"))
        assert again is not first
        assert sts.requests == 3
        assert roles.cached_count == 2
    finally:
        roles.close()


async def test_many_accounts_assume_roles_in_parallel_not_six_at_a_time(sts: FakeSts) -> None:
    sts.delay = 1.0
    accounts = [account(f"{100000000000 + n}") for n in range(60)]
    roles = RoleCredentials(CENTRAL, sts_endpoint_url=sts.url, max_concurrent_assume_roles=64)
    started = time.monotonic()
    try:
        await asyncio.gather(*(roles.get(a, Asker("frank")) for a in accounts))
        elapsed = time.monotonic() - started
        sts_threads = [t for t in threading.enumerate() if t.name.startswith("opsagent-sts")]
    finally:
        roles.close()
    assert sts.requests == 60
    # The loop's default executor has min(32, cpus + 4) threads: 6 here, 10 s for 60 x 1 s.
    assert elapsed < 5, elapsed
    assert sts.peak >= 40, sts.peak
    assert len(sts_threads) >= 40
    assert roles.cached_count == 60


async def test_closed_credentials_refuse_new_work(sts: FakeSts) -> None:
    roles = RoleCredentials(CENTRAL, sts_endpoint_url=sts.url)
    roles.close()
    roles.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        await roles.get(account(), Asker("grace"))


def test_an_empty_instance_is_still_truthy() -> None:
    # AccountSessions does `credentials or RoleCredentials(...)`: no __len__ on purpose.
    roles = RoleCredentials(CENTRAL, sts_endpoint_url="http://127.0.0.1:9")
    try:
        assert roles.cached_count == 0
        assert roles
    finally:
        roles.close()
