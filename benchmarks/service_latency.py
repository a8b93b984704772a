"""How fast the HTTP service answers, warm, and how much memory it holds after 100 questions.

Starts `opsagent serve` on the embedded sandbox (a real uvicorn process on 127.0.0.1; SQLite
checkpoints in a temporary directory unless --checkpoint-url says otherwise, since memory://
would count the stored threads as the service's memory), warms it up, then streams an
all-accounts question N times and prints the time to the first SSE event (`thread`, sent once
the plan exists), to the `plan` event and to the `answer` event; then asks 100 questions (the
demo's five, round robin, JSON mode) and prints the server's resident memory (VmRSS).

    .venv/bin/python benchmarks/service_latency.py [--runs 20] [--questions 100]
                                                   [--checkpoint-url URL]

A script that prints figures, not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from httpx_sse import aconnect_sse

ALL_ACCOUNTS = "Show me S3 buckets across all accounts"
QUESTIONS = [
    "List all EC2 instances in the production account",
    "Show me S3 buckets across all accounts",
    "What Lambda functions exist in staging?",
    "Describe EKS clusters in account 222222222222",
    "How many RDS instances are running in each account?",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def timed_stream(client: httpx.AsyncClient) -> dict[str, float]:
    marks: dict[str, float] = {}
    started = time.perf_counter()
    async with aconnect_sse(
        client, "POST", "/invocations", json={"prompt": ALL_ACCOUNTS}
    ) as source:
        async for sse in source.aiter_sse():
            now = (time.perf_counter() - started) * 1000
            marks.setdefault("first_event", now)
            marks.setdefault(sse.event, now)
            if sse.event == "answer":
                answer = json.loads(sse.data)
                if any(a["status"] != "ok" for a in answer["accounts"]):
                    print(
                        "warning: an account did not answer ok:",
                        answer["accounts"],
                        file=sys.stderr,
                    )
    return marks


def summary(name: str, values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (
        f"  {name:<22} median {statistics.median(values):7.1f} ms   p95 {p95:7.1f} ms   "
        f"min {ordered[0]:7.1f} ms   max {ordered[-1]:7.1f} ms"
    )


async def measure(url: str, pid: int, runs: int, questions: int) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        for _ in range(3):  # warm: MCP sessions open, role credentials cached
            await timed_stream(client)
        samples = [await timed_stream(client) for _ in range(runs)]
        print(f"all-accounts question, streamed, warm ({runs} runs, 3 accounts):")
        for key in ("first_event", "plan", "answer"):
            print(summary(f"to {key}", [s[key] for s in samples]))

        before = rss_mib(pid)
        marks: list[str] = []
        started = time.perf_counter()
        for i in range(questions):
            response = await client.post(
                "/invocations", json={"prompt": QUESTIONS[i % len(QUESTIONS)]}
            )
            response.raise_for_status()
            if (i + 1) % max(1, questions // 4) == 0:
                marks.append(f"{i + 1}: {rss_mib(pid):.0f}")
        elapsed = time.perf_counter() - started
        after = rss_mib(pid)
        print(
            f"{questions} questions (JSON mode, one after another, each a new thread): "
            f"{elapsed:.1f} s, {elapsed / questions * 1000:.0f} ms each"
        )
        print(
            f"  resident memory: {before:.0f} MiB after warm-up, {after:.0f} MiB after "
            f"{questions} more questions (MiB after n: {', '.join(marks)})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument(
        "--checkpoint-url", default=None, help="default: a SQLite file in a temporary directory"
    )
    args = parser.parse_args()

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSAGENT_", "AWS_"))}
    opsagent = str(Path(sys.executable).parent / "opsagent")
    with tempfile.TemporaryDirectory() as workdir:
        env["OPSAGENT_CHECKPOINT_URL"] = (
            args.checkpoint_url or f"sqlite:///{workdir}/checkpoints.sqlite"
        )
        print(f"checkpoints: {env['OPSAGENT_CHECKPOINT_URL'].split('?')[0]}")
        log = Path(workdir) / "service.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [opsagent, "serve", "--host", "127.0.0.1", "--port", str(port)],
                cwd=workdir,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}"
        try:
            started = time.perf_counter()
            while True:
                if proc.poll() is not None:
                    raise SystemExit(f"service exited:\n{log.read_text()}")
                try:
                    if httpx.get(f"{url}/ping", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            print(
                f"service up (sandbox started) in {time.perf_counter() - started:.1f} s, "
                f"resident memory {rss_mib(proc.pid):.0f} MiB"
            )
            asyncio.run(measure(url, proc.pid, args.runs, args.questions))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)


if __name__ == "__main__":
    main()
