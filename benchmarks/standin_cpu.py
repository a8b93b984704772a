"""CPU the AWS MCP Server stand-in spends per aws___run_script and per AWS call, and moto's.

    .venv/bin/python benchmarks/standin_cpu.py [--accounts 100] [--rounds 5]
        [--types ec2:instance,s3:bucket,rds:db-instance,lambda:function]
        [--regions us-east-1,us-west-2] [--concurrency 16] [--profile FILE]

(``--types none`` sends the template without reads: what a script costs the stand-in with
no AWS call.)

Three processes, so each one's CPU is its own: moto (the demo organization and --accounts
member accounts, ``seed_member_accounts``) in one child, the MCP stand-in (``McpServer``) in a
second, and the client in this one. The client assumes each member account's read-only role,
opens one signed MCP session per account (``aws_iam_streamablehttp_client``, as the agent
does) and sends each account ONE script per round, the agent's real template
(``opsagent.access.script.build_script``) with the catalogue reads of --types in every
region of --regions, concurrently (--concurrency sessions at once). The stand-in verifies
every signature in full: it is handed the secrets of the assumed-role keys (a table resolver
in place of moto's in-process lookup, which it cannot reach from another process), so its
work is what the embedded sandbox does per script.

CPU is read per child process from /proc/<pid>/stat (utime + stime: the threads that already
ended included) before and after the measured rounds; one warm-up round first (botocore
models, clients, connections). Figures: CPU ms per script and per AWS call, stand-in and moto
apart. --profile FILE writes a cProfile of every stand-in thread (each on its own CPU clock;
pstats format; the warm-up round included) and prints its top entries: read its proportions,
not its milliseconds (profiling doubles the CPU), and expect the worker threads' idle waits
(``SimpleQueue.get``) to show up with nonsense times. A sampling profiler that counts only
the thread holding the GIL (``py-spy record --gil -p <stand-in pid>``) gives a cleaner split.

A script that prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import statistics
import sys
import threading
import time
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).parent))
import run_script_latency  # noqa: E402 - the sibling benchmark's child-process plumbing

ROLE = "OpsAgentReadOnly"


# ----- the children -----


def _protocol_out() -> IO[str]:
    """Answers go to the real stdout; anything else printed goes to stderr."""
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr
    return out


def child_aws(count: int) -> None:
    from opsagent.sandbox.moto_server import MotoServer
    from opsagent.sandbox.seed import seed_member_accounts, seed_organization

    out = _protocol_out()
    moto = MotoServer()
    moto.start()
    central = seed_organization(moto.endpoint).central_credentials
    started = time.perf_counter()
    accounts = seed_member_accounts(moto.endpoint, central, count) if count else []
    out.write(
        json.dumps(
            {
                "endpoint": moto.endpoint,
                "access_key": central.access_key,
                "secret_key": central.secret_key,
                "accounts": accounts or ["222222222222", "333333333333", "444444444444"],
                "seed_s": time.perf_counter() - started,
            }
        )
        + "\n"
    )
    for _ in sys.stdin:
        pass
    os._exit(0)  # no moto reset: it would rebuild every backend only to drop it


class _ThreadProfiles:
    """cProfile in every thread started after ``install`` (cProfile sees one thread only)."""

    def __init__(self) -> None:
        self.profiles: list[cProfile.Profile] = []
        self._lock = threading.Lock()

    def install(self) -> None:
        def start(*_: Any) -> None:
            # Each thread's own CPU clock: waiting (sockets, locks, queues) costs nothing.
            profile = cProfile.Profile(time.thread_time)
            with self._lock:
                self.profiles.append(profile)
            profile.enable()  # replaces this hook for the thread

        threading.setprofile(start)

    def dump(self, path: str) -> None:
        with self._lock:
            profiles = list(self.profiles)
        for profile in profiles:
            profile.create_stats()
        stats = pstats.Stats(*[p for p in profiles if getattr(p, "stats", None)])
        stats.dump_stats(path)


def child_mcp(aws_endpoint: str, profile_path: str | None) -> None:
    from opsagent.sandbox.identity import KeyIdentity
    from opsagent.sandbox.mcp_server import McpServer

    out = _protocol_out()
    keys = {
        entry["access_key_id"]: KeyIdentity(**entry) for entry in json.loads(sys.stdin.readline())
    }
    profiles = _ThreadProfiles()
    if profile_path:
        profiles.install()
    server = McpServer(aws_endpoint, resolver=keys.get)
    server.start()
    out.write(json.dumps({"endpoint": server.endpoint}) + "\n")
    for line in sys.stdin:
        if json.loads(line).get("op") == "dump" and profile_path:
            profiles.dump(profile_path)
            out.write(json.dumps({"dumped": profile_path}) + "\n")
    os._exit(0)


class Child(run_script_latency.Child):
    """A child process of this script (run_script_latency's, pointed here)."""

    def __init__(self, *args: str) -> None:
        super().__init__(*args, script=__file__)


# ----- the client -----


def assume_roles(aws: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each account's read-only role credentials, and the identity the stand-in resolves."""
    import boto3

    sts = boto3.client(
        "sts",
        region_name="us-east-1",
        endpoint_url=aws["endpoint"],
        aws_access_key_id=aws["access_key"],
        aws_secret_access_key=aws["secret_key"],
    )
    found = {}
    for account in aws["accounts"]:
        answer = sts.assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/{ROLE}", RoleSessionName="standin-cpu"
        )
        creds, user = answer["Credentials"], answer["AssumedRoleUser"]
        found[account] = {
            "access_key_id": creds["AccessKeyId"],
            "secret_access_key": creds["SecretAccessKey"],
            "session_token": creds["SessionToken"],
            "account_id": account,
            "kind": "assumed-role",
            "arn": user["Arn"],
            "principal_arn": f"arn:aws:iam::{account}:role/{ROLE}",
        }
    return found


def script_for(types: list[str], regions: list[str]) -> tuple[str, int]:
    """The agent's script for these types in these regions, and its number of reads
    (``none``: the template with no reads, for the stand-in's cost per script alone)."""
    from opsagent.access.guard import sensitive_output_paths
    from opsagent.access.script import build_script
    from opsagent.graph.catalogue import CATALOGUE
    from opsagent.graph.models import ResourceQuery

    reads = [
        CATALOGUE[t].read(region, ResourceQuery(resource_type=t))
        for t in types
        if t != "none"
        for region in regions
    ]
    redact = {
        (r.service, r.operation): sensitive_output_paths(r.service, r.operation)
        for read in reads
        for r in read.walk()
    }
    return build_script(reads, redact=redact), len(reads)


async def open_sessions(
    stack: AsyncExitStack, endpoint: str, identities: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    from botocore.credentials import Credentials
    from mcp import ClientSession
    from mcp_proxy_for_aws.client import aws_iam_streamablehttp_client

    sessions = {}
    for account, identity in identities.items():
        read, write, _ = await stack.enter_async_context(
            aws_iam_streamablehttp_client(
                endpoint,
                aws_service="aws-mcp",
                aws_region="us-east-1",
                credentials=Credentials(
                    identity["access_key_id"],
                    identity["secret_access_key"],
                    identity["session_token"],
                ),
                timeout=120,
            )
        )
        session = await stack.enter_async_context(
            ClientSession(read, write, read_timeout_seconds=timedelta(seconds=120))
        )
        await session.initialize()
        sessions[account] = session
    return sessions


async def one_round(
    sessions: dict[str, Any], code: str, concurrency: int
) -> tuple[int, int, list[str]]:
    """(scripts, AWS calls, problems) of one script per account."""
    gate = asyncio.Semaphore(concurrency)

    async def run(account: str, session: Any) -> tuple[int, list[str]]:
        async with gate:
            result = await session.call_tool("aws___run_script", {"code": code})
        payload = result.structuredContent or {}
        problems = [] if payload.get("status") == "success" else [f"{account}: {payload}"]
        calls = payload.get("api_calls", [])
        problems += [f"{account}: {c}" for c in calls if c.get("status") != "success"]
        return len(calls), problems[:1]

    done = await asyncio.gather(*(run(a, s) for a, s in sessions.items()))
    return len(done), sum(c for c, _ in done), [p for _, ps in done for p in ps]


async def measure(args: argparse.Namespace) -> None:
    types = args.types.split(",")
    regions = args.regions.split(",")
    started = time.perf_counter()
    aws_child = Child("--child", "aws", "--accounts", str(args.accounts))
    mcp_child: Child | None = None
    try:
        aws = aws_child.read()
        identities = assume_roles(aws)
        child_args = ["--child", "mcp", "--aws-endpoint", aws["endpoint"]]
        if args.profile:
            child_args += ["--profile", args.profile]
        mcp_child = Child(*child_args)
        mcp_child.send(list(identities.values()))
        endpoint = mcp_child.read()["endpoint"]
        code, reads = script_for(types, regions)
        print(
            f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}; {len(identities)} "
            f"accounts (seeded in {aws['seed_s']:.1f} s), up in "
            f"{time.perf_counter() - started:.1f} s; script: {reads} reads ({', '.join(types)} "
            f"in {', '.join(regions)}), {len(code)} characters"
        )
        async with AsyncExitStack() as stack:
            sessions = await open_sessions(stack, endpoint, identities)
            scripts, calls, problems = await one_round(sessions, code, args.concurrency)
            print(f"warm-up: {scripts} scripts, {calls} AWS calls")
            for problem in problems[:3]:
                print(f"  not ok: {problem[:300]}")
            mcp_per_script, moto_per_script = [], []
            mcp_per_call, moto_per_call = [], []
            for number in range(1, args.rounds + 1):
                mcp_before, moto_before = mcp_child.cpu_s(), aws_child.cpu_s()
                wall = time.perf_counter()
                scripts, calls, problems = await one_round(sessions, code, args.concurrency)
                wall = time.perf_counter() - wall
                mcp_ms = (mcp_child.cpu_s() - mcp_before) * 1000
                moto_ms = (aws_child.cpu_s() - moto_before) * 1000
                mcp_per_script.append(mcp_ms / scripts)
                moto_per_script.append(moto_ms / scripts)
                if calls:
                    mcp_per_call.append(mcp_ms / calls)
                    moto_per_call.append(moto_ms / calls)
                print(
                    f"round {number}: {scripts} scripts, {calls} AWS calls in {wall:.2f} s; "
                    f"stand-in CPU {mcp_ms:.0f} ms ({mcp_per_script[-1]:.1f} ms/script"
                    + (f", {mcp_per_call[-1]:.2f} ms/call" if calls else "")
                    + f"); moto CPU {moto_ms:.0f} ms"
                    + (f" ({moto_per_call[-1]:.2f} ms/call)" if calls else "")
                    + (f"; {len(problems)} not ok" if problems else "")
                )
        print(
            f"median: stand-in {statistics.median(mcp_per_script):.1f} ms CPU per script"
            + (f", {statistics.median(mcp_per_call):.2f} ms per AWS call" if mcp_per_call else "")
            + f"; moto {statistics.median(moto_per_script):.1f} ms per script"
            + (f", {statistics.median(moto_per_call):.2f} ms per AWS call" if moto_per_call else "")
        )
        if args.profile:
            mcp_child.send({"op": "dump"})
            mcp_child.read()
            stats = pstats.Stats(args.profile)
            stats.sort_stats("tottime").print_stats(25)
            stats.sort_stats("cumulative").print_stats(40)
    finally:
        if mcp_child is not None:
            mcp_child.close()
        aws_child.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=100, help="member accounts (0: demo)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--types", default="ec2:instance,s3:bucket,rds:db-instance,lambda:function")
    parser.add_argument("--regions", default="us-east-1,us-west-2")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--profile", help="write a cProfile of the stand-in's threads here")
    parser.add_argument("--child", choices=("aws", "mcp"), help=argparse.SUPPRESS)
    parser.add_argument("--aws-endpoint", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "aws":
        child_aws(args.accounts)
    elif args.child == "mcp":
        child_mcp(args.aws_endpoint, args.profile)
    else:
        asyncio.run(measure(args))


if __name__ == "__main__":
    main()
