"""LangGraph Studio: `langgraph dev` serves the graph from langgraph.json, on the sandbox.

A real `langgraph dev` server (offline: no analytics, no version check) on a free loopback
port, driven through langgraph_sdk as Studio drives it.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

from langgraph_sdk import get_client

from tests.service_helpers import (
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


FACTORY_CHECK = """
import asyncio, importlib.util
from opsagent.service import studio

async def main():
    first = await studio.graph({})
    second = await studio.graph({})
    assert first is second, "one agent (one sandbox) per process, however often called"
    assert first.checkpointer is None, "the LangGraph server brings its own"
    assert studio._shared.agent.sandbox is not None
    # langgraph may load the file by path as a second module: it must share the same agent.
    spec = importlib.util.spec_from_file_location("studio_by_path", studio.__file__)
    by_path = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(by_path)
    assert await by_path.graph({}) is first
    await studio._shared.close()
    assert studio._shared.agent is None
    print("factory ok")

asyncio.run(main())
"""


async def test_factory_graph_has_no_checkpointer_and_one_sandbox(tmp_path: Path) -> None:
    # A process of its own, like the server's: one sandbox per process is the rule.
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        FACTORY_CHECK,
        cwd=tmp_path,
        env=clean_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(proc.communicate(), 180)
    assert proc.returncode == 0, output.decode()
    assert "factory ok" in output.decode()


async def test_langgraph_dev_streams_an_all_accounts_run(tmp_path: Path) -> None:
    port = free_port()
    env = clean_env(LANGGRAPH_CLI_NO_ANALYTICS="1", LANGGRAPH_NO_VERSION_CHECK="1")
    # The repository's langgraph.json, from a working directory of the test's own: the
    # server keeps its state in .langgraph_api/ there, not in the repository.
    # --no-reload: other edits in the tree must not restart the server mid-test.
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    server = ServiceProcess(
        env,
        workdir,
        port=port,
        health="/ok",
        log_dir=tmp_path,
        command=[
            str(VENV_BIN / "langgraph"),
            "dev",
            "--no-browser",
            "--no-reload",
            "--config",
            str(ROOT / "langgraph.json"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
    )
    with server:
        client = get_client(url=server.url)
        [assistant] = await client.assistants.search(graph_id="opsagent")
        thread = await client.threads.create()
        custom: list[dict] = []
        final: dict = {}
        async for part in client.runs.stream(
            thread["thread_id"],
            assistant["assistant_id"],
            input={"question": ALL_ACCOUNTS},
            stream_mode=["custom", "values"],
        ):
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
        follow_up = await client.runs.wait(
            thread["thread_id"],
            assistant["assistant_id"],
            input={"question": "what about staging?"},
        )
        assert isinstance(follow_up, dict)
        assert follow_up["answer"]["plan"]["accounts"] == [STAGING]
        state = await client.threads.get_state(thread["thread_id"])
        assert [t["question"] for t in state["values"]["turns"]] == [
            ALL_ACCOUNTS,
            "what about staging?",
        ]
    # A graceful stop: uvicorn re-raises the SIGTERM it handled once shutdown is complete.
    assert server.proc is not None and server.proc.returncode in (0, -signal.SIGTERM)
    log = server.log()
    assert "Traceback" not in log, log
    assert (workdir / ".langgraph_api").is_dir()
