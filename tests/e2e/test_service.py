"""The HTTP service on the embedded sandbox: streaming, JSON, threads, bad input, /docs.

One real `opsagent serve` process (uvicorn on 127.0.0.1) for the module, with SQLite
checkpoints in a temporary directory, spoken to with httpx and httpx-sse.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from opsagent.service.http.schemas import InvocationResponse, PingResponse, ThreadResponse
from tests.service_helpers import (
    ALL_ACCOUNTS,
    DEVELOPMENT,
    OPSAGENT,
    PRODUCTION,
    SESSION_HEADER,
    STAGING,
    THREAD_HEADER,
    USER_HEADER,
    ServiceProcess,
    ask,
    clean_env,
    sandbox_env,
    stream,
)

WORKLOAD = {PRODUCTION, STAGING, DEVELOPMENT}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    workdir = tmp_path_factory.mktemp("service")
    env = sandbox_env(f"sqlite:///{workdir}/checkpoints.sqlite", OPSAGENT_SSE_PING_SECONDS="1")
    with ServiceProcess(env, workdir) as proc:
        yield proc


@pytest.fixture
async def client(service: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=service.url, timeout=60) as http:
        yield http


# ----------------------------------------------------------------------------- streaming


async def test_all_accounts_stream_in_order(client: httpx.AsyncClient) -> None:
    events = await stream(client, ALL_ACCOUNTS)
    names = [name for name, _ in events]

    assert names[0] == "thread" and names[1] == "plan"
    assert names[-2:] == ["answer", "done"]
    thread_id = events[0][1]["thread_id"]
    plan = events[1][1]
    assert set(plan["accounts"]) == WORKLOAD
    assert plan["queries"][0]["resource_type"] == "s3:bucket"

    started = [data["account_id"] for name, data in events if name == "account_started"]
    finished = {
        data["account_id"]: (i, data)
        for i, (name, data) in enumerate(events)
        if name == "account_finished"
    }
    assert sorted(started) == sorted(WORKLOAD) and set(finished) == WORKLOAD
    for account in WORKLOAD:  # each account starts before it finishes
        assert names.index("account_started") <= finished[account][0]
        start_at = next(
            i
            for i, (n, d) in enumerate(events)
            if n == "account_started" and d["account_id"] == account
        )
        assert start_at < finished[account][0]
    answer_at = names.index("answer")
    assert all(i < answer_at for i, _ in finished.values())  # every account before the answer
    for _, data in finished.values():
        assert data["status"] == "ok", data
        assert set(data) == {"account_id", "alias", "status", "count", "elapsed_ms", "error"}

    answer = events[answer_at][1]
    InvocationResponse.model_validate({"thread_id": thread_id, **answer})  # the documented shape
    assert {a["account_id"] for a in answer["accounts"]} == WORKLOAD
    assert sum(a["count"] for a in answer["accounts"]) == len(answer["resources"]) > 0
    assert {finished[a["account_id"]][1]["count"] for a in answer["accounts"]} == {
        a["count"] for a in answer["accounts"]
    }
    assert events[-1][1] == {"thread_id": thread_id, "status": "ok"}


async def test_stream_answer_is_the_cli_json(client: httpx.AsyncClient, tmp_path: Path) -> None:
    events = await stream(client, ALL_ACCOUNTS, fresh=True)  # read now, as the CLI's process
    answer = dict(events)["answer"]
    cli = await asyncio.create_subprocess_exec(
        OPSAGENT,
        "ask",
        "--json",
        ALL_ACCOUNTS,
        cwd=tmp_path,
        env=clean_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(cli.communicate(), 180)
    assert cli.returncode == 0, stderr.decode()
    expected = json.loads(stdout)

    def comparable(doc: dict) -> dict:
        doc = json.loads(json.dumps(doc))
        for account in doc["accounts"]:
            account.pop("elapsed_ms")
            account.pop("read_at")  # when each side read it
        # The CLI seeds its own sandbox: generated ids differ, names and counts do not.
        doc["resources"] = sorted((r["account_id"], r["name"]) for r in doc["resources"])
        return doc

    assert set(answer) == set(expected)
    assert comparable(answer) == comparable(expected)


async def test_json_mode_without_the_accept_header(client: httpx.AsyncClient) -> None:
    response = await ask(client, ALL_ACCOUNTS)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    InvocationResponse.model_validate(body)
    assert response.headers[THREAD_HEADER] == body["thread_id"]
    uuid.UUID(body["thread_id"])  # a new thread gets a UUID
    assert {a["account_id"] for a in body["accounts"]} == WORKLOAD
    assert body["refusal"] is None and body["answer"]


async def test_question_key_works_like_prompt(client: httpx.AsyncClient) -> None:
    response = await ask(
        client, "How many RDS instances are running in each account?", key="question"
    )
    assert response.status_code == 200, response.text
    assert response.json()["plan"]["queries"][0]["resource_type"] == "rds:db-instance"


async def test_ping_shape(client: httpx.AsyncClient) -> None:
    first = (await client.get("/ping")).json()
    second = (await client.get("/ping")).json()
    PingResponse.model_validate(first)
    assert first == {"status": "Healthy", "time_of_last_update": first["time_of_last_update"]}
    assert isinstance(first["time_of_last_update"], int)
    # The timestamp is when the status last changed, not "now": idle pings repeat it.
    assert second == first


# ----------------------------------------------------------------------------- threads


async def test_follow_ups_in_one_thread(client: httpx.AsyncClient) -> None:
    first = await ask(client, "List EC2 instances in production")
    assert first.status_code == 200, first.text
    thread_id = first.json()["thread_id"]
    assert first.json()["plan"]["accounts"] == [PRODUCTION]

    staging = await ask(client, "what about staging?", thread_id=thread_id)
    assert staging.status_code == 200, staging.text
    plan = staging.json()["plan"]
    assert plan["accounts"] == [STAGING]
    assert [q["resource_type"] for q in plan["queries"]] == ["ec2:instance"]

    running = await ask(client, "only the running ones", thread_id=thread_id)
    assert running.status_code == 200, running.text
    body = running.json()
    assert body["plan"]["accounts"] == [STAGING]
    assert body["plan"]["queries"][0]["resource_type"] == "ec2:instance"
    assert body["plan"]["queries"][0]["states"] == ["running"]
    assert body["resources"] and all(r["state"] == "running" for r in body["resources"])
    assert all(r["account_id"] == STAGING for r in body["resources"])

    turns = await client.get(f"/threads/{thread_id}")
    assert turns.status_code == 200
    history = ThreadResponse.model_validate(turns.json())
    assert [t.question for t in history.turns] == [
        "List EC2 instances in production",
        "what about staging?",
        "only the running ones",
    ]
    assert history.turns[2].answer == body["answer"]


async def test_agentcore_session_header_is_the_thread(client: httpx.AsyncClient) -> None:
    session = f"agentcore-session-{uuid.uuid4()}"  # 54 characters
    headers = {SESSION_HEADER: session, USER_HEADER: "alice"}
    first = await ask(
        client,
        "List EC2 instances in production",
        headers=headers,
        thread_id="ignored-when-the-header-is-set",
    )
    assert first.status_code == 200, first.text
    assert first.json()["thread_id"] == session and first.headers[THREAD_HEADER] == session

    events = await stream(
        client, "what about staging?", headers={**headers, "Accept": "text/event-stream"}
    )
    assert events[0] == ("thread", {"thread_id": session})
    assert dict(events)["plan"]["accounts"] == [STAGING]
    turns = (await client.get(f"/threads/{session}")).json()["turns"]
    assert [t["question"] for t in turns] == [
        "List EC2 instances in production",
        "what about staging?",
    ]


async def test_unknown_thread_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/threads/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.json()["error"] == "thread_not_found"
    malformed = await client.get("/threads/not%20a%20thread")
    assert malformed.status_code == 422 and malformed.json()["error"] == "invalid_request"


# ----------------------------------------------------------------------------- bad input

LONG = "List EC2 instances in production " + "please " * 400  # over 2,000 characters


@pytest.mark.parametrize(
    ("content", "content_type", "headers", "status", "code"),
    [
        pytest.param({"prompt": ""}, None, {}, 422, "invalid_request", id="empty"),
        pytest.param({"prompt": "   \n\t"}, None, {}, 422, "invalid_request", id="blank"),
        pytest.param({}, None, {}, 422, "invalid_request", id="missing"),
        pytest.param({"questoin": "typo"}, None, {}, 422, "invalid_request", id="wrong-key"),
        pytest.param({"prompt": 42}, None, {}, 422, "invalid_request", id="not-a-string"),
        pytest.param(
            {"prompt": "a", "question": "b"}, None, {}, 422, "invalid_request", id="two-questions"
        ),
        pytest.param(["List EC2"], None, {}, 422, "invalid_request", id="array-body"),
        pytest.param({"prompt": LONG}, None, {}, 413, "question_too_long", id="too-long"),
        pytest.param({"prompt": "x" * 70_000}, None, {}, 413, "body_too_large", id="huge-body"),
        pytest.param(
            b'{"prompt": "List EC2', "application/json", {}, 400, "invalid_json", id="not-json"
        ),
        pytest.param(b"", "application/json", {}, 422, "invalid_request", id="empty-body"),
        pytest.param(
            b"prompt=List+EC2",
            "application/x-www-form-urlencoded",
            {},
            415,
            "unsupported_media_type",
            id="form",
        ),
        pytest.param(
            b"List EC2 instances", "text/plain", {}, 415, "unsupported_media_type", id="text"
        ),
        pytest.param(
            b"<prompt>List EC2</prompt>",
            "application/xml",
            {},
            415,
            "unsupported_media_type",
            id="xml",
        ),
        pytest.param(b'{"prompt": "List EC2"', "", {}, 400, "invalid_json", id="untyped-not-json"),
        pytest.param(
            {"prompt": "List EC2 instances in production"},
            None,
            {SESSION_HEADER: "too-short"},
            400,
            "invalid_session_id",
            id="short-session",
        ),
        pytest.param(
            {"prompt": "List EC2 instances in production", "thread_id": "a b#c"},
            None,
            {},
            422,
            "invalid_request",
            id="bad-thread-id",
        ),
        pytest.param(
            {"prompt": "List EC2 instances in account narnia"},
            None,
            {},
            422,
            "unknown_account",
            id="unknown-account",
        ),
        pytest.param(
            {"prompt": "Delete every S3 bucket in production"},
            None,
            {},
            403,
            "read_only",
            id="read-only",
        ),
        pytest.param(
            {"prompt": "what is the meaning of life"},
            None,
            {},
            422,
            "unsupported",
            id="unsupported",
        ),
    ],
)
@pytest.mark.parametrize("accept", ["application/json", "text/event-stream"])
async def test_bad_input_is_a_readable_4xx(
    client: httpx.AsyncClient,
    content: object,
    content_type: str | None,
    headers: dict[str, str],
    status: int,
    code: str,
    accept: str,
) -> None:
    request_headers = {"Accept": accept, **headers}
    if isinstance(content, bytes):
        if content_type:
            request_headers["Content-Type"] = content_type
        response = await client.post("/invocations", content=content, headers=request_headers)
    else:
        response = await client.post("/invocations", json=content, headers=request_headers)

    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == code
    assert isinstance(body["message"], str) and len(body["message"]) > 10
    if code == "unknown_account":
        assert "narnia" in body["message"] and "Production" in body["message"]
        assert body["answer"]["refusal"]["kind"] == "unknown_account"
    if code == "read_only":
        assert body["answer"]["refusal"]["kind"] == "read_only"


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "application/octet-stream",
        "application/json; charset=utf-8",
        "application/vnd.api+json",
    ],
)
async def test_untyped_and_json_bodies_are_read_as_json(
    client: httpx.AsyncClient, content_type: str | None
) -> None:
    # InvokeAgentRuntime's contentType is optional: AgentCore may pass the payload untyped.
    headers = {"Content-Type": content_type} if content_type else {}
    response = await client.post(
        "/invocations", headers=headers, content=b'{"prompt": "List EC2 instances in production"}'
    )
    assert response.status_code == 200, response.text
    assert response.json()["plan"]["accounts"] == [PRODUCTION]


async def test_chunked_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the guard counts
        yield b'{"prompt": "'
        for _ in range(80):
            yield b"x" * 1024
        yield b'"}'

    response = await client.post(
        "/invocations", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"


async def test_wrong_method_and_path_are_json(client: httpx.AsyncClient) -> None:
    method = await client.get("/invocations")
    assert method.status_code == 405 and method.json()["error"] == "method_not_allowed"
    missing = await client.get("/nothing-here")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


async def test_bad_input_leaves_the_service_healthy(client: httpx.AsyncClient) -> None:
    for body in (b"{", b"[]", b'{"prompt": ""}', b"\xff\xfe", b"null", b'"just a string"'):
        response = await client.post(
            "/invocations", content=body, headers={"Content-Type": "application/json"}
        )
        assert 400 <= response.status_code < 500, (body, response.text)
    ping = (await client.get("/ping")).json()
    assert ping["status"] == "Healthy"
    ok = await ask(client, "List EC2 instances in production")
    assert ok.status_code == 200


# ----------------------------------------------------------------------------- /docs


async def test_openapi_documents_the_contract(client: httpx.AsyncClient) -> None:
    assert (await client.get("/docs")).status_code == 200
    spec = (await client.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]

    invocations = spec["paths"]["/invocations"]["post"]
    body_ref = invocations["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body_ref.endswith("/InvocationRequest")
    assert set(schemas["InvocationRequest"]["properties"]) == {
        "prompt",
        "question",
        "thread_id",
        "fresh",
    }
    ok = invocations["responses"]["200"]["content"]
    assert ok["application/json"]["schema"]["$ref"].endswith("/InvocationResponse")
    assert "account_finished" in ok["text/event-stream"]["schema"]["description"]
    for status in ("400", "401", "403", "409", "413", "415", "422"):
        error = invocations["responses"][status]["content"]["application/json"]["schema"]
        assert error["$ref"].endswith("/ErrorResponse")
    params = {p["name"] for p in invocations["parameters"]}
    assert {SESSION_HEADER, USER_HEADER} <= params

    ping = spec["paths"]["/ping"]["get"]["responses"]["200"]["content"]["application/json"]
    assert ping["schema"]["$ref"].endswith("/PingResponse")
    assert set(schemas["PingResponse"]["required"]) == {"status", "time_of_last_update"}
    threads = spec["paths"]["/threads/{thread_id}"]["get"]["responses"]
    assert threads["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ThreadResponse"
    )
    for status in ("401", "404", "422"):  # every error, the same documented shape
        schema = threads[status]["content"]["application/json"]["schema"]
        assert schema["$ref"].endswith("/ErrorResponse")
    assert "HTTPValidationError" not in schemas  # FastAPI's own 422 shape is never sent


async def test_a_follow_up_reuses_recent_reads_and_fresh_reads_again(
    client: httpx.AsyncClient,
) -> None:
    thread = f"reuse-{uuid.uuid4()}"

    async def post(question: str, **extra: object) -> dict:
        body = {"prompt": question, "thread_id": thread, **extra}
        response = await client.post("/invocations", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    first = await post("List EC2 instances in staging", fresh=True)
    [account] = first["accounts"]
    assert account["reused"] is False and account["read_at"]
    narrowed = await post("only the stopped ones")
    [again] = narrowed["accounts"]
    assert again["reused"] is True and again["read_at"] == account["read_at"]
    assert "reused from an earlier question" in narrowed["answer"]
    assert {r["state"] for r in narrowed["resources"]} <= {"stopped"}
    fresh = await post("only the stopped ones", fresh=True)
    assert fresh["accounts"][0]["reused"] is False
    assert fresh["accounts"][0]["read_at"] > account["read_at"]
    assert "reused" not in fresh["answer"]
    assert fresh["resources"] == narrowed["resources"]
