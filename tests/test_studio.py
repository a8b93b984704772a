"""LangGraph Studio: `langgraph dev` serves the graph from langgraph.json, on the sandbox.

A real `langgraph dev` server (offline: no analytics, no version check) on a free loopback
port, driven through langgraph_sdk as Studio drives it.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from langgraph_sdk import get_client

from opsagent.service import studio
from tests.test_service_helpers import (
    ALL_ACCOUNTS,
    DEVELOPMENT,
    PRODUCTION,
    ROOT,
    STAGING,
    VENV_BIN,
    ServiceProcess,
    clean_env,
    free_port,
)

WORKLOAD = {PRODUCTION, STAGING, DEVELOPMENT}


def test_langgraph_json_names_the_factory_and_the_lifespan_app() -> None:
    config = json.loads((ROOT / "langgraph.json").read_text())
    assert config["graphs"] == {"opsagent": "opsagent.service.studio:graph"}
    assert config["http"]["app"] == "opsagent.service.studio:app"
    assert ".langgraph_api/" in (ROOT / ".gitignore").read_text().split()


async def test_factory_graph_has_no_checkpointer_and_one_sandbox() -> None:
    try:
        first = await studio.graph({})
        second = await studio.graph({})
        assert first is second  # one agent (one sandbox) per process, however often called
        assert first.checkpointer is None  # the LangGraph server brings its own
        assert studio._shared.agent is not None and studio._shared.agent.sandbox is not None
    finally:
        await studio._shared.close()
    assert studio._shared.agent is None


async def test_langgraph_dev_streams_an_all_accounts_run(tmp_path: Path) -> None:
    port = free_port()
    env = clean_env(LANGGRAPH_CLI_NO_ANALYTICS="1", LANGGRAPH_NO_VERSION_CHECK="1")
    # From the repository root, as a developer runs it (langgraph resolves http.app against
    # the working directory); its state goes to .langgraph_api/, which git ignores.
    # --no-reload: other edits in the tree must not restart the server mid-test.
    server = ServiceProcess(
        env, ROOT, port=port, health="/ok", log_dir=tmp_path,
        command=[str(VENV_BIN / "langgraph"), "dev", "--no-browser", "--no-reload",
                 "--host", "127.0.0.1", "--port", str(port)],
    )
    with server:
        client = get_client(url=server.url)
        [assistant] = await client.assistants.search(graph_id="opsagent")
        thread = await client.threads.create()
        custom: list[dict] = []
        final: dict = {}
        async for part in client.runs.stream(thread["thread_id"], assistant["assistant_id"],
                                             input={"question": ALL_ACCOUNTS},
                                             stream_mode=["custom", "values"]):
            if part.event == "custom":
                custom.append(part.data)
            elif part.event == "values":
                final = part.data
            assert part.event != "error", part.data

        kinds = [event["event"] for event in custom]
        assert kinds[0] == "plan" and set(custom[0]["plan"]["accounts"]) == WORKLOAD
        assert kinds.count("account_started") == kinds.count("account_finished") == 3
        answer = final["answer"]
        assert answer["question"] == ALL_ACCOUNTS and "S3 bucket" in answer["text"]
        assert {r["account_id"] for r in answer["results"]} == WORKLOAD
        assert all(r["status"] == "ok" for r in answer["results"])

        # The server's own checkpointer keeps the thread: a follow-up builds on the plan.
        follow_up = await client.runs.wait(thread["thread_id"], assistant["assistant_id"],
                                           input={"question": "what about staging?"})
        assert isinstance(follow_up, dict)
        assert follow_up["answer"]["plan"]["accounts"] == [STAGING]
        state = await client.threads.get_state(thread["thread_id"])
        assert [t["question"] for t in state["values"]["turns"]] == [ALL_ACCOUNTS,
                                                                     "what about staging?"]
    # A graceful stop: uvicorn re-raises the SIGTERM it handled once shutdown is complete.
    assert server.proc is not None and server.proc.returncode in (0, -signal.SIGTERM)
    log = server.log()
    assert "Traceback" not in log, log
    assert (ROOT / ".langgraph_api").is_dir()


@pytest.fixture(autouse=True)
def _no_stray_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    # The in-process factory reads OPSAGENT_* like the server would: start from none.
    import os

    for name in list(os.environ):
        if name.startswith(("OPSAGENT_", "AWS_")):
            monkeypatch.delenv(name)
