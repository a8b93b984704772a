"""The conversation checkpointer, chosen by one setting: OPSAGENT_CHECKPOINT_URL.

    sqlite:///relative/path.sqlite   sqlite:////absolute/path.sqlite   (the default)
    postgresql://user@host:5432/db   several replicas sharing threads; tables set up on start
    dynamodb://table?region=us-east-1[&endpoint_url=...][&create=true][&ttl_seconds=N]
             [&s3_bucket=...]        AgentCore deployments (langgraph-checkpoint-aws)
    memory://                        nothing survives a restart (tests, one-off runs)

The graph state holds our pydantic models (Plan, Refusal, AccountResult, Answer).
LangGraph's JsonPlusSerializer revives them by module and class name and, unless a type is
allow-listed, logs "Deserializing unregistered type ... will be blocked in a future version".
Every saver here gets a serializer whose allow-list is exactly the models the state can hold,
found by walking the state's type hints, so a type added to the state later is covered too.

The models live in ``opsagent.graph.models``; threads stored before they moved there hold
them as ``opsagent.graph.state``, which still imports them under their names. The allow-list
names each model under both paths, so those threads stay readable, silently.
"""

from __future__ import annotations

import asyncio
import typing
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde.base import maybe_add_typed_methods
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from pydantic import BaseModel

from opsagent.service.runtime import ConfigurationError

SUPPORTED = (
    "sqlite:///path, postgresql://user@host:port/db, "
    "dynamodb://table?region=REGION[&endpoint_url=URL][&create=true], memory://"
)


# Where the domain models were before graph/models.py: the module path older checkpoints
# name them by. graph/state.py keeps importing them, so that path still resolves.
LEGACY_MODEL_MODULE = "opsagent.graph.state"


def state_model_types() -> set[tuple[str, str]]:
    """(module, class) of every pydantic model the graph state can hold, however nested,
    under its module and, for our domain models, under the legacy path too."""
    from opsagent.graph import models
    from opsagent.graph.state import AgentState, WorkerInput

    found: set[tuple[str, str]] = set()
    seen: set[int] = set()

    def walk(tp: Any) -> None:
        if id(tp) in seen:
            return
        seen.add(id(tp))
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            found.add((tp.__module__, tp.__name__))
            for field in tp.model_fields.values():
                walk(field.annotation)
            return
        if typing.is_typeddict(tp):
            for hint in typing.get_type_hints(tp, include_extras=True).values():
                walk(hint)
            return
        for arg in typing.get_args(tp):  # list[X], X | None, Annotated[X, reducer], ...
            walk(arg)

    # WorkerInput travels inside Send packets, which are checkpointed as pending writes.
    walk(AgentState)
    walk(WorkerInput)
    legacy = {(LEGACY_MODEL_MODULE, name) for module, name in found if module == models.__name__}
    return found | legacy


def serializer() -> JsonPlusSerializer:
    """JsonPlusSerializer that revives exactly our state models, silently."""
    return JsonPlusSerializer(allowed_msgpack_modules=sorted(state_model_types()))


def _sqlite_path(url: urllib.parse.SplitResult) -> Path:
    # SQLAlchemy's convention: three slashes then a relative path, four for an absolute one.
    raw = urllib.parse.unquote(url.path)
    if url.netloc or not raw.startswith("/") or raw == "/":
        raise ConfigurationError(
            f"checkpoint URL {url.geturl()!r}: write sqlite:///relative/file.sqlite or "
            "sqlite:////absolute/file.sqlite"
        )
    return Path(raw[1:])


@asynccontextmanager
async def _sqlite(url: urllib.parse.SplitResult, serde: JsonPlusSerializer):
    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    path = _sqlite_path(url)
    await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
    async with aiosqlite.connect(str(path)) as conn:
        saver = AsyncSqliteSaver(conn, serde=serde)
        await saver.setup()
        yield saver


@asynccontextmanager
async def _postgres(url: str, serde: JsonPlusSerializer):
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from psycopg.rows import dict_row
    from psycopg_pool import AsyncConnectionPool

    # A pool, not one connection: concurrent requests do not queue behind one lock, and a
    # connection lost to a database restart is replaced (check) instead of failing forever.
    pool = AsyncConnectionPool(
        conninfo=url,
        min_size=1,
        max_size=10,
        open=False,
        check=AsyncConnectionPool.check_connection,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
    )
    try:
        await pool.open(wait=True, timeout=15)
    except Exception as exc:
        await pool.close()
        raise ConfigurationError(f"cannot reach the checkpoint database: {exc}") from exc
    try:
        saver = AsyncPostgresSaver(pool, serde=serde)  # type: ignore[arg-type]
        await saver.setup()
        yield saver
    finally:
        await pool.close()


def _dynamodb_saver(url: urllib.parse.SplitResult, serde: JsonPlusSerializer):
    from langgraph_checkpoint_aws import DynamoDBSaver

    table = url.netloc
    if not table:
        raise ConfigurationError(
            f"checkpoint URL {url.geturl()!r} names no table: write dynamodb://TABLE?region=..."
        )
    query = dict(urllib.parse.parse_qsl(url.query))
    unknown = set(query) - {"region", "endpoint_url", "create", "ttl_seconds", "s3_bucket"}
    if unknown:
        raise ConfigurationError(
            f"checkpoint URL {url.geturl()!r}: unknown option(s) {', '.join(sorted(unknown))}"
        )
    region = query.get("region")
    endpoint_url = query.get("endpoint_url")
    if query.get("create", "").lower() in {"1", "true", "yes"}:
        _ensure_table(table, region, endpoint_url)
    s3 = {"bucket_name": query["s3_bucket"]} if query.get("s3_bucket") else None
    saver = DynamoDBSaver(
        table_name=table,
        region_name=region,
        endpoint_url=endpoint_url,
        ttl_seconds=int(query["ttl_seconds"]) if query.get("ttl_seconds") else None,
        s3_offload_config=s3,  # type: ignore[arg-type]
    )
    # DynamoDBSaver takes no serde argument and hands its default to the object that does
    # the (de)serializing; put ours in both places.
    saver.serde = maybe_add_typed_methods(serde)
    saver.serializer.serde = saver.serde
    return saver


def _ensure_table(table: str, region: str | None, endpoint_url: str | None) -> None:
    """Create the saver's table (PK/SK strings, on demand) when it does not exist yet."""
    import boto3

    client = boto3.client("dynamodb", region_name=region, endpoint_url=endpoint_url)
    try:
        client.describe_table(TableName=table)
        return
    except client.exceptions.ResourceNotFoundException:
        pass
    client.create_table(
        TableName=table,
        KeySchema=[
            {"AttributeName": "PK", "KeyType": "HASH"},
            {"AttributeName": "SK", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "PK", "AttributeType": "S"},
            {"AttributeName": "SK", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName=table)


@asynccontextmanager
async def open_checkpointer(url: str) -> AsyncIterator[BaseCheckpointSaver]:
    """The saver a checkpoint URL names, ready to use, closed on exit."""
    serde = serializer()
    parsed = urllib.parse.urlsplit(url)
    scheme = parsed.scheme.lower()
    if scheme == "memory":
        from langgraph.checkpoint.memory import InMemorySaver

        yield InMemorySaver(serde=serde)
    elif scheme == "sqlite":
        async with _sqlite(parsed, serde) as saver:
            yield saver
    elif scheme in {"postgresql", "postgres"}:
        async with _postgres(url, serde) as saver:
            yield saver
    elif scheme == "dynamodb":
        yield await asyncio.to_thread(_dynamodb_saver, parsed, serde)
    else:
        raise ConfigurationError(f"unsupported checkpoint URL {url!r}; use one of: {SUPPORTED}")
