"""The bridge Lambda's cold start: a fresh Python process importing the handler from its package
and answering its first ``list_accounts``, then a second (warm) one.

Prints figures; asserts nothing. Each run is a new interpreter started with ``-I -S -B`` by
infrastructure/lambda_local.py: only the package and the standard library importable, as in
Lambda, and no bytecode written (``/var/task`` is read-only in Lambda, so every cold start
compiles what it imports). ``--compiled`` also measures the same package with ``.pyc``
files compiled in beforehand, which is what shipping bytecode would save.

    .venv/bin/python benchmarks/bridge_cold_start.py [--runs 5] [--compiled]
    .venv/bin/python benchmarks/bridge_cold_start.py --code dist/bridge-lambda.zip --env-file env

By default the package is built from this environment (``lambda_zip.py --from-env``: the
same modules and distributions as ``make lambda-zip``, for this machine, because an arm64
package's compiled extensions do not load on x86_64) with the sandbox's registry, and the
handler runs against the embedded sandbox: its moto as AWS, its stand-in as the AWS MCP
Server, its central identity as the Lambda's role. ``--code`` takes a package (zip or
directory) built for this machine; ``--env-file`` (KEY=VALUE lines) gives the environment
instead of the sandbox.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNNER = ROOT / "infrastructure" / "lambda_local.py"
TOOL = "opsagent-bridge___list_accounts"
sys.path.insert(0, str(ROOT))


def run_once(task: Path, env: dict[str, str], result: Path) -> dict[str, float]:
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable, "-I", "-S", "-B", str(RUNNER), "--code", str(task),
            "--tool", TOOL, "--event", "{}", "--tool", TOOL, "--event", "{}",
            "--result-file", str(result),
        ],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"the handler failed:\n{done.stderr[-3000:]}")
    found = json.loads(result.read_text())
    first, warm = found["calls"]
    if first["response"].get("isError"):
        raise SystemExit(f"list_accounts answered an error: {first['response']}")
    return {
        # From starting the interpreter to the first answer, as the parent sees it.
        "process_wall_s": wall,
        "import_handler_s": found["init_s"],
        "first_call_s": first["seconds"],
        "warm_call_s": warm["seconds"],
    }


def summarise(label: str, runs: list[dict[str, float]]) -> None:
    print(f"{label} ({len(runs)} fresh processes; median, min-max):")
    for key in runs[0]:
        values = [r[key] for r in runs]
        print(
            f"  {key:18} {statistics.median(values) * 1000:8.0f} ms"
            f"   ({min(values) * 1000:.0f}-{max(values) * 1000:.0f})"
        )


def read_env_file(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--code", type=Path, help="a package for this machine (zip or dir)")
    parser.add_argument("--env-file", type=Path, help="the handler's environment, KEY=VALUE")
    parser.add_argument("--compiled", action="store_true", help="also with .pyc compiled in")
    args = parser.parse_args()

    from infrastructure import lambda_zip

    scratch = Path(tempfile.mkdtemp(prefix="bridge-cold-start-"))
    sandbox = None
    try:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OPSAGENT_"))}
        if args.env_file:
            env = {**base, **read_env_file(args.env_file)}
            registry = None
        else:
            from opsagent.sandbox import start_sandbox

            sandbox = start_sandbox()
            creds = sandbox.central_credentials
            registry = Path(sandbox.registry_path)
            env = {
                **base,
                "AWS_ACCESS_KEY_ID": creds.access_key,
                "AWS_SECRET_ACCESS_KEY": creds.secret_key,
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_ENDPOINT_URL": sandbox.aws_endpoint,
                "OPSAGENT_REGISTRY": "/var/task/registry.json",
                "OPSAGENT_MCP_ENDPOINT": sandbox.mcp_endpoint,
                "OPSAGENT_AUDIT_LOG": "off",
            }
            if creds.token:
                env["AWS_SESSION_TOKEN"] = creds.token

        if args.code is None:
            built = lambda_zip.build(
                scratch / "bridge-lambda.zip",
                from_env=True,
                registry=registry,
                compresslevel=6,
                log=lambda *_: None,
            )
            print(
                f"package: built from this environment in {built.seconds:.1f} s, "
                f"{built.files} files, {built.zipped / 2**20:.1f} MB zipped, "
                f"{built.unzipped / 2**20:.1f} MB unzipped"
            )
            code = built.out
        else:
            code = args.code
        task = scratch / "task"
        if code.is_dir():
            shutil.copytree(code, task)
        else:
            with zipfile.ZipFile(code) as archive:
                archive.extractall(task)
        print(f"python {sys.version.split()[0]} on {os.uname().machine}, {os.cpu_count()} CPUs")

        result = scratch / "result.json"
        run_once(task, env, result)  # page cache warmed, as an execution environment's disk
        summarise("no .pyc (as packaged)", [run_once(task, env, result) for _ in range(args.runs)])
        if args.compiled:
            compiled = scratch / "compiled"
            shutil.copytree(task, compiled)
            started = time.perf_counter()
            compileall.compile_dir(compiled, quiet=1, workers=0)
            print(f"(compiled in {time.perf_counter() - started:.1f} s)")
            run_once(compiled, env, result)
            summarise(
                "with .pyc compiled in", [run_once(compiled, env, result) for _ in range(args.runs)]
            )
    finally:
        if sandbox is not None:
            sandbox.stop()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
