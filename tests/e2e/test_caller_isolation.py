"""Who asks decides what they see: over HTTP, with tokens on, against the session sandbox.

A caller limited by their groups never receives a row, an id or a name of another account,
in any stream event or message; "all accounts" means all of theirs; a denial says which
account, that their groups do not include it and which groups would; another user's thread
does not exist for them; and every question leaves one audit record.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import EXAMPLE_QUESTIONS, check_example_answer
from tests.service_helpers import (
    DEVELOPMENT,
    PRODUCTION,
    STAGING,
    ServiceProcess,
    bearer,
    demo_registry,
    stream,
    token,
)

SECRET = "isolation-test-secret-that-is-long-enough-for-hs256"
CENTRAL = "111111111111"
GROUPS = {"staging-team": ["staging"], "prod-team": ["production"], "operators": ["all"]}
STAGING_USER = bearer(token(SECRET, "sam", ["staging-team"], claim="groups"))
OPERATOR = bearer(token(SECRET, "olivia", ["operators"], claim="groups"))
NO_GROUPS = bearer(token(SECRET, "nora", [], claim="groups"))
OUTSIDERS = bearer(token(SECRET, "otto", ["contractors"], claim="groups"))


@pytest.fixture(scope="module")
def audit_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("audit") / "audit.jsonl"


@pytest.fixture(scope="module")
def service(
    sandbox, external_env, tmp_path_factory: pytest.TempPathFactory, audit_file: Path
) -> Iterator[ServiceProcess]:
    workdir = tmp_path_factory.mktemp("isolation")
    registry = workdir / "registry.json"
    registry.write_text(json.dumps(demo_registry(GROUPS)))
    env = {
        **external_env,
        "OPSAGENT_REGISTRY": str(registry),
        "OPSAGENT_MCP_ENDPOINT": sandbox.mcp_endpoint,
        "OPSAGENT_JWT_SECRET": SECRET,
        "OPSAGENT_JWT_GROUPS_CLAIM": "groups",
        "OPSAGENT_AUDIT_LOG": str(audit_file),
    }
    with ServiceProcess(env, workdir) as proc:
        yield proc


@pytest.fixture
async def client(service: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=service.url, timeout=60) as http:
        yield http


def _audit(audit_file: Path, question: str) -> dict:
    records = [json.loads(line) for line in audit_file.read_text().splitlines()]
    found = [r for r in records if r["event"] == "question" and r["question"] == question]
    assert len(found) == 1, records
    return found[0]


@pytest.mark.parametrize("question", EXAMPLE_QUESTIONS)
async def test_the_five_questions_with_a_token_whose_groups_open_every_account(
    client: httpx.AsyncClient, truth, question: str
) -> None:
    """Enterprise identity (a token, groups mapped to accounts) answers what the open
    service answers, checked against moto."""
    response = await client.post("/invocations", headers=OPERATOR, json={"prompt": question})
    assert response.status_code == 200, response.text
    check_example_answer(question, response.json(), truth)


async def test_all_accounts_means_the_callers_accounts_in_every_event(
    client: httpx.AsyncClient, truth
) -> None:
    events = await stream(client, "Show me S3 buckets across all accounts", headers=STAGING_USER)
    everything = json.dumps(events)
    for hidden in (PRODUCTION, DEVELOPMENT, CENTRAL, "Production", "Development"):
        assert hidden not in everything, hidden
    answer = next(data for name, data in events if name == "answer")
    assert {r["account_id"] for r in answer["resources"]} == {STAGING}
    assert {r["id"] for r in answer["resources"]} == truth.buckets(STAGING)
    assert [a["account_id"] for a in answer["accounts"]] == [STAGING]


async def test_an_unknown_account_lists_only_the_callers_accounts(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/invocations",
        headers=STAGING_USER,
        json={"prompt": "List EC2 instances in account 999999999999"},
    )
    assert response.status_code == 422 and response.json()["error"] == "unknown_account"
    message = response.json()["message"]
    assert STAGING in message
    for hidden in (PRODUCTION, DEVELOPMENT, CENTRAL, "Production", "Development", "Central"):
        assert hidden not in message, message


async def test_a_denial_says_which_account_and_which_groups_would_open_it(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/invocations", headers=STAGING_USER, json={"prompt": "List EC2 instances in production"}
    )
    assert response.status_code == 403 and response.json()["error"] == "forbidden"
    assert response.json()["message"] == (
        "You may not query Production (222222222222): your groups (staging-team) do not "
        "include it. Groups that may: Production: prod-team, operators."
    )
    nothing = await client.post(
        "/invocations", headers=NO_GROUPS, json={"prompt": "List EC2 instances in staging"}
    )
    assert nothing.status_code == 403
    assert nothing.json()["message"] == (
        "You may not query any account: your token names no groups."
    )
    outside = await client.post(
        "/invocations", headers=OUTSIDERS, json={"prompt": "List EC2 instances in staging"}
    )
    assert outside.status_code == 403
    assert outside.json()["message"] == (
        "You may not query any account: your groups (contractors) open none."
    )


async def test_another_users_thread_does_not_exist_for_them(client: httpx.AsyncClient) -> None:
    thread_id = "sams-thread-" + str(time.time_ns())
    mine = await client.post(
        "/invocations",
        headers=STAGING_USER,
        json={"prompt": "How many Lambda functions are in staging?", "thread_id": thread_id},
    )
    assert mine.status_code == 200, mine.text
    assert (await client.get(f"/threads/{thread_id}", headers=STAGING_USER)).status_code == 200
    nobody = await client.get("/threads/never-" + str(time.time_ns()), headers=OPERATOR)
    theirs = await client.get(f"/threads/{thread_id}", headers=OPERATOR)
    assert theirs.status_code == nobody.status_code == 404
    assert theirs.json() == {
        "error": "thread_not_found",
        "message": f"no conversation with thread id {thread_id}",
    }
    assert set(nobody.json()) == set(theirs.json())
    follow = await client.post(
        "/invocations",
        headers=OPERATOR,
        json={"prompt": "and in production?", "thread_id": thread_id},
    )
    assert follow.status_code == 404 and follow.json()["error"] == "thread_not_found"
    # The owner's conversation is untouched by the attempt.
    turns = (await client.get(f"/threads/{thread_id}", headers=STAGING_USER)).json()["turns"]
    assert len(turns) == 1


async def test_the_audit_record_of_a_question_with_one_denied_account(
    client: httpx.AsyncClient, audit_file: Path
) -> None:
    question = "List EC2 instances in staging and production"
    response = await client.post("/invocations", headers=STAGING_USER, json={"prompt": question})
    assert response.status_code == 403
    record = _audit(audit_file, question)
    assert record["user"] == "sam" and record["groups"] == ["staging-team"]
    assert sorted(record["accounts_asked"]) == [PRODUCTION, STAGING]
    assert record["accounts_allowed"] == [STAGING]
    assert record["outcome"] == "refused: forbidden"
    assert record["accounts"] == {}  # nothing was read
    assert isinstance(record["duration_ms"], int)


async def test_the_audit_record_of_an_answered_question_counts_reads_per_account(
    client: httpx.AsyncClient, audit_file: Path
) -> None:
    question = "How many RDS instances are in each account?"
    response = await client.post(
        "/invocations", headers=OPERATOR, json={"prompt": question, "fresh": True}
    )
    assert response.status_code == 200, response.text
    record = _audit(audit_file, question)
    assert record["user"] == "olivia" and record["outcome"] == "answered"
    assert record["accounts_allowed"] == record["accounts_asked"]
    assert set(record["accounts"]) == {PRODUCTION, STAGING, DEVELOPMENT}
    for account in record["accounts"].values():
        assert account["status"] == "ok"
        assert account["reads"] == 2  # RDS in each of the account's two regions
