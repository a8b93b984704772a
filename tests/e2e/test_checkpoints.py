"""Checkpointers: every backend round-trips the graph's pydantic state silently, and a
thread survives a restart of the service on SQLite, PostgreSQL and DynamoDB (moto).

PostgreSQL is the machine's server (127.0.0.1:5432, trust auth, database `test`; `.ci/run`
starts it). DynamoDB is moto's own server on loopback. Nothing here is mocked.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import boto3
import httpx
import ormsgpack
import psycopg
import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver, empty_checkpoint
from langgraph.checkpoint.serde.event_hooks import register_serde_event_listener
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.types import Send

from opsagent.graph.models import AccountResult, Answer, Plan, Refusal, Resource, ResourceQuery
from opsagent.service.checkpoints import open_checkpointer, serializer, state_model_types
from opsagent.service.runtime import ConfigurationError
from tests.service_helpers import (
    POSTGRES_URL,
    PRODUCTION,
    STAGING,
    ServiceProcess,
    ask,
    moto_server,
    sandbox_env,
)

SERDE_WARNINGS = ("unregistered type", "Blocked deserialization", "not in allowed_msgpack")


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(autouse=True)
def fake_aws_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    # moto accepts any keys; boto3 needs some. Only ever sent to loopback.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


def dynamodb_url(endpoint: str, table: str) -> str:
    return f"dynamodb://{table}?region=us-east-1&endpoint_url={endpoint}&create=true"


def _state() -> dict:
    plan = Plan(
        accounts=[PRODUCTION],
        queries=[ResourceQuery(resource_type="ec2:instance", states=["running"])],
        summary="running EC2 instances in production",
    )
    result = AccountResult(
        account_id=PRODUCTION,
        alias="production",
        status="ok",
        elapsed_ms=12,
        rows=[
            Resource(
                account_id=PRODUCTION,
                account_alias="production",
                region="us-east-1",
                resource_type="ec2:instance",
                id="i-0abc",
                name="web",
                state="running",
                tags={"team": "web"},
                details={"type": "t3.micro"},
            )
        ],
    )
    answer = Answer(
        question="List running EC2 instances in production",
        text="1 running EC2 instance in production.",
        plan=plan,
        results=[result],
    )
    refusal = Refusal(kind="read_only", message="The agent only reads.")
    return {
        "question": answer.question,
        "plan": plan,
        "refusal": refusal,
        "results": [result],
        "answer": answer,
        "turns": [{"question": answer.question, "answer": answer.text, "plan": plan.model_dump()}],
    }


@pytest.fixture(params=["memory", "sqlite", "postgres", "dynamodb"])
async def saver(
    request: pytest.FixtureRequest, tmp_path: Path, dynamodb: str
) -> AsyncIterator[BaseCheckpointSaver]:
    url = {
        "memory": "memory://",
        "sqlite": f"sqlite:///{tmp_path}/nested/dir/checkpoints.sqlite",
        "postgres": POSTGRES_URL,
        "dynamodb": dynamodb_url(dynamodb, "opsagent-roundtrip"),
    }[request.param]
    async with open_checkpointer(url) as opened:
        yield opened


async def test_state_round_trips_without_serde_warnings(
    saver: BaseCheckpointSaver, caplog: pytest.LogCaptureFixture
) -> None:
    # The serde's own events, unlike its log warnings, are not deduplicated per process.
    events: list[dict] = []
    unregister = register_serde_event_listener(lambda event: events.append(dict(event)))
    state = _state()
    thread = {"configurable": {"thread_id": f"rt-{uuid.uuid4()}", "checkpoint_ns": ""}}
    checkpoint = empty_checkpoint()
    versions = {name: saver.get_next_version(None, None) for name in state}
    checkpoint["channel_values"] = state
    checkpoint["channel_versions"] = versions
    send = Send(
        "account_worker", {"account_id": PRODUCTION, "plan": state["plan"], "user": "alice"}
    )

    try:
        with caplog.at_level(logging.DEBUG, logger="langgraph"):
            saved = await saver.aput(
                thread, checkpoint, {"source": "loop", "step": 1, "user": "alice"}, versions
            )
            await saver.aput_writes(saved, [("__pregel_tasks", send)], task_id="task-1")
            loaded = await saver.aget_tuple(
                {"configurable": {"thread_id": thread["configurable"]["thread_id"]}}
            )
    finally:
        unregister()

    assert loaded is not None
    values = loaded.checkpoint["channel_values"]
    for key in ("plan", "refusal", "answer"):
        assert type(values[key]) is type(state[key]) and values[key] == state[key]
    assert values["results"] == state["results"]
    assert values["answer"].results[0].rows[0].details == {"type": "t3.micro"}
    assert values["turns"] == state["turns"]
    assert loaded.metadata["user"] == "alice"
    [(_, channel, pending)] = loaded.pending_writes
    assert channel == "__pregel_tasks" and isinstance(pending, Send)
    assert pending.arg["plan"] == state["plan"] and isinstance(pending.arg["plan"], Plan)
    noisy = [
        r.getMessage() for r in caplog.records if any(w in r.getMessage() for w in SERDE_WARNINGS)
    ]
    assert noisy == []
    assert events == []  # no "unregistered type allowed", no "blocked"


def test_allow_list_is_every_state_model() -> None:
    names = {name for _, name in state_model_types()}
    assert {"Plan", "ResourceQuery", "Refusal", "AccountResult", "Resource", "Answer"} <= names
    assert all(module.startswith("opsagent.") for module, _ in state_model_types())


def _as_stored_before_the_move(payload: bytes) -> bytes:
    """A msgpack checkpoint value as it was written while the models lived in
    opsagent.graph.state: JsonPlusSerializer stores a pydantic model as an ext whose payload
    is (module, class name, fields, method); put the old module path back in each."""
    from langgraph.checkpoint.serde.jsonplus import EXT_PYDANTIC_V2

    def hook(code: int, data: bytes) -> ormsgpack.Ext:
        if code != EXT_PYDANTIC_V2:
            return ormsgpack.Ext(code, data)
        module, name, *rest = ormsgpack.unpackb(
            data, ext_hook=hook, option=ormsgpack.OPT_NON_STR_KEYS
        )
        assert module == "opsagent.graph.models"
        return ormsgpack.Ext(
            code,
            ormsgpack.packb(
                ["opsagent.graph.state", name, *rest], option=ormsgpack.OPT_NON_STR_KEYS
            ),
        )

    legacy = ormsgpack.packb(
        ormsgpack.unpackb(payload, ext_hook=hook, option=ormsgpack.OPT_NON_STR_KEYS),
        option=ormsgpack.OPT_NON_STR_KEYS,
    )
    assert b"opsagent.graph.state" in legacy and b"opsagent.graph.models" not in legacy
    return legacy


def test_checkpoints_stored_under_the_old_module_path_still_revive(
    caplog: pytest.LogCaptureFixture,
) -> None:
    state = _state()
    kind, payload = serializer().dumps_typed(state)
    stored = (kind, _as_stored_before_the_move(payload))

    events: list[dict] = []
    unregister = register_serde_event_listener(lambda event: events.append(dict(event)))
    try:
        with caplog.at_level(logging.DEBUG, logger="langgraph"):
            revived = serializer().loads_typed(stored)
        assert events == []  # neither "unregistered type allowed" nor "blocked"
        assert not any(w in r.getMessage() for r in caplog.records for w in SERDE_WARNINGS)
        # Without the old path in the allow-list the same bytes come back as plain dicts:
        # the compatibility entries are what keeps old threads working.
        only_new = JsonPlusSerializer(
            allowed_msgpack_modules=sorted(
                t for t in state_model_types() if t[0] != "opsagent.graph.state"
            )
        )
        unrevived = only_new.loads_typed(stored)
    finally:
        unregister()

    for key in ("plan", "refusal", "answer"):
        assert type(revived[key]) is type(state[key]) and revived[key] == state[key]
    assert revived["results"] == state["results"] and revived["turns"] == state["turns"]
    assert isinstance(unrevived["answer"], dict)
    assert {(e["kind"], e["module"]) for e in events} == {
        ("msgpack_blocked", "opsagent.graph.state")
    }


@pytest.mark.parametrize(
    "url",
    [
        "redis://localhost",
        "sqlite://relative.sqlite",
        "dynamodb://",
        "dynamodb://table?colour=blue",
        "nonsense",
    ],
)
async def test_unusable_urls_say_what_to_write(url: str) -> None:
    with pytest.raises(ConfigurationError) as error:
        async with open_checkpointer(url):
            pass
    assert "://" in str(error.value)


# ----------------------------------------------------------------------------- restarts


async def _thread_survives_restart(
    checkpoint_url: str | None, workdir: Path, **extra_env: str
) -> str:
    env = sandbox_env(checkpoint_url, **extra_env)
    service = ServiceProcess(env, workdir)
    with service:
        async with httpx.AsyncClient(base_url=service.url, timeout=120) as client:
            first = await ask(client, "List EC2 instances in production")
            assert first.status_code == 200, first.text
            thread_id = first.json()["thread_id"]
            assert first.json()["plan"]["accounts"] == [PRODUCTION]
    assert service.stopped_cleanly, service.log()

    restarted = ServiceProcess(env, workdir)  # a new process, same checkpoint store
    with restarted:
        async with httpx.AsyncClient(base_url=restarted.url, timeout=120) as client:
            follow_up = await ask(client, "what about staging?", thread_id=thread_id)
            assert follow_up.status_code == 200, follow_up.text
            plan = follow_up.json()["plan"]
            assert plan["accounts"] == [STAGING]
            assert [q["resource_type"] for q in plan["queries"]] == ["ec2:instance"]
            turns = (await client.get(f"/threads/{thread_id}")).json()["turns"]
            assert [t["question"] for t in turns] == [
                "List EC2 instances in production",
                "what about staging?",
            ]
    for log in (service.log(), restarted.log()):
        assert not any(w in log for w in SERDE_WARNINGS), log
    return thread_id


async def test_sqlite_thread_survives_a_restart(tmp_path: Path) -> None:
    # The default setting, sqlite:///.opsagent/checkpoints.sqlite, relative to the working dir.
    await _thread_survives_restart(None, tmp_path)
    assert (tmp_path / ".opsagent" / "checkpoints.sqlite").stat().st_size > 0


async def test_postgres_thread_survives_a_restart(tmp_path: Path) -> None:
    thread_id = await _thread_survives_restart(POSTGRES_URL, tmp_path)
    async with await psycopg.AsyncConnection.connect(POSTGRES_URL) as conn:
        cursor = await conn.execute(
            "SELECT count(*) FROM checkpoints WHERE thread_id = %s", (thread_id,)
        )
        row = await cursor.fetchone()
    assert row is not None and row[0] >= 2


async def test_dynamodb_thread_survives_a_restart(tmp_path: Path, dynamodb: str) -> None:
    table = f"opsagent-{uuid.uuid4().hex[:8]}"
    thread_id = await _thread_survives_restart(
        dynamodb_url(dynamodb, table),
        tmp_path,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
    )
    client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=dynamodb)
    items = client.query(
        TableName=table,
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": f"CHECKPOINT_{thread_id}"}},
    )
    assert items["Count"] >= 2
