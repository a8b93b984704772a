"""What /docs publishes is what the service sends: the answer schema against
Answer.to_json(), the error table against the handlers and the README, and the HTTP
package kept out of every other entry point's imports.

In process: /openapi.json is fetched from the app (no lifespan: no agent is opened).
"""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any, get_args

import httpx
import pytest

from opsagent.graph.models import (
    AccountResult,
    Answer,
    Plan,
    Refusal,
    RefusalKind,
    Resource,
    ResourceQuery,
)
from opsagent.service.http import create_app
from opsagent.service.http.errors import BY_CODE, ERRORS, ApiError
from opsagent.service.http.schemas import AnswerOut, InvocationResponse
from opsagent.service.settings import Settings
from tests.conftest import ROOT

PRODUCTION, STAGING = "222222222222", "333333333333"


@pytest.fixture(scope="module")
async def spec() -> dict[str, Any]:
    app = create_app(Settings(checkpoint_url="memory://"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://opsagent") as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def _schema(spec: dict[str, Any], name: str) -> tuple[set[str], set[str]]:
    """(properties, required) of a component schema."""
    schema = spec["components"]["schemas"][name]
    return set(schema["properties"]), set(schema.get("required", []))


def _answers() -> list[Answer]:
    """Answers that between them write every key: describe and list rows, a failed account,
    a refusal."""
    plan = Plan(
        accounts=[PRODUCTION, STAGING],
        summary="databases and buckets",
        queries=[
            ResourceQuery(resource_type="rds:db-instance", intent="describe"),
            ResourceQuery(resource_type="s3:bucket"),
        ],
    )
    database = Resource(
        account_id=PRODUCTION,
        account_alias="production",
        region="us-east-1",
        resource_type="rds:db-instance",
        id="orders",
        name="orders",
        state="available",
        tags={"team": "core"},
        details={"engine": "postgres", "allocated_storage_gb": 20},
    )
    bucket = Resource(
        account_id=PRODUCTION,
        account_alias="production",
        region="us-east-1",
        resource_type="s3:bucket",
        id="logs",
        name="logs",
    )
    described = Answer(
        question="Describe the databases, and list buckets",
        text="1 database.",
        plan=plan,
        results=[
            AccountResult(
                account_id=PRODUCTION,
                alias="production",
                status="ok",
                rows=[database, bucket],
                elapsed_ms=12,
            ),
            AccountResult(
                account_id=STAGING,
                alias="staging",
                status="denied",
                error="AccessDenied",
                elapsed_ms=3,
            ),
        ],
    )
    refused = Answer(
        question="Delete the buckets",
        text="I only read.",
        refusal=Refusal(kind="read_only", message="I only read."),
    )
    return [described, refused]


async def test_the_answer_schema_is_what_to_json_writes(spec: dict[str, Any]) -> None:
    answers = [answer.to_json() for answer in _answers()]

    properties, required = _schema(spec, "AnswerOut")
    for body in answers:
        assert set(body) == properties == required
    invocation, _ = _schema(spec, "InvocationResponse")
    assert invocation == properties | {"thread_id"}

    accounts = [account for body in answers for account in body["accounts"]]
    properties, required = _schema(spec, "AccountOut")
    assert accounts and all(set(account) == properties == required for account in accounts)

    rows = [row for body in answers for row in body["resources"]]
    properties, required = _schema(spec, "ResourceOut")
    assert set().union(*rows) == properties  # every key written is documented, and back
    assert set.intersection(*(set(row) for row in rows)) == required
    assert "details" in properties and "details" not in required
    assert set(Resource.model_fields) == properties  # derived from the domain model
    described = [row for row in rows if row["resource_type"] == "rds:db-instance"]
    assert described[0]["details"] == {"engine": "postgres", "allocated_storage_gb": 20}

    for answer, body in zip(_answers(), answers, strict=True):  # and it validates, strictly
        AnswerOut.model_validate(body)
        InvocationResponse.model_validate({"thread_id": "t-1", **body})
        assert body["answer"] == answer.text


async def test_docs_describe_errors_from_the_one_table(spec: dict[str, Any]) -> None:
    invocations = spec["paths"]["/invocations"]["post"]["responses"]
    for status in {error.status for error in ERRORS if not error.routing} - {404}:
        described = invocations[str(status)]["description"]
        assert all(
            f"`{e.code}`" in described
            for e in ERRORS
            if e.status == status and not e.routing and e.code != "thread_not_found"
        ), status
    threads = spec["paths"]["/threads/{thread_id}"]["get"]["responses"]
    assert "`thread_not_found`" in threads["404"]["description"]
    assert "400 invalid_json" in spec["info"]["description"]


def test_every_refusal_and_error_has_its_status_in_the_table() -> None:
    assert len(BY_CODE) == len(ERRORS)
    assert set(get_args(RefusalKind)) <= set(BY_CODE)
    assert ApiError("thread_busy", "busy").status_code == 409
    assert {e.status for e in ERRORS if e.code in get_args(RefusalKind)} == {403, 422}


def test_the_readme_lists_the_tables_status_codes() -> None:
    readme = (ROOT / "README.md").read_text()
    bullet = re.search(
        r"^- Bad input gets a JSON error.*?(?=^- |^\S|\Z)", readme, re.MULTILINE | re.DOTALL
    )
    assert bullet, "README: the service section's bullet of status codes is gone"
    listed = {int(code) for code in re.findall(r"(?<![\d,.])\b[45]\d\d\b(?![\d,])", bullet.group())}
    assert listed == {error.status for error in ERRORS}
    assert "opsagent/service/http/errors.py" in bullet.group()


def test_the_wiring_settings_and_cli_do_not_load_the_http_service() -> None:
    """(The MCP client loads uvicorn and sse_starlette itself; FastAPI is ours alone.)"""
    code = (
        "import sys\n"
        "import opsagent.service.cli, opsagent.service.runtime, opsagent.service.settings\n"
        "import opsagent.service.checkpoints\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('opsagent.service.http')\n"
        "                or m.split('.')[0] == 'fastapi')\n"
        "print(','.join(loaded))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
