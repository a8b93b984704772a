"""Recent reads are reused, failures are not, and identical reads in flight share one script."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from opsagent.access import Asker, Read, ReadCache, ReadError, ReadResult
from opsagent.registry import Account

PROD = Account(
    id="222222222222",
    name="Production",
    alias="prod",
    environment="production",
    regions=["us-east-1"],
    role_arn="arn:aws:iam::222222222222:role/OpsAgentReadOnly",
)
EAST = Read(service="ec2", operation="DescribeInstances", region="us-east-1")
WEST = Read(service="ec2", operation="DescribeInstances", region="us-west-2")
ALICE = Asker("alice", ("sre-oncall",))


class FakeAws:
    """run_reads that counts its scripts and answers each read with its region."""

    def __init__(self, *, delay: float = 0.0, fail: set[str] | None = None) -> None:
        self.scripts: list[list[str]] = []
        self.askers: list[Asker] = []
        self.delay = delay
        self.fail = fail or set()

    async def __call__(self, account, asker, reads, *, allowed=None, fresh=True):
        self.askers.append(asker)
        self.scripts.append([read.region for read in reads])
        await asyncio.sleep(self.delay)
        return [
            ReadResult(error=ReadError(code="Throttling", message="slow down"))
            if read.region in self.fail
            else ReadResult(
                result={"region": read.region, "script": len(self.scripts)},
                read_at=datetime.now(UTC),  # as AccountSessions.run_reads stamps it
            )
            for read in reads
        ]


async def test_a_second_ask_within_the_age_reuses_and_says_when_it_was_read():
    aws = FakeAws()
    cache = ReadCache(aws, max_age_s=60)
    first = await cache(PROD, ALICE, [EAST, WEST], allowed=set())
    again = await cache(PROD, ALICE, [WEST], allowed=set())
    assert len(aws.scripts) == 1
    assert again[0].result == first[1].result and again[0].read_at == first[1].read_at


async def test_fresh_reads_again_and_only_missing_reads_go_out():
    aws = FakeAws()
    cache = ReadCache(aws, max_age_s=60)
    await cache(PROD, ALICE, [EAST], allowed=set())
    await cache(PROD, ALICE, [EAST, WEST], allowed=set())
    assert aws.scripts == [["us-east-1"], ["us-west-2"]]  # the second script read only west
    await cache(PROD, ALICE, [EAST], allowed=set(), fresh=True)
    assert aws.scripts[-1] == ["us-east-1"] and len(aws.scripts) == 3


async def test_nothing_is_reused_past_the_age_or_across_callers():
    aws = FakeAws()
    cache = ReadCache(aws, max_age_s=0.05)
    await cache(PROD, ALICE, [EAST], allowed=set())
    await cache(PROD, Asker("bob"), [EAST], allowed=set())  # another caller: its own session
    await asyncio.sleep(0.1)
    await cache(PROD, ALICE, [EAST], allowed=set())
    assert len(aws.scripts) == 3
    assert len(cache) == 1  # the expired ones are gone


async def test_the_same_user_with_other_groups_is_another_caller():
    """Their sessions carry other session tags (access/identity.py), so a member account's
    policies may show them other things: no read of one is handed to the other."""
    aws = FakeAws(delay=0.05)
    cache = ReadCache(aws, max_age_s=60)
    oncall, platform = Asker("alice", ("sre-oncall",)), Asker("alice", ("platform",))
    await asyncio.gather(
        cache(PROD, oncall, [EAST], allowed=set()), cache(PROD, platform, [EAST], allowed=set())
    )  # not shared in flight...
    await cache(PROD, platform, [EAST], allowed=set())  # ...nor reused after
    assert len(aws.scripts) == 2 and cache.shared == 0
    assert set(aws.askers) == {oncall, platform}
    # The same groups in another order are the same caller.
    await cache(PROD, Asker("alice", ("platform", "sre-oncall")), [EAST], allowed=set())
    await cache(PROD, Asker("alice", ("sre-oncall", "platform")), [EAST], allowed=set())
    assert len(aws.scripts) == 3


async def test_zero_age_never_reuses():
    aws = FakeAws()
    cache = ReadCache(aws, max_age_s=0)
    await cache(PROD, ALICE, [EAST], allowed=set())
    await cache(PROD, ALICE, [EAST], allowed=set())
    assert len(aws.scripts) == 2


async def test_a_failed_read_is_asked_again():
    aws = FakeAws(fail={"us-west-2"})
    cache = ReadCache(aws, max_age_s=60)
    first = await cache(PROD, ALICE, [EAST, WEST], allowed=set())
    assert first[1].error is not None
    await cache(PROD, ALICE, [EAST, WEST], allowed=set())
    assert aws.scripts == [["us-east-1", "us-west-2"], ["us-west-2"]]


async def test_identical_reads_in_flight_share_one_script():
    aws = FakeAws(delay=0.1)
    cache = ReadCache(aws, max_age_s=0)  # nothing kept: only the sharing is at work
    answers = await asyncio.gather(*(cache(PROD, ALICE, [EAST], allowed=set()) for _ in range(5)))
    assert len(aws.scripts) == 1 and cache.shared == 4
    assert all(a[0].result == answers[0][0].result for a in answers)


async def test_one_waiter_giving_up_does_not_cancel_the_script_for_the_others():
    aws = FakeAws(delay=0.2)
    cache = ReadCache(aws, max_age_s=60)
    impatient = asyncio.ensure_future(cache(PROD, ALICE, [EAST], allowed=set()))
    await asyncio.sleep(0.01)
    patient = asyncio.ensure_future(cache(PROD, ALICE, [EAST], allowed=set()))
    await asyncio.sleep(0.01)
    impatient.cancel()
    [result] = await patient
    assert result.ok and len(aws.scripts) == 1
    with pytest.raises(asyncio.CancelledError):
        await impatient


async def test_the_model_path_and_the_catalogue_path_do_not_share_results():
    # allowed=None (a model's read) is redacted differently from the catalogue's reads.
    aws = FakeAws()
    cache = ReadCache(aws, max_age_s=60)
    await cache(PROD, ALICE, [EAST], allowed=set())
    await cache(PROD, ALICE, [EAST], allowed=None)
    assert len(aws.scripts) == 2


async def test_the_cache_holds_at_most_its_entries():
    aws = FakeAws()
    cache = ReadCache(aws, max_age_s=60, max_entries=3)
    for region in ["us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1"]:
        read = Read(service="ec2", operation="DescribeVpcs", region=region)
        await cache(PROD, ALICE, [read], allowed=set())
    assert len(cache) == 3


async def test_a_script_nobody_waits_for_any_more_is_cancelled():
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def hung(account, asker, reads, *, allowed=None, fresh=True):
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return []

    cache = ReadCache(hung, max_age_s=60)
    asking = [asyncio.ensure_future(cache(PROD, ALICE, [EAST], allowed=set())) for _ in range(2)]
    await started.wait()
    asking[0].cancel()
    await asyncio.sleep(0.01)
    assert not cancelled.is_set()  # the other request still waits for it
    asking[1].cancel()
    await asyncio.wait_for(cancelled.wait(), 1)
    assert cache.scripts_sent == 1
    # The next request sends a script of its own.
    aws = FakeAws()
    cache._run = aws
    [result] = await cache(PROD, ALICE, [EAST], allowed=set())
    assert result.ok and len(aws.scripts) == 1
