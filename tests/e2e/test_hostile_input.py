"""Hostile input and faults: what an attack on the CLI and the service found, kept fixed.

- a follow-up after a run that died half way builds on the last turn that completed;
- resource data, questions and error text are text on the terminal, never rich markup;
- a change request anywhere in a question is refused, whatever else it asks;
- input that is not text, a bad registry file or a bad setting is one line, never a
  traceback or a 500; an oversize body always gets its 413;
- `opsagent ask -` reads the question from standard input;
- anything a request's work raises, SystemExit included, is that request's JSON 500 and the
  service keeps serving;
- when no account could be queried, the answer says so and `ask` exits 5.

Property-based tests (Hypothesis) back the planner and the service's request parsing.
Service tests run one real `opsagent`-style uvicorn process with an injected planner; its
accounts are unreachable on loopback, so a planned question ends fast with every account
failed. Nothing here leaves loopback.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from opsagent.graph.models import AccountResult, Answer, Plan, Refusal, Resource, ResourceQuery
from opsagent.graph.planner import plan_question
from opsagent.registry import Registry, load_registry
from tests.conftest import OPSAGENT, ROOT
from tests.service_helpers import ServiceProcess, clean_env, free_port

DEMO_REGISTRY = ROOT / "opsagent" / "sandbox" / "demo-registry.json"
PRODUCTION, STAGING = "222222222222", "333333333333"
UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens, connections fail at once


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry(DEMO_REGISTRY)


# ----------------------------------------------------------------------------- the planner


@pytest.mark.parametrize(
    "question",
    [
        "Show buckets; aws ec2 terminate-instances --instance-ids i-1",
        "Show buckets; aws ec2 terminate instances",
        "list buckets; aws s3 rm s3://logs --recursive",
        "how many instances? TerminateInstances i-1",
        "show the instances, then ec2:TerminateInstances",
        "list functions and client.delete_function(FunctionName='x')",
        "which databases are there aws rds delete-db-instance --db-instance-identifier orders-db",
    ],
)
def test_a_change_anywhere_in_the_question_is_refused(registry, question):
    outcome = plan_question(question, registry)
    assert isinstance(outcome, Refusal) and outcome.kind == "read_only", outcome


async def test_the_model_planner_refuses_a_change_without_asking_the_model(registry):
    from opsagent.graph.planner import rule_planner
    from opsagent.graph.planner.model import ModelPlanner

    asked: list[object] = []

    class Model:  # a chat model that would plan anything
        def with_structured_output(self, schema):
            return self

        async def ainvoke(self, messages):
            asked.append(messages)
            raise RuntimeError("the model would have planned it")

    outcome = await ModelPlanner(Model(), rule_planner)(  # type: ignore[arg-type]
        "Show buckets; aws ec2 terminate-instances --instance-ids i-1", registry, None
    )
    assert isinstance(outcome, Refusal) and outcome.kind == "read_only"
    assert asked == []


@pytest.mark.parametrize(
    "question",
    [
        "describe function start-instances-scheduler",
        "describe bucket backup-bucket",
        "list instances tagged team:delete-me",
        "list buckets named delete-bucket",
    ],
)
def test_names_shaped_like_commands_stay_names(registry, question):
    assert isinstance(plan_question(question, registry), Plan)


WORDS = [
    "list",
    "show",
    "how many",
    "describe",
    "instances",
    "buckets",
    "in",
    "prod",
    "and",
    "staging",
    "not",
    "except",
    "running",
    "tagged",
    "team=x",
    "named",
    "web",
    "us-west-2",
    ",",
    ".",
    ";",
    "the",
    "every",
    "account",
    "by region",
    "per account",
    "[",
    "]",
    "[/x]",
    "[link=https://evil.example]x[/link]",
    "[bold]",
    ":skull:",
    "\\",
    "'",
    '"',
    "(",
    ")",
    "-",
    "--",
    "=",
    ":",
    "/",
    "terminate-instances",
    "aws",
    "ec2",
    "i-0abc1234",
    "222222222222",
    "arn:aws:ec2:us-east-1:222222222222:instance/i-0abc1234",
    "\x1b[2J",
    "\x00",
    "\ud800",
]
ANY_CHARACTER = st.characters(codec=None, exclude_categories=())  # surrogates, controls, ...
QUESTIONS = st.one_of(
    st.text(ANY_CHARACTER),
    st.lists(st.one_of(st.sampled_from(WORDS), st.text(ANY_CHARACTER, max_size=6))).map(" ".join),
    st.lists(st.sampled_from(WORDS), min_size=200, max_size=2000).map(" ".join),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(question=QUESTIONS, follow_up=st.booleans())
def test_the_planner_plans_or_refuses_whatever_it_is_given(registry, question, follow_up):
    previous = (
        plan_question("list running instances in prod tagged team=x", registry)
        if follow_up
        else None
    )
    outcome = plan_question(question, registry, previous)
    assert isinstance(outcome, Plan | Refusal)


def test_a_very_long_question_is_planned(registry):
    question = "Show me S3 buckets across all accounts" + " please" * 50_000
    assert isinstance(plan_question(question, registry), Plan)


# ----------------------------------------------------------------------------- follow-ups


@pytest.fixture
def offline_settings(monkeypatch: pytest.MonkeyPatch):
    """Settings for an agent that is opened but never reaches an account."""
    from opsagent.service.settings import Settings

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_STS": UNREACHABLE,
    }.items():
        monkeypatch.setenv(name, value)
    return Settings(
        registry=DEMO_REGISTRY, mcp_endpoint=f"{UNREACHABLE}/mcp", checkpoint_url="memory://"
    )


async def test_a_follow_up_after_a_crashed_turn_builds_on_the_last_completed_turn(
    registry, offline_settings
):
    from langgraph.checkpoint.memory import InMemorySaver

    from opsagent.service.runtime import open_agent

    seen: list[Plan | None] = []

    async def recording_planner(question: str, reg: Registry, previous: Plan | None):
        seen.append(previous)
        return Refusal(kind="unsupported", message="recorded")

    production = plan_question("list EC2 instances in production", registry)
    staging = plan_question("and in staging?", registry, production)
    assert isinstance(production, Plan) and isinstance(staging, Plan)
    assert staging.accounts == [STAGING]
    async with open_agent(
        offline_settings, checkpointer=InMemorySaver(), planner=recording_planner
    ) as agent:
        config = agent.config(thread_id=f"crash-{uuid.uuid4()}")
        # Q1 answered: merge recorded its turn.
        await agent.graph.aupdate_state(
            config,
            {
                "question": "list EC2 instances in production",
                "plan": production,
                "refusal": None,
                "results": None,
                "answer": None,
                "turns": [
                    {
                        "question": "list EC2 instances in production",
                        "answer": "6",
                        "plan": production.model_dump(),
                    }
                ],
            },
            as_node="merge",
        )
        # Q2 planned, its accounts queried, then the process died: no turn, but its plan
        # is the state's.
        await agent.graph.aupdate_state(
            config,
            {
                "question": "and in staging?",
                "plan": staging,
                "refusal": None,
                "results": None,
                "answer": None,
            },
            as_node="plan",
        )
        state = await agent.graph.aget_state(config)
        assert [t["question"] for t in state.values["turns"]] == [
            "list EC2 instances in production"
        ]

        await agent.graph.ainvoke({"question": "how many?"}, config, context=config.context)

    assert seen == [production]


# ----------------------------------------------------------------------------- the terminal


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """What the CLI prints, stdout and stderr, on a wide console."""
    from opsagent.service import cli

    printed = io.StringIO()
    for console in (cli.out, cli.err):
        # The private fields: restoring the `file` property would pin today's sys.stdout.
        monkeypatch.setattr(console, "_file", printed)
        monkeypatch.setattr(console, "_width", 400)
    return printed


def _hostile_answer() -> Answer:
    row = Resource(
        account_id=PRODUCTION,
        account_alias="production",
        region="us-east-1",
        resource_type="ec2:instance",
        id="i-0abc1234",
        name="web [/x]",
        state="running",
        tags={"owner": "[link=https://evil.example]click[/link]", "note": ":skull: \x1b[2J\ud800"},
    )
    plan = Plan(
        accounts=[PRODUCTION, STAGING], queries=[ResourceQuery(resource_type="ec2:instance")]
    )
    return Answer(
        question="list [bold]instances",
        text="Found 1 EC2 instance [/x] [red]here[/red].",
        plan=plan,
        results=[
            AccountResult(account_id=PRODUCTION, alias="production", status="ok", rows=[row]),
            AccountResult(
                account_id=STAGING,
                alias="staging",
                status="error",
                error="AccessDenied: [/not markup]",
            ),
        ],
    )


def test_resource_data_is_text_on_the_terminal(terminal):
    from opsagent.service import cli

    answer = _hostile_answer()
    cli.render_answer(answer)  # MarkupError on "web [/x]" before
    cli._progress(
        {
            "event": "account_finished",
            "account_id": STAGING,
            "alias": "staging",
            "status": "error",
            "count": 0,
            "elapsed_ms": 3,
            "error": "AccessDenied: [/not markup] [link=https://evil.example]x",
        }
    )
    printed = terminal.getvalue()
    assert "web [/x]" in printed
    assert "[link=https://evil.example]click[/link]" in printed  # not a link
    assert "Found 1 EC2 instance [/x] [red]here[/red]." in printed
    assert ":skull:" in printed and "\U0001f480" not in printed  # no emoji codes
    assert "\x1b" not in printed and "\\x1b[2J" in printed  # no escape sequences
    assert "\ud800" not in printed
    assert "AccessDenied: [/not markup] [link=https://evil.example]x" in printed


def test_described_resources_are_text_too(terminal):
    from opsagent.service import cli

    answer = _hostile_answer()
    assert answer.plan is not None
    answer.plan.queries[0].intent = "describe"
    answer.results[0].rows[0].id = "[/i-0abc1234]"
    answer.results[0].rows[0].details = {"engine": "[blink]postgres"}
    cli.render_answer(answer)
    printed = terminal.getvalue()
    assert "ec2:instance [/i-0abc1234]" in printed and "[blink]postgres" in printed


# ----------------------------------------------------------------------------- CLI input


def _cli(*args: str, input: bytes | None = None, env: dict[str, str] | None = None):
    from opsagent.service.cli import app

    return CliRunner().invoke(app, list(args), input=input, env=env)


@pytest.mark.parametrize(
    "question", ["list buckets \ud800", "list\x00 buckets", "list \x1b[2J buckets"]
)
def test_a_question_that_is_not_text_is_refused_before_anything_runs(question):
    result = _cli("ask", question)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: the question") and result.output.count("\n") == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_argv_bytes_that_are_not_utf8_are_a_one_line_error():
    done = subprocess.run(
        [OPSAGENT.encode(), b"ask", b"list buckets \xff"],
        capture_output=True,
        env=clean_env(),
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert b"Traceback" not in done.stderr and b"U+DCFF" in done.stderr


@pytest.mark.parametrize("command", ["ask", "serve"])
@pytest.mark.parametrize("kind", ["latin-1", "directory"])
def test_an_unreadable_registry_is_one_line(tmp_path: Path, kind: str, command: str):
    if kind == "directory":
        path = tmp_path
    else:
        path = tmp_path / "registry.json"
        path.write_bytes(
            DEMO_REGISTRY.read_text().replace("Production", "Producción").encode("latin-1")
        )
    args = ["list buckets"] if command == "ask" else ["--port", str(free_port())]
    result = _cli(
        command,
        "--registry",
        str(path),
        "--mcp-endpoint",
        f"{UNREACHABLE}/mcp",
        *args,
        env={"OPSAGENT_CHECKPOINT_URL": "memory://"},
    )
    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"error: registry file {path} ")
    assert result.output.count("\n") == 1
    assert ("not UTF-8" if kind == "latin-1" else "is a directory") in result.output


@pytest.mark.parametrize("args", [["ask", "list buckets"], ["serve"]])
def test_a_bad_setting_is_one_line(args: list[str]):
    result = _cli(*args, env={"OPSAGENT_ACCOUNT_TIMEOUT": "abc"})
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: invalid settings: OPSAGENT_ACCOUNT_TIMEOUT='abc'")
    assert result.output.count("\n") == 1


@pytest.mark.parametrize(
    ("env", "says"),
    [
        (
            {"OPSAGENT_MCP_TIMEOUT": "30"},
            "OPSAGENT_MCP_TIMEOUT is no longer read: OPSAGENT_ACCOUNT_TIMEOUT is the one deadline",
        ),
        (
            {"OPSAGENT_MAX_SESSIONS": "10", "OPSAGENT_MAX_ACCOUNTS_IN_FLIGHT": "50"},
            "OPSAGENT_MAX_SESSIONS (10) must be at least OPSAGENT_MAX_ACCOUNTS_IN_FLIGHT (50)",
        ),
        ({"OPSAGENT_MAX_ACCOUNTS_IN_FLIGHT": "0"}, "OPSAGENT_MAX_ACCOUNTS_IN_FLIGHT"),
        ({"OPSAGENT_DATA_MAX_AGE": "-1"}, "OPSAGENT_DATA_MAX_AGE"),
    ],
)
def test_scale_settings_that_cannot_work_stop_the_start_in_one_line(env, says):
    result = _cli("ask", "list buckets", env=env)
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: invalid settings")
    assert says in result.output and result.output.count("\n") == 1


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"OPSAGENT_JWT_SECRET": ""}, "OPSAGENT_JWT_SECRET is set but empty"),
        ({"OPSAGENT_JWT_SECRET": "   "}, "OPSAGENT_JWT_SECRET is set but empty"),
        ({"OPSAGENT_JWT_SECRET": "x"}, "OPSAGENT_JWT_SECRET is 1 bytes; HS256 needs at least 32"),
        ({"OPSAGENT_JWT_JWKS_URL": ""}, "OPSAGENT_JWT_JWKS_URL is set but empty"),
        (
            {"OPSAGENT_JWT_SECRET": "hunter2-" * 5, "OPSAGENT_JWT_JWKS_URL": "https://idp/jwks"},
            "OPSAGENT_JWT",
        ),
    ],
)
def test_an_auth_setting_that_would_switch_authentication_off_stops_the_start(env, says):
    """An empty or 1-byte OPSAGENT_JWT_SECRET used to turn authentication off or accept it."""
    result = _cli("serve", env=env)
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: invalid settings")
    assert says in result.output and result.output.count("\n") == 1
    assert "hunter2" not in result.output and "'x'" not in result.output  # never the secret


@pytest.mark.parametrize(
    ("stdin", "says"),
    [
        (b"list buckets \xff", "not UTF-8"),
        (b"  \n", "empty"),
        (b"list \x07 buckets", "control character"),
    ],
)
def test_stdin_that_is_not_a_question_is_one_line(stdin: bytes, says: str):
    result = _cli("ask", "-", input=stdin)
    assert result.exit_code == 2, result.output
    assert says in result.output and result.output.count("\n") == 1


def test_ask_dash_reads_a_question_longer_than_the_argument_limit(sandbox, external_env):
    question = "Show me S3 buckets across all accounts" + " please" * 50_000  # ~350 KB
    assert len(question) > 131_072  # Linux's MAX_ARG_STRLEN: no argv can carry it
    done = subprocess.run(
        [
            OPSAGENT,
            "ask",
            "--json",
            "--registry",
            str(DEMO_REGISTRY),
            "--mcp-endpoint",
            sandbox.mcp_endpoint,
            "-",
        ],
        input=question.encode(),
        capture_output=True,
        env=external_env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr.decode()
    answer = json.loads(done.stdout)
    assert answer["question"] == question
    assert {a["status"] for a in answer["accounts"]} == {"ok"} and answer["resources"]


def test_no_account_answered_is_said_plainly_and_exits_5(external_env):
    # Nothing listens on the MCP endpoint: every account fails.
    done = subprocess.run(
        [
            OPSAGENT,
            "ask",
            "--registry",
            str(DEMO_REGISTRY),
            "--mcp-endpoint",
            f"{UNREACHABLE}/mcp",
            "Show me S3 buckets across all accounts",
        ],
        capture_output=True,
        text=True,
        env=external_env,
        timeout=300,
    )
    assert done.returncode == 5, (done.stdout, done.stderr)
    assert (
        "None of the 3 accounts could be queried, so I have no answer about S3 buckets"
        in done.stdout
    )
    assert "Found 0" not in done.stdout


# ----------------------------------------------------------------------------- the service

SERVER = """
import sys

import uvicorn

from opsagent.graph.planner import rule_planner
from opsagent.graph.models import Plan, ResourceQuery
from opsagent.service.http import create_app
from opsagent.service.logs import log_config


async def planner(question, registry, previous):
    if "ghost account" in question:  # planned, then the run fails once the stream is open
        return Plan(accounts=["999999999999"], summary="ghost",
                    queries=[ResourceQuery(resource_type="s3:bucket")])
    if "raise SystemExit" in question:
        raise SystemExit(3)
    if "raise KeyboardInterrupt" in question:
        raise KeyboardInterrupt
    if "raise ValueError" in question:
        raise ValueError("a parser failed")
    return await rule_planner(question, registry, previous)


uvicorn.run(create_app(planner=planner), host="127.0.0.1", port=int(sys.argv[1]),
            log_config=log_config(None, "service"))
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """The service with a planner that raises on request; accounts fail at once."""
    workdir = tmp_path_factory.mktemp("hostile")
    script = workdir / "server.py"
    script.write_text(SERVER)
    port = free_port()
    env = clean_env(
        OPSAGENT_REGISTRY=str(DEMO_REGISTRY),
        OPSAGENT_MCP_ENDPOINT=f"{UNREACHABLE}/mcp",
        OPSAGENT_CHECKPOINT_URL="memory://",
        OPSAGENT_ACCOUNT_TIMEOUT="10",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL_STS=UNREACHABLE,
        AWS_MAX_ATTEMPTS="1",
        AWS_RETRY_MODE="standard",
    )
    with ServiceProcess(
        env, workdir, command=[sys.executable, str(script), str(port)], port=port
    ) as proc:
        yield proc


@pytest.fixture
def http(server: ServiceProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


def _is_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.text
    body = response.json()
    assert body["error"] == code and body["message"], body
    return body


@pytest.mark.parametrize("raises", ["SystemExit", "KeyboardInterrupt", "ValueError"])
@pytest.mark.parametrize("accept", ["application/json", "text/event-stream"])
def test_whatever_a_request_raises_is_its_json_500(
    http: httpx.Client, server: ServiceProcess, raises: str, accept: str
):
    response = http.post(
        "/invocations", json={"prompt": f"raise {raises} please"}, headers={"Accept": accept}
    )
    body = _is_error(response, 500, "internal")
    assert raises in body["message"]
    assert http.get("/ping").json()["status"] == "Healthy"  # still serving, nothing in flight
    assert server.proc is not None and server.proc.poll() is None


def test_a_run_that_fails_mid_stream_ends_with_an_error_event(http: httpx.Client):
    with http.stream(
        "POST",
        "/invocations",
        json={"prompt": "buckets in the ghost account"},
        headers={"Accept": "text/event-stream"},
    ) as response:
        assert response.status_code == 200
        lines = list(response.iter_lines())
    events = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    data = [json.loads(line.removeprefix("data: ")) for line in lines if line.startswith("data: ")]
    assert events[:2] == ["thread", "plan"] and events[-2:] == ["error", "done"], events
    assert data[-2]["error"] == "internal" and data[-1]["status"] == "error"
    assert http.get("/ping").json()["status"] == "Healthy"


def test_a_lone_surrogate_is_422_before_anything_runs(http: httpx.Client):
    thread = f"surrogate-{uuid.uuid4()}"
    body = json.dumps(
        {"prompt": "Show me S3 buckets across all accounts \ud800", "thread_id": thread}
    )  # json.dumps writes it as \\ud800
    response = http.post(
        "/invocations", content=body.encode(), headers={"Content-Type": "application/json"}
    )
    assert "surrogate" in _is_error(response, 422, "invalid_request")["message"]
    _is_error(http.get(f"/threads/{thread}"), 404, "thread_not_found")  # nothing ran


def test_no_account_answered_is_said_plainly_by_the_service_too(http: httpx.Client):
    response = http.post("/invocations", json={"prompt": "list buckets in prod and staging"})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert {a["status"] for a in answer["accounts"]} <= {"error", "denied", "timeout"}
    assert answer["answer"].startswith("None of the 2 accounts could be queried")


def _body_in_chunks(chunks: int, read: list[str]):
    """An ASGI receive that hands out `chunks` pieces of 64 KiB, noting each read."""
    left = [b"x" * 65_536 for _ in range(chunks)]

    async def receive() -> dict:
        if not left:
            return {"type": "http.disconnect"}
        read.append("read")
        left.pop()
        return {"type": "http.request", "body": b"x" * 65_536, "more_body": bool(left)}

    return receive


@pytest.mark.parametrize(
    ("content_type", "declared"),
    [
        (b"application/json", True),  # 413 from Content-Length, before any read
        (b"text/plain", True),  # 415
        (b"application/json", False),  # chunked: 413 once the count passes the limit
    ],
)
async def test_a_refused_body_is_read_to_its_end_before_the_answer(
    content_type: bytes, declared: bool
):
    from opsagent.service.http.errors import ApiError
    from opsagent.service.http.middleware import InvocationGuard

    events: list[str] = []

    async def send(message: dict) -> None:
        events.append(message["type"])

    async def app(scope, receive, send) -> None:  # FastAPI reading the body
        with pytest.raises(ApiError) as raised:
            while (await receive()).get("more_body"):
                pass
        events.append(f"raised {raised.value.status_code}")

    headers = [(b"content-type", content_type)]
    if declared:
        headers.append((b"content-length", str(16 * 65_536).encode()))
    scope = {"type": "http", "method": "POST", "path": "/invocations", "headers": headers}
    await InvocationGuard(app, max_body_bytes=65_536)(scope, _body_in_chunks(16, events), send)
    # Every piece read, then the answer: the client is never reset mid-body.
    answer = ["http.response.start", "http.response.body"] if declared else ["raised 413"]
    assert events == ["read"] * 16 + answer


def test_an_oversize_body_always_gets_its_413(http: httpx.Client):
    body = b'{"prompt": "' + b"x" * 1_000_000 + b'"}'
    for _ in range(3):
        _is_error(
            http.post("/invocations", content=body, headers={"Content-Type": "application/json"}),
            413,
            "body_too_large",
        )

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for start in range(0, len(body), 65_536):
            yield body[start : start + 65_536]

    _is_error(
        http.post("/invocations", content=chunks(), headers={"Content-Type": "application/json"}),
        413,
        "body_too_large",
    )
    _is_error(
        http.post("/invocations", content=body, headers={"Content-Type": "text/plain"}),
        415,
        "unsupported_media_type",
    )
    assert http.get("/ping").status_code == 200


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(ANY_CHARACTER, max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = st.sampled_from(["prompt", "question", "thread_id"])
FIELD_VALUES = st.one_of(
    st.sampled_from(
        [
            "Show me S3 buckets across all accounts",
            "terminate the staging instances",
            "list instances in the qa account",
            "how many?",
            "x" * 2001,
            "thread-1",
            "a" * 300,
        ]
    ),
    JSON_VALUES,
    st.sampled_from(WORDS),
    st.text(ANY_CHARACTER),
)
BODIES = st.one_of(
    st.fixed_dictionaries(
        {"prompt": FIELD_VALUES}, optional={"question": FIELD_VALUES, "thread_id": FIELD_VALUES}
    ),
    st.dictionaries(FIELDS, FIELD_VALUES, max_size=3),
    JSON_VALUES,
).map(lambda v: json.dumps(v).encode()) | st.binary(max_size=64)
# Any value HTTP allows (visible ASCII, space, tab, obs-text); a request with other bytes
# in a header is refused by uvicorn's parser and never reaches the service.
HEADER_VALUES = st.binary(min_size=1, max_size=60).filter(
    lambda v: all(c == 9 or 32 <= c <= 126 or c >= 128 for c in v) and v.strip() == v
)
HEADERS = st.dictionaries(
    st.sampled_from(
        [
            "accept",
            "content-type",
            "x-amzn-bedrock-agentcore-runtime-session-id",
            "x-amzn-bedrock-agentcore-runtime-user-id",
            "authorization",
        ]
    ),
    st.one_of(
        HEADER_VALUES,
        st.sampled_from(
            [b"text/event-stream", b"application/json", b"application/x-www-form-urlencoded"]
        ),
    ),
    max_size=4,
)
DOCUMENTED = {200, 400, 403, 413, 415, 422}


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(body=BODIES, headers=HEADERS)
def test_any_body_and_headers_get_a_documented_answer(
    http: httpx.Client, body: bytes, headers: dict[str, bytes]
):
    try:
        response = http.post("/invocations", content=body, headers=headers)
    except httpx.LocalProtocolError:
        assume(False)  # a header httpx itself will not send
    assert response.status_code in DOCUMENTED, (response.status_code, response.text)
    event(f"HTTP {response.status_code}")
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        assert response.status_code == 200 and "event: done" in response.text
    else:
        body_json = response.json()
        if response.status_code != 200:
            assert {"error", "message"} <= set(body_json), body_json
