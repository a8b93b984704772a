"""How long an all-accounts question takes when every aws___run_script costs the real server's
latency, and whose CPU it costs: the agent's ("service"), the MCP stand-in's or moto's.

    .venv/bin/python benchmarks/run_script_latency.py [--script-latency-ms 1000] [--runs 10]
                                                      [--accounts 100] [--layout both]

Budgets (the issue): with --script-latency-ms L, the warm all-accounts question on the demo
organization answers in at most L + 300 ms; on --accounts member accounts × 2 regions in at
most L + 2 s with no account timing out. "Held" below means the slowest warm run is within
the budget.

Scenario A, demo organization (3 workload accounts × 2 regions): "Show me S3 buckets across
all accounts" and "List EC2 instances across all accounts", each asked once to warm up
(AssumeRole, MCP sessions, botocore models), then --runs times.
Scenario B, --accounts extra member accounts (opsagent.sandbox.seed.seed_member_accounts: one
instance and one bucket per account and region) in a registry of their own with us-east-1
and us-west-2: "List EC2 instances across all accounts" cold once, then --runs times warm.

Layouts (--layout split | embedded | both; both runs scenario A both ways and B split;
--scenario A | B | AB picks the scenarios):

* split: moto (with the demo organization and, for B, the extra accounts) in one child
  process, the MCP stand-in (McpServer with script_latency_ms) in a second one, the agent
  (open_agent with a registry, the stand-in's endpoint and the central identity in AWS_*
  variables, as pointed at any AWS) in this process. CPU seconds per question are read per
  process: /proc/<pid>/stat utime+stime for the children, resource.getrusage(RUSAGE_SELF)
  here, before and after each warm question. Why processes: inside one process the sandbox's
  threads and the agent share a GIL, and moto's and the stand-in's threads live for one
  request or one script each, so per-thread clocks (time.thread_time, /proc/<pid>/task) lose
  the CPU of every thread that has already ended; a process's counters keep it. The price:
  a stand-in without moto in its process cannot resolve secrets, so it checks signatures
  for structure only and cannot tell the account of a script (scripts are counted, not
  attributed; the per-account statuses come from the answer).
* embedded: the sandbox as `opsagent ask` runs it with nothing configured but
  OPSAGENT_SANDBOX_SCRIPT_LATENCY_MS (open_agent(Settings()): moto and the stand-in in
  background threads of this process, signatures verified, ``sandbox.scripts`` counting the
  scripts of each account); for B, start_sandbox(script_latency_ms=...) with the extra
  accounts and their registry. CPU is the whole process's (sandbox and agent together).

"Server time per script" is the stand-in's own measure of each run_script (the injected
latency included), from its run_script log record; "outside" is the rest of the question's
time: the agent, HTTP both ways, the stand-in's request handling around run_script, and
waiting for a core. The machine's load average is printed beside the figures: wall times
grow with other processes' work, CPU seconds much less.

A script that prints figures; it asserts nothing and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

S3_QUESTION = "Show me S3 buckets across all accounts"
EC2_QUESTION = "List EC2 instances across all accounts"
DEMO_QUESTIONS = (S3_QUESTION, EC2_QUESTION)
DEMO_SLACK_MS = 300
SCALE_SLACK_MS = 2000
SCALE_REGIONS = ["us-east-1", "us-west-2"]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# ----- child processes: moto, and the MCP stand-in -----


def _protocol_out() -> IO[str]:
    """The child's answers go to the real stdout; anything else printed goes to stderr."""
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr
    return out


def child_aws() -> None:
    """moto on loopback with the demo organization; on request, N more member accounts."""
    from opsagent.sandbox.moto_server import MotoServer
    from opsagent.sandbox.seed import seed_member_accounts, seed_organization

    out = _protocol_out()
    moto = MotoServer()
    moto.start()
    central = seed_organization(moto.endpoint).central_credentials
    out.write(
        json.dumps(
            {
                "endpoint": moto.endpoint,
                "access_key": central.access_key,
                "secret_key": central.secret_key,
            }
        )
        + "\n"
    )
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "seed":
            started = time.perf_counter()
            ids = seed_member_accounts(moto.endpoint, central, command["count"])
            out.write(
                json.dumps({"accounts": ids, "seconds": time.perf_counter() - started}) + "\n"
            )
    # No moto reset on the way out: it would rebuild every backend only to throw it away.
    os._exit(0)


class _ScriptRecords(logging.Handler):
    """The stand-in's run_script log records: API calls and server-side milliseconds."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[tuple[int, int]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == "run_script":
            self.records.append((getattr(record, "api_calls", 0), getattr(record, "elapsed_ms", 0)))


def child_mcp(aws_endpoint: str, latency_ms: float) -> None:
    """The AWS MCP Server stand-in against moto in another process (structural SigV4 checks)."""
    from opsagent.sandbox.mcp_server import McpServer

    out = _protocol_out()
    records = _ScriptRecords()
    server_log = logging.getLogger("opsagent.sandbox.mcp_server")
    server_log.addHandler(records)
    server_log.setLevel(logging.INFO)
    server_log.propagate = False
    server = McpServer(aws_endpoint, resolver=None, script_latency_ms=latency_ms)
    server.start()
    out.write(json.dumps({"endpoint": server.endpoint}) + "\n")
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "scripts":
            out.write(json.dumps({"scripts": records.records}) + "\n")
            records.records = []
    os._exit(0)


class Child:
    """A child process of a benchmark script (this one by default), spoken to in JSON lines."""

    def __init__(self, *args: str, script: str = __file__) -> None:
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, script, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.log.seek(0)
            raise SystemExit(
                f"child {self.proc.args[2:]} ended:\n"
                f"{self.log.read().decode(errors='replace')[-3000:]}"
            )
        return json.loads(line)

    def send(self, value: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(value) + "\n")
        self.proc.stdin.flush()

    def ask(self, **command: Any) -> dict[str, Any]:
        self.send(command)
        return self.read()

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def load() -> str:
    """The machine's load average: other processes' work makes wall times longer."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


def self_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ----- measuring -----


@dataclass
class Run:
    wall_ms: float
    statuses: Counter[str]
    rows: int
    slowest_account_ms: int
    accounts: list[str]  # "alias status rows elapsed"
    cpu_s: dict[str, float] = field(default_factory=dict)
    scripts: list[tuple[int, int]] = field(default_factory=list)  # (api calls, server ms)


@dataclass
class Setup:
    """What one layout offers the measuring loop."""

    agent: Any
    cpu: dict[str, Any]  # name -> () -> CPU seconds so far
    scripts: Any  # () -> [(api calls, server ms)] since the last call, or None


async def ask(setup: Setup, question: str) -> Run:
    setup.scripts()
    before = {name: read() for name, read in setup.cpu.items()}
    started = time.perf_counter()
    answer = await setup.agent.ask(question)
    wall = (time.perf_counter() - started) * 1000
    cpu = {name: read() - before[name] for name, read in setup.cpu.items()}
    results = answer.results
    return Run(
        wall_ms=wall,
        statuses=Counter(r.status for r in results),
        rows=len(answer.resources),
        slowest_account_ms=max((r.elapsed_ms for r in results), default=0),
        accounts=[
            f"{r.alias} {r.status} {r.count} rows {r.elapsed_ms} ms"
            + (f" ({r.error})" if r.error else "")
            for r in results
        ],
        cpu_s=cpu,
        scripts=setup.scripts() or [],
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(title: str, runs: list[Run], budget_ms: float) -> None:
    walls = [r.wall_ms for r in runs]
    slowest = max(walls)
    print(f"  {title}: {len(runs)} warm runs")
    print(
        f"    wall       median {statistics.median(walls):7.0f} ms   p95 {pct(walls, 0.95):7.0f} "
        f"ms   max {slowest:7.0f} ms   min {min(walls):7.0f} ms"
    )
    median = statistics.median(walls)
    print(
        f"    budget     {budget_ms:.0f} ms: {'held' if slowest <= budget_ms else 'MISSED'} "
        f"(slowest run {slowest - budget_ms:+.0f} ms, median {median - budget_ms:+.0f} ms "
        f"against it)"
    )
    statuses: Counter[str] = Counter()
    for run in runs:
        statuses.update(run.statuses)
    print(
        f"    accounts   {dict(statuses)} over all runs; rows per answer "
        f"{sorted({r.rows for r in runs})}; slowest account median "
        f"{statistics.median(r.slowest_account_ms for r in runs):.0f} ms"
    )
    scripts = [len(r.scripts) for r in runs]
    server_ms = [ms for r in runs for _, ms in r.scripts]
    calls = [c for r in runs for c, _ in r.scripts]
    if server_ms:
        outside = [r.wall_ms - max(ms for _, ms in r.scripts) for r in runs if r.scripts]
        print(
            f"    scripts    per question {statistics.median(scripts):.0f} (min {min(scripts)}, "
            f"max {max(scripts)}), API calls per script {statistics.median(calls):.0f}; "
            f"server time per script median {statistics.median(server_ms):.0f} ms, "
            f"max {max(server_ms):.0f} ms"
        )
        print(
            f"    outside    wall - slowest script's server time: median "
            f"{statistics.median(outside):.0f} ms (the agent, HTTP both ways, the stand-in "
            f"before and after run_script)"
        )
    for name in runs[0].cpu_s:
        per = [r.cpu_s[name] for r in runs]
        print(
            f"    CPU        {name:<34} {statistics.mean(per):6.2f} s per question "
            f"(median {statistics.median(per):.2f}, max {max(per):.2f})"
        )


def show_one(label: str, run: Run, accounts: bool) -> None:
    print(
        f"  {label}: {run.wall_ms:.0f} ms, accounts {dict(run.statuses)}, {run.rows} rows, "
        f"{len(run.scripts)} scripts, slowest account {run.slowest_account_ms} ms, CPU "
        + ", ".join(f"{k} {v:.2f} s" for k, v in run.cpu_s.items())
    )
    if accounts:
        for line in run.accounts:
            print(f"      {line}")


# ----- the layouts -----


@contextmanager
def environment(**variables: str) -> Iterator[None]:
    """Only these AWS_* and OPSAGENT_* variables while inside (the caller's come back after)."""
    saved = {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "OPSAGENT_"))}
    for key in saved:
        del os.environ[key]
    os.environ.update(variables)
    try:
        yield
    finally:
        for key in [k for k in os.environ if k.startswith(("AWS_", "OPSAGENT_"))]:
            del os.environ[key]
        os.environ.update(saved)


def aws_environment(endpoint: str, access_key: str, secret_key: str) -> Any:
    """The central identity and endpoint the way boto3 reads them, as for any AWS."""
    return environment(
        AWS_ACCESS_KEY_ID=access_key,
        AWS_SECRET_ACCESS_KEY=secret_key,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=endpoint,
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
    )


def scale_registry(account_ids: list[str], path: Path) -> Path:
    from opsagent.sandbox.seed import CENTRAL

    accounts = [
        {
            "id": CENTRAL,
            "name": "Central Operations",
            "environment": "operations",
            "role": "central",
        }
    ]
    accounts += [
        {"id": account, "name": f"Member {n:04d}", "environment": "member", "role": "workload"}
        for n, account in enumerate(account_ids, 1)
    ]
    path.write_text(json.dumps({"default_regions": SCALE_REGIONS, "accounts": accounts}, indent=1))
    return path


async def scenario_a(setup: Setup, runs: int, latency_ms: float) -> None:
    for question in DEMO_QUESTIONS:
        show_one(f"warm-up {question!r}", await ask(setup, question), accounts=False)
    for question in DEMO_QUESTIONS:
        measured = [await ask(setup, question) for _ in range(runs)]
        print(f"  ({load()})")
        report(repr(question), measured, latency_ms + DEMO_SLACK_MS)
        print("    last run's accounts: " + "; ".join(measured[-1].accounts))


async def scenario_b(setup: Setup, runs: int, latency_ms: float, count: int) -> None:
    show_one(f"cold {EC2_QUESTION!r}", await ask(setup, EC2_QUESTION), accounts=False)
    measured = [await ask(setup, EC2_QUESTION) for _ in range(runs)]
    print(f"  ({load()})")
    report(
        f"{EC2_QUESTION!r} on {count} accounts × {len(SCALE_REGIONS)} regions",
        measured,
        latency_ms + SCALE_SLACK_MS,
    )
    bad = [line for run in measured for line in run.accounts if " ok " not in line]
    for line in bad[:5]:
        print(f"    not ok: {line}")


async def split(args: argparse.Namespace, workdir: Path) -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    from opsagent.sandbox import REGISTRY_PATH
    from opsagent.service.runtime import open_agent
    from opsagent.service.settings import Settings

    print(
        f"\n== split: moto, MCP stand-in and agent in three processes "
        f"(script latency {args.script_latency_ms:g} ms)"
    )
    started = time.perf_counter()
    aws = Child("--child", "aws")
    mcp = None
    try:
        central = aws.read()
        mcp = Child(
            "--child",
            "mcp",
            "--aws-endpoint",
            central["endpoint"],
            "--script-latency-ms",
            str(args.script_latency_ms),
        )
        mcp_endpoint = mcp.read()["endpoint"]
        print(
            f"  moto (demo organization seeded) and stand-in up in "
            f"{time.perf_counter() - started:.1f} s"
        )
        cpu = {
            "service (agent, this process)": self_cpu_s,
            "MCP stand-in (child process)": mcp.cpu_s,
            "moto (child process)": aws.cpu_s,
        }

        def scripts() -> list[tuple[int, int]]:
            assert mcp is not None
            return [(calls, ms) for calls, ms in mcp.ask(op="scripts")["scripts"]]

        with aws_environment(central["endpoint"], central["access_key"], central["secret_key"]):
            settings = Settings(
                registry=REGISTRY_PATH, mcp_endpoint=mcp_endpoint, checkpoint_url="memory://"
            )
            if "A" in args.scenario:
                print(
                    "A. demo organization (3 workload accounts × 2 regions), budget latency "
                    f"+ {DEMO_SLACK_MS} ms"
                )
                async with open_agent(settings, checkpointer=InMemorySaver()) as agent:
                    await scenario_a(Setup(agent, cpu, scripts), args.runs, args.script_latency_ms)
            if "B" not in args.scenario or args.accounts <= 0:
                return
            started = time.perf_counter()
            cpu_before = aws.cpu_s()
            seeded = aws.ask(op="seed", count=args.accounts)
            print(
                f"B. {args.accounts} member accounts × {len(SCALE_REGIONS)} regions, budget "
                f"latency + {SCALE_SLACK_MS} ms; seeded in {seeded['seconds']:.1f} s "
                f"({time.perf_counter() - started:.1f} s wall, moto CPU "
                f"{aws.cpu_s() - cpu_before:.1f} s)"
            )
            registry = scale_registry(seeded["accounts"], workdir / "scale-registry.json")
            settings = Settings(
                registry=registry, mcp_endpoint=mcp_endpoint, checkpoint_url="memory://"
            )
            async with open_agent(settings, checkpointer=InMemorySaver()) as agent:
                await scenario_b(
                    Setup(agent, cpu, scripts), args.runs, args.script_latency_ms, args.accounts
                )
    finally:
        if mcp is not None:
            mcp.close()
        aws.close()


class _EmbeddedScripts:
    """Scripts of the in-process stand-in: its log records and ``sandbox.scripts``."""

    def __init__(self) -> None:
        self.records = _ScriptRecords()
        server_log = logging.getLogger("opsagent.sandbox.mcp_server")
        server_log.addHandler(self.records)
        server_log.setLevel(logging.INFO)
        server_log.propagate = False
        self.sandbox: Any = None
        self.per_account: Counter[int] = Counter()  # scripts an account got -> times

    def __call__(self) -> list[tuple[int, int]]:
        if self.sandbox is not None:
            self.per_account.update(self.sandbox.scripts.per_account().values())
            self.sandbox.scripts.clear()
        calls, self.records.records = self.records.records, []
        return calls

    def summary(self) -> str:
        counts, self.per_account = self.per_account, Counter()
        if set(counts) == {1}:
            return (
                f"sandbox.scripts: exactly one script per account per question "
                f"({counts[1]} account-questions)"
            )
        return f"sandbox.scripts: scripts per account per question -> times: {dict(counts)}"


async def embedded(args: argparse.Namespace, workdir: Path, with_scale: bool) -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    from opsagent.sandbox import start_sandbox
    from opsagent.sandbox.seed import seed_member_accounts
    from opsagent.service.runtime import open_agent
    from opsagent.service.settings import Settings

    latency = int(round(args.script_latency_ms))
    print(
        f"\n== embedded: sandbox threads and agent in this one process "
        f"(script latency {latency} ms)"
    )
    cpu = {"sandbox + agent (one process)": self_cpu_s}
    scripts = _EmbeddedScripts()
    if "A" in args.scenario:
        # Exactly what `opsagent ask` does with nothing configured but the latency.
        with environment(OPSAGENT_SANDBOX_SCRIPT_LATENCY_MS=str(latency)):
            settings = Settings(checkpoint_url="memory://")
            started = time.perf_counter()
            async with open_agent(settings, checkpointer=InMemorySaver()) as agent:
                print(
                    f"  open_agent(Settings()) with the embedded sandbox in "
                    f"{time.perf_counter() - started:.1f} s"
                )
                print(
                    "A. demo organization (3 workload accounts × 2 regions), budget latency "
                    f"+ {DEMO_SLACK_MS} ms"
                )
                scripts.sandbox = agent.sandbox
                await scenario_a(Setup(agent, cpu, scripts), args.runs, latency)
                print(f"  {scripts.summary()}")
    if not with_scale or "B" not in args.scenario or args.accounts <= 0:
        return
    sandbox = await asyncio.to_thread(start_sandbox, script_latency_ms=latency)
    scripts.sandbox = sandbox
    creds = sandbox.central_credentials
    started = time.perf_counter()
    ids = await asyncio.to_thread(seed_member_accounts, sandbox.aws_endpoint, creds, args.accounts)
    print(
        f"B. {args.accounts} member accounts × {len(SCALE_REGIONS)} regions, budget latency "
        f"+ {SCALE_SLACK_MS} ms; seeded in {time.perf_counter() - started:.1f} s"
    )
    registry = scale_registry(ids, workdir / "scale-registry.json")
    with aws_environment(sandbox.aws_endpoint, creds.access_key, creds.secret_key):
        settings = Settings(
            registry=registry, mcp_endpoint=sandbox.mcp_endpoint, checkpoint_url="memory://"
        )
        async with open_agent(settings, checkpointer=InMemorySaver()) as agent:
            await scenario_b(Setup(agent, cpu, scripts), args.runs, latency, args.accounts)
    print(f"  {scripts.summary()}")
    # No sandbox.stop(): it resets moto, which rebuilds every backend it has made (each EC2
    # region with moto's AMI catalogue), longer than the benchmark for hundreds of
    # account-regions. The process's exit ends the sandbox's daemon threads.


async def main_async(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        if args.layout in ("split", "both"):
            await split(args, Path(workdir))
        if args.layout in ("embedded", "both"):
            await embedded(args, Path(workdir), with_scale=args.layout == "embedded")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--script-latency-ms", type=float, default=1000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument(
        "--accounts", type=int, default=100, help="member accounts for scenario B (0: skip it)"
    )
    parser.add_argument(
        "--layout",
        choices=("split", "embedded", "both"),
        default="both",
        help="both: A split and embedded, B split",
    )
    parser.add_argument(
        "--scenario",
        choices=("A", "B", "AB"),
        default="AB",
        help="A: demo organization; B: --accounts member accounts",
    )
    parser.add_argument("--child", choices=("aws", "mcp"), help=argparse.SUPPRESS)
    parser.add_argument("--aws-endpoint", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "aws":
        child_aws()
    elif args.child == "mcp":
        child_mcp(args.aws_endpoint, args.script_latency_ms)
    else:
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
        print(f"{os.cpu_count()} CPUs; Python {sys.version.split()[0]}; {load()}")
        asyncio.run(main_async(args))
        print(f"\ndone; {load()}")


if __name__ == "__main__":
    main()
