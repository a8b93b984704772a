"""Organization scale on the sandbox: a bounded session pool, a bounded fan-out whose deadlines
start with each account's turn, and follow-ups answered from recent reads."""

from __future__ import annotations

import asyncio

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from opsagent.access import AccountSlots, Asker, Read, ReadCache
from opsagent.graph.context import Context
from opsagent.graph.graph import build_graph
from opsagent.graph.planner import rule_planner
from opsagent.registry import load_registry
from tests.conftest import sandbox_pool

WORKLOADS = ["222222222222", "333333333333", "444444444444"]
STAGING = "333333333333"


@pytest.fixture(scope="module")
def registry(sandbox):
    return load_registry(sandbox.registry_path)


def _vpcs(region: str = "us-east-1") -> list[Read]:
    return [Read(service="ec2", operation="DescribeVpcs", region=region)]


async def test_the_pool_keeps_at_most_its_cap_and_every_caller_still_gets_answers(
    sandbox, registry
):
    pool = sandbox_pool(sandbox, max_sessions=2)
    try:
        for user in ["alice", "bob", "carol"]:
            for account_id in WORKLOADS:
                [result] = await pool.run_reads(registry.get(account_id), Asker(user), _vpcs())
                assert result.ok, result.error
                assert len(pool) <= 2
        assert pool.evicted == 9 - 2
        # The credentials of evicted sessions are dropped too: memory follows the cap.
        assert pool.credentials.cached_count <= 2
    finally:
        await pool.aclose()


async def test_a_new_caller_per_request_does_not_grow_the_pool(sandbox, registry):
    """The attack of the issue: a new user-id header per request, each a new session."""
    pool = sandbox_pool(sandbox, max_sessions=5)
    try:
        production = registry.get("222222222222")
        for n in range(20):
            [result] = await pool.run_reads(production, Asker(f"visitor-{n}"), _vpcs())
            assert result.ok
        assert len(pool) == 5 and pool.credentials.cached_count <= 5
    finally:
        await pool.aclose()


async def test_idle_sessions_are_closed_with_no_question_asked_and_reopen_on_use(sandbox, registry):
    pool = sandbox_pool(sandbox, idle_seconds=0.3)
    try:
        production = registry.get("222222222222")
        await pool.run_reads(production, Asker("alice"), _vpcs())
        assert len(pool) == 1
        await asyncio.sleep(1.0)  # the sweeper looks every idle_seconds / 2
        assert len(pool) == 0 and pool.evicted == 1
        [again] = await pool.run_reads(production, Asker("alice"), _vpcs())
        assert again.ok
    finally:
        await pool.aclose()


async def test_accounts_wait_their_turn_and_each_deadline_starts_with_its_turn(sandbox, registry):
    """One account in flight at a time, each taking 0.6 s, with a 1.5 s deadline: all three
    answer (2 s in all). Had the deadlines started with the question, the last would not."""
    pool = sandbox_pool(sandbox)
    slots = AccountSlots(1)

    async def slow_reads(account, asker, reads, *, allowed=None, fresh=True):
        await asyncio.sleep(0.6)  # the real server's latency, scaled down
        return await pool.run_reads(account, asker, reads, allowed=allowed)

    context = Context(
        registry=registry,
        run_reads=slow_reads,
        planner=rule_planner,
        user="alice",
        account_timeout=1.5,
        account_slots=slots,
    )
    events = []
    try:
        async for mode, chunk in build_graph().astream(
            {"question": "How many VPCs are in each account?"},
            context=context,
            stream_mode=["custom", "values"],
        ):
            if mode == "custom":
                events.append(chunk)
            else:
                answer = chunk.get("answer")
    finally:
        await pool.aclose()
    assert [r.status for r in answer.results] == ["ok", "ok", "ok"], answer.text
    assert slots.most_in_flight == 1 and slots.in_flight == 0
    order = [e["event"] for e in events if e["event"].startswith("account_")]
    assert order == ["account_started", "account_finished"] * 3


async def test_a_follow_up_that_narrows_reuses_the_reads_and_fresh_reads_again(
    sandbox, registry, truth
):
    pool = sandbox_pool(sandbox)
    cache = ReadCache(pool.run_reads, max_age_s=300)
    graph = build_graph(InMemorySaver())
    base = Context(registry=registry, run_reads=cache, planner=rule_planner, user="alice")

    async def ask(question: str, **options) -> object:
        context = Context(**{**base.__dict__, **options})
        config = {"configurable": {"thread_id": "narrowing"}}
        state = await graph.ainvoke({"question": question}, config, context=context)
        return state["answer"]

    try:
        sandbox.scripts.clear()
        first = await ask("List EC2 instances in staging")
        assert len(sandbox.scripts) == 1 and "reused" not in first.text
        stopped = await ask("only the stopped ones")
        assert len(sandbox.scripts) == 1  # no new script: the rows were already read
        instances = truth.ec2_instances(STAGING)
        expected = {i for i, state in instances.items() if state == "stopped"}
        assert {r.id for r in stopped.resources} == expected
        [result] = stopped.results
        assert result.reused and result.read_at == first.results[0].read_at
        assert "reused from an earlier question" in stopped.text
        regrouped = await ask("and by region?")
        assert len(sandbox.scripts) == 1 and regrouped.results[0].reused
        again = await ask("only the stopped ones", fresh=True)
        assert len(sandbox.scripts) == 2 and not again.results[0].reused
        assert "reused" not in again.text
    finally:
        await pool.aclose()
