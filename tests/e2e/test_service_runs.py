"""Runs in flight: /ping HealthyBusy, one run per thread, disconnect cancels; and JWT auth.

The accounts here hang: the registry is the demo organization's, AssumeRole is answered by
moto's own server on loopback, and the "AWS MCP Server" is a loopback socket that accepts
connections and never answers. Every run therefore stays in flight until it is cancelled,
which makes "busy" and "cancelled" observable without timing guesses: the socket counts
the connections the agent holds open.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import httpx
import pytest
from httpx_sse import aconnect_sse

from tests.service_helpers import (
    ALL_ACCOUNTS,
    PRODUCTION,
    STAGING,
    USER_HEADER,
    Blackhole,
    ServiceProcess,
    bearer,
    clean_env,
    demo_registry,
    moto_server,
    token,
)

SECRET = "test-secret-for-hs256-that-is-long-enough"
GROUPS = {"prod-team": ["production"], "operators": ["all"]}


@pytest.fixture(scope="module")
def blackhole() -> Iterator[Blackhole]:
    hole = Blackhole()
    yield hole
    hole.close()


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, blackhole: Blackhole
) -> Iterator[ServiceProcess]:
    workdir = tmp_path_factory.mktemp("runs")
    registry = workdir / "registry.json"
    registry.write_text(json.dumps(demo_registry(GROUPS)))
    with moto_server() as sts:
        env = clean_env(
            OPSAGENT_REGISTRY=str(registry),
            OPSAGENT_MCP_ENDPOINT=f"http://127.0.0.1:{blackhole.port}/mcp",
            OPSAGENT_CHECKPOINT_URL="memory://",
            OPSAGENT_JWT_SECRET=SECRET,
            OPSAGENT_JWT_AUDIENCE="opsagent",
            OPSAGENT_SSE_PING_SECONDS="1",
            AWS_ENDPOINT_URL_STS=sts,
            AWS_ACCESS_KEY_ID="AKIAIOSFODNN7EXAMPLE",
            AWS_SECRET_ACCESS_KEY="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            AWS_DEFAULT_REGION="us-east-1",
        )
        with ServiceProcess(env, workdir) as proc:
            yield proc


@pytest.fixture
async def client(service: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=service.url, timeout=30) as http:
        yield http


OPERATOR = bearer(token(SECRET, "olivia", ["operators"]))
PROD_ONLY = bearer(token(SECRET, "paul", ["prod-team"]))


async def _ping(client: httpx.AsyncClient) -> dict:
    return (await client.get("/ping")).json()


async def _until(check: Callable[[], bool | Awaitable[bool]], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while True:
            result = check()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return
            await asyncio.sleep(0.05)


async def test_busy_while_a_run_is_in_flight_and_disconnect_cancels_it(
    client: httpx.AsyncClient, blackhole: Blackhole, service: ServiceProcess
) -> None:
    idle = await _ping(client)
    assert idle["status"] == "Healthy"
    before = blackhole.accepted
    thread_id = "cancel-me-" + str(time.time_ns())
    seen: list[str] = []

    async with httpx.AsyncClient(base_url=service.url, timeout=30) as streamer:
        async with aconnect_sse(
            streamer,
            "POST",
            "/invocations",
            json={"prompt": ALL_ACCOUNTS, "thread_id": thread_id},
            headers=OPERATOR,
        ) as source:
            assert source.response.status_code == 200

            async def read() -> None:  # keep reading: leaving the iterator closes the stream
                async for sse in source.aiter_sse():
                    seen.append(sse.event)

            reader = asyncio.create_task(read())
            await _until(lambda: seen.count("account_started") == 3)
            # Every account is now waiting on the hung MCP server.
            await _until(lambda: blackhole.open >= 3)
            busy = await _ping(client)
            assert busy["status"] == "HealthyBusy"
            assert busy["time_of_last_update"] >= idle["time_of_last_update"]
            # One run per thread: a second question in it is refused while this one runs.
            again = await client.post(
                "/invocations",
                headers=OPERATOR,
                json={"prompt": ALL_ACCOUNTS, "thread_id": thread_id},
            )
            assert again.status_code == 409 and again.json()["error"] == "thread_busy"
            await asyncio.sleep(1.5)  # longer than the SSE ping interval: the stream stays up
            assert not reader.done() and "answer" not in seen
            reader.cancel()
        # Leaving the context closes the connection: the client has gone away.

    assert seen[:2] == ["thread", "plan"]
    await _until(lambda: _ping_is(client, "Healthy"))
    await _until(lambda: blackhole.open == 0)  # the agent let go of every connection
    accepted = blackhole.accepted
    assert accepted > before
    await asyncio.sleep(2)
    assert blackhole.accepted == accepted  # and opened no new ones: no orphaned work
    history = await client.get(f"/threads/{thread_id}", headers=OPERATOR)
    assert history.status_code == 404  # the run never reached its answer
    # No "answered" record; the audit record says the question was cancelled.
    records = [json.loads(x) for x in service.log().splitlines() if thread_id in x]
    [audited] = [r for r in records if r["logger"] != "uvicorn.access"]
    assert audited["event"] == "question" and audited["outcome"] == "cancelled"
    assert len(audited["accounts_asked"]) == 3


async def test_json_client_disconnect_cancels_too(
    client: httpx.AsyncClient, blackhole: Blackhole, service: ServiceProcess
) -> None:
    thread_id = "json-cancel-" + str(time.time_ns())
    async with httpx.AsyncClient(base_url=service.url, timeout=30) as asker:
        request = asyncio.create_task(
            asker.post(
                "/invocations",
                headers=OPERATOR,
                json={"prompt": "List EC2 instances in production", "thread_id": thread_id},
            )
        )
        await _until(lambda: _ping_is(client, "HealthyBusy"))
        await _until(lambda: blackhole.open >= 1)
        request.cancel()  # the caller gives up and closes its connection
        with pytest.raises(asyncio.CancelledError):
            await request
    await _until(lambda: _ping_is(client, "Healthy"))
    await _until(lambda: blackhole.open == 0)
    again = await client.get(f"/threads/{thread_id}", headers=OPERATOR)
    assert again.status_code == 404


async def test_a_quiet_stream_gets_keep_alive_pings(
    client: httpx.AsyncClient, blackhole: Blackhole, service: ServiceProcess
) -> None:
    comments: list[str] = []
    async with httpx.AsyncClient(base_url=service.url, timeout=30) as raw:
        async with raw.stream(
            "POST",
            "/invocations",
            json={"prompt": ALL_ACCOUNTS},
            headers={**OPERATOR, "Accept": "text/event-stream"},
        ) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            async with asyncio.timeout(10):
                async for line in response.aiter_lines():
                    if line.startswith(":"):  # an SSE comment: the keep-alive ping
                        comments.append(line)
                        break
    assert comments
    await _until(lambda: _ping_is(client, "Healthy"))


async def test_ping_needs_no_token(client: httpx.AsyncClient) -> None:
    assert (await client.get("/ping")).status_code == 200


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "Authorization"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "Bearer"),
        (bearer("not-a-jwt"), "not valid"),
        (bearer(token("another-secret-entirely-32-bytes", "mallory", ["operators"])), "not valid"),
        (bearer(token(SECRET, "olivia", ["operators"], expires_in=-3600)), "expired"),
        (bearer(token(SECRET, "olivia", ["operators"], audience="someone-else")), "audience"),
    ],
    ids=["missing", "basic", "garbage", "wrong-key", "expired", "wrong-audience"],
)
async def test_bad_tokens_are_401(
    client: httpx.AsyncClient, headers: dict[str, str], reason: str
) -> None:
    response = await client.post("/invocations", json={"prompt": ALL_ACCOUNTS}, headers=headers)
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "unauthorized"
    assert reason in response.json()["message"]
    assert response.headers["www-authenticate"].startswith("Bearer")
    threads = await client.get("/threads/anything", headers=headers)
    assert threads.status_code == 401


async def test_accounts_outside_the_callers_groups_are_403(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/invocations", headers=PROD_ONLY, json={"prompt": "List EC2 instances in staging"}
    )
    assert response.status_code == 403, response.text
    body = response.json()
    assert body["error"] == "forbidden" and STAGING in body["message"]
    assert body["answer"]["refusal"]["kind"] == "forbidden"
    # Which groups would open it (tests/e2e/test_caller_isolation.py: what "all accounts" means).
    assert "your groups (prod-team) do not include it" in body["message"]
    assert "Groups that may: Staging: operators" in body["message"]


async def test_groups_may_arrive_in_the_groups_claim(client: httpx.AsyncClient) -> None:
    plain = bearer(token(SECRET, "paula", ["prod-team"], claim="groups"))
    response = await client.post(
        "/invocations", headers=plain, json={"prompt": "List EC2 instances in staging"}
    )
    assert response.status_code == 403 and response.json()["error"] == "forbidden"


async def test_a_thread_belongs_to_its_first_caller(
    client: httpx.AsyncClient, blackhole: Blackhole
) -> None:
    thread_id = "owned-" + str(time.time_ns())
    # A refusal is a turn too: it makes the thread exist without touching any account.
    first = await client.post(
        "/invocations",
        headers=OPERATOR,
        json={"prompt": "Delete every S3 bucket in production", "thread_id": thread_id},
    )
    assert first.status_code == 403 and first.json()["error"] == "read_only"
    mine = await client.get(f"/threads/{thread_id}", headers=OPERATOR)
    assert mine.status_code == 200 and len(mine.json()["turns"]) == 1
    # To anyone else it does not exist: the same 404 as an id nobody used.
    nobody = await client.get("/threads/never-used-" + str(time.time_ns()), headers=PROD_ONLY)
    theirs = await client.get(f"/threads/{thread_id}", headers=PROD_ONLY)
    assert theirs.status_code == nobody.status_code == 404
    assert theirs.json()["error"] == nobody.json()["error"] == "thread_not_found"
    assert set(theirs.json()) == set(nobody.json()) == {"error", "message"}
    post = await client.post(
        "/invocations",
        headers=PROD_ONLY,
        json={"prompt": f"List EC2 instances in account {PRODUCTION}", "thread_id": thread_id},
    )
    assert post.status_code == 404 and post.json()["error"] == "thread_not_found"


async def test_the_user_header_does_not_override_the_token(
    client: httpx.AsyncClient, service: ServiceProcess
) -> None:
    thread_id = "who-" + str(time.time_ns())
    response = await client.post(
        "/invocations",
        json={"prompt": "Delete every S3 bucket in production", "thread_id": thread_id},
        headers={**OPERATOR, USER_HEADER: "somebody-else"},
    )
    assert response.status_code == 403
    as_owner = await client.get(f"/threads/{thread_id}", headers=OPERATOR)
    assert as_owner.status_code == 200


async def _ping_is(client: httpx.AsyncClient, status: str) -> bool:
    return (await _ping(client))["status"] == status
