"""How long `opsagent ask --json "Show me S3 buckets across all accounts"` takes, and where.

Prints figures; asserts nothing. Run: .venv/bin/python benchmarks/ask_latency.py [runs]
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path

QUESTION = "Show me S3 buckets across all accounts"
OPSAGENT = str(Path(sys.executable).with_name("opsagent"))


def whole_command(runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(
            [OPSAGENT, "ask", "--json", QUESTION],
            capture_output=True,
            env={"PATH": "/usr/bin:/bin", "OPSAGENT_CHECKPOINT_URL": "memory://"},
        )
        assert done.returncode == 0, done.stderr
        times.append(time.perf_counter() - started)
    return times


async def split() -> dict[str, float]:
    started = time.perf_counter()
    from langgraph.checkpoint.memory import InMemorySaver

    from opsagent.service.runtime import open_agent
    from opsagent.service.settings import Settings

    figures = {"import_s": time.perf_counter() - started}
    started = time.perf_counter()
    async with open_agent(Settings(), checkpointer=InMemorySaver()) as agent:
        figures["open_agent_s"] = time.perf_counter() - started
        figures.update({f"sandbox_{k}_s": v for k, v in agent.sandbox.timings.items()})
        started = time.perf_counter()
        await agent.ask(QUESTION)
        figures["first_answer_s"] = time.perf_counter() - started
        warm = []
        for _ in range(5):
            started = time.perf_counter()
            await agent.ask(QUESTION)
            warm.append(time.perf_counter() - started)
        figures["warm_answer_median_s"] = statistics.median(warm)
        started = time.perf_counter()
    figures["close_s"] = time.perf_counter() - started
    return figures


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    times = whole_command(runs)
    print(
        f"opsagent ask --json {QUESTION!r}: "
        f"median {statistics.median(times):.2f}s over {runs} runs "
        f"(min {min(times):.2f}s, max {max(times):.2f}s)"
    )
    for name, value in asyncio.run(split()).items():
        print(f"  {name:24} {value:7.3f}")


if __name__ == "__main__":
    main()
