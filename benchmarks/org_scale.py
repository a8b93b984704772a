"""Organization scale: hundreds of accounts per question, the fan-out bound, CPU and memory.

    .venv/bin/python benchmarks/org_scale.py [--script-latency-ms 1000] [--accounts 100,500]
        [--in-flight 64] [--runs 5] [--memory-questions 100]

The split layout of benchmarks/run_script_latency.py: moto in one child process, the AWS MCP
Server stand-in (every script held to at least --script-latency-ms, the real server's shape)
in a second, the agent (open_agent, pointed at them as at any AWS) in this one. Member
accounts are seeded with opsagent.sandbox.seed.seed_member_accounts (one instance and one
bucket per account and region), in a registry with us-east-1 and us-west-2.

For each --accounts N and each --in-flight value (OPSAGENT_MAX_ACCOUNTS_IN_FLIGHT): "List EC2
instances across all accounts" once cold (AssumeRole, sessions), then --runs times warm, each
with fresh=True (the read cache would otherwise answer the repeats without AWS). Printed: wall
time (median, max) against the issue's budget (L + 2 s at 100 accounts, L + 5 s at 500),
account statuses, and CPU per question per process, with the agent's per account.

Then, at the largest N and the first --in-flight value, --memory-questions warm questions
(each a new thread, checkpointed to SQLite as the service does), printing this process's
resident memory (VmRSS) along the way: flat means no growth per question. A script that
prints figures; it asserts nothing and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import run_script_latency as split  # noqa: E402 - the sibling benchmark's child processes

QUESTION = "List EC2 instances across all accounts"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def measure(agent, n: int, runs: int, cpu: dict) -> list[dict]:
    out = []
    for _ in range(runs):
        before = {name: read() for name, read in cpu.items()}
        started = time.perf_counter()
        answer = await agent.ask(QUESTION, fresh=True)
        wall = (time.perf_counter() - started) * 1000
        out.append(
            {
                "wall_ms": wall,
                "statuses": Counter(r.status for r in answer.results),
                "rows": len(answer.resources),
                "cpu": {name: read() - before[name] for name, read in cpu.items()},
            }
        )
    return out


def report(label: str, n: int, runs: list[dict], budget_ms: float) -> None:
    walls = [r["wall_ms"] for r in runs]
    statuses: Counter = Counter()
    for r in runs:
        statuses.update(r["statuses"])
    cpu = {name: statistics.median(r["cpu"][name] for r in runs) for name in runs[0]["cpu"]}
    agent_ms = cpu["agent"] * 1000 / n
    held = "held" if max(walls) <= budget_ms else "NOT held"
    print(
        f"  {label}: median {statistics.median(walls):.0f} ms, max {max(walls):.0f} ms "
        f"(budget {budget_ms:.0f} ms: {held}); statuses {dict(statuses)}; rows {runs[-1]['rows']}"
    )
    print(
        "    CPU per question: "
        + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in cpu.items())
        + f"; agent {agent_ms:.1f} ms per account"
    )


async def run(args: argparse.Namespace, workdir: Path) -> None:
    from opsagent.service.checkpoints import open_checkpointer
    from opsagent.service.runtime import open_agent
    from opsagent.service.settings import Settings

    counts = sorted(int(n) for n in args.accounts.split(","))
    in_flight = [int(n) for n in args.in_flight.split(",")]
    latency = args.script_latency_ms
    print(f"== {split.load()}; script latency {latency:g} ms")
    aws = split.Child("--child", "aws")
    mcp = None
    try:
        central = aws.read()
        mcp = split.Child(
            "--child",
            "mcp",
            "--aws-endpoint",
            central["endpoint"],
            "--script-latency-ms",
            str(latency),
        )
        mcp_endpoint = mcp.read()["endpoint"]
        started = time.perf_counter()
        seeded = aws.ask(op="seed", count=counts[-1])["accounts"]
        print(f"seeded {len(seeded)} member accounts in {time.perf_counter() - started:.1f} s")
        cpu = {"agent": split.self_cpu_s, "stand-in": mcp.cpu_s, "moto": aws.cpu_s}
        env = split.aws_environment(
            central["endpoint"], central["access_key"], central["secret_key"]
        )
        with env:
            for n in counts:
                registry = split.scale_registry(seeded[:n], workdir / f"registry-{n}.json")
                budget = latency + (2000 if n <= 100 else 5000)
                print(f"\n{n} accounts × {len(split.SCALE_REGIONS)} regions")
                for limit in in_flight:
                    settings = Settings(
                        registry=registry,
                        mcp_endpoint=mcp_endpoint,
                        checkpoint_url="memory://",
                        max_accounts_in_flight=limit,
                        max_sessions=max(limit, n),
                    )
                    # Checkpoints on disk, as the service keeps them: memory then shows the
                    # agent's own growth, not a store of every answer.
                    store = f"sqlite:///{workdir}/checkpoints-{n}-{limit}.sqlite"
                    async with (
                        open_checkpointer(store) as checkpointer,
                        open_agent(settings, checkpointer=checkpointer) as agent,
                    ):
                        cold = await measure(agent, n, 1, cpu)
                        report(f"in flight {limit:>4}, cold", n, cold, budget)
                        report(
                            f"in flight {limit:>4}, warm",
                            n,
                            await measure(agent, n, args.runs, cpu),
                            budget,
                        )
                        if n == counts[-1] and limit == in_flight[0] and args.memory_questions:
                            await memory(agent, n, args.memory_questions)
                        sessions, closing = len(agent.sessions), time.perf_counter()
                    print(
                        f"    shut down with {sessions} sessions open in "
                        f"{time.perf_counter() - closing:.1f} s"
                    )
    finally:
        if mcp is not None:
            mcp.close()
        aws.close()


async def memory(agent, n: int, questions: int) -> None:
    print(f"  resident memory over {questions} warm questions ({n} accounts each):")
    marks = {1, 10, 25, 50, 75, questions}
    for i in range(1, questions + 1):
        await agent.ask(QUESTION, fresh=True)
        if i in marks:
            gc.collect()
            print(f"    after {i:>3}: {rss_mb():.0f} MB, {len(agent.sessions)} sessions open")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--script-latency-ms", type=float, default=1000)
    parser.add_argument("--accounts", default="100,500")
    parser.add_argument("--in-flight", default="64")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--memory-questions", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        asyncio.run(run(args, Path(workdir)))


if __name__ == "__main__":
    main()
