"""``python -m opsagent.sandbox``: run the sandbox in the foreground, or measure its start-up.

python -m opsagent.sandbox               # start, print endpoints and credentials, wait
python -m opsagent.sandbox --benchmark 3 # start, seed and stop three times, print seconds
"""

from __future__ import annotations

import argparse
import signal
import statistics
import time

from opsagent.sandbox import Sandbox, start_sandbox


def _serve() -> None:
    sandbox = start_sandbox()
    creds = sandbox.central_credentials
    print(f"AWS (moto):      {sandbox.aws_endpoint}")
    print(
        f"AWS MCP Server:  {sandbox.mcp_endpoint}  (SigV4: {sandbox.mcp_service}, "
        f"{sandbox.mcp_region})"
    )
    print(f"Registry:        {sandbox.registry_path}")
    print("Central identity (IAM user opsagent, 111111111111), for a shell:")
    print(f"  export AWS_ACCESS_KEY_ID={creds.access_key}")
    print(f"  export AWS_SECRET_ACCESS_KEY={creds.secret_key}")
    print(f"  export AWS_ENDPOINT_URL={sandbox.aws_endpoint} AWS_DEFAULT_REGION=us-east-1")
    print(f"Started in {sandbox.timings['total']} s; Ctrl-C stops.", flush=True)
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        sandbox.stop()


def _benchmark(runs: int) -> None:
    figures: dict[str, list[float]] = {
        "moto": [],
        "seed": [],
        "mcp": [],
        "start": [],
        "start_cpu": [],
        "stop": [],
    }
    for run in range(1, runs + 1):
        # CPU seconds of the whole process (server and client threads alike): unlike wall
        # time, they do not grow when other processes load the machine.
        cpu = time.process_time()
        sandbox = Sandbox().start()
        figures["start_cpu"].append(round(time.process_time() - cpu, 3))
        for part in ("moto", "seed", "mcp"):
            figures[part].append(sandbox.timings[part])
        figures["start"].append(sandbox.timings["total"])
        began = time.perf_counter()
        sandbox.stop()
        figures["stop"].append(round(time.perf_counter() - began, 3))
        print(
            f"run {run}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in figures.items()), flush=True
        )
    print("median: " + ", ".join(f"{k} {statistics.median(v):.2f}s" for k, v in figures.items()))


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m opsagent.sandbox",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--benchmark",
        type=int,
        metavar="RUNS",
        help="start, seed and stop the sandbox RUNS times and print the seconds",
    )
    args = parser.parse_args()
    if args.benchmark:
        _benchmark(args.benchmark)
    else:
        # sigwait needs the signals blocked, or they would interrupt the process first.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        _serve()


if __name__ == "__main__":
    main()
