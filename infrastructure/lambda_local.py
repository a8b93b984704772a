"""Run a Lambda handler from its deployment package, in this process, as the Python runtime would.

    python -I -S infrastructure/lambda_local.py --code dist/bridge-lambda.zip \\
        --tool opsagent-bridge___list_accounts --event '{}' --result-file out.json

Meant to be started in a fresh interpreter with ``-I -S`` (no site-packages, no PYTHONPATH,
no user site): then the only code importable besides the standard library is the package's,
as in Lambda, where ``/var/task`` (the unzipped package) comes first on ``sys.path``. So it
imports nothing but the standard library itself before the package is on the path.

What it plays of the runtime: the zip unzipped into a directory (``--code`` may also be an
unzipped directory), that directory first on ``sys.path`` and as ``LAMBDA_TASK_ROOT``, an
environment value under ``/var/task/`` pointed into it, ``AWS_LAMBDA_FUNCTION_NAME`` and the
other ``AWS_LAMBDA_*`` variables, the handler named ``module.function`` imported once (the
cold start), then one call per ``--event``, each with a context carrying what the Python
runtime's context carries (``function_name``, ``aws_request_id``,
``get_remaining_time_in_millis()``...) and a ``client_context.custom`` as AgentCore Gateway
fills it for a Lambda target: ``bedrockAgentCoreToolName`` and the call's ids
(https://docs.aws.amazon.com/bedrock-agentcore/latest/devguide/gateway-add-target-lambda.html,
"Lambda function input format"). Not played: the memory limit, the timeout (only reported to
the handler), the read-only file system.

The result file holds JSON: the seconds unzipping took (``unpack_s``) and the import of the
handler's module (``init_s``), ``sys.path``, and per call its seconds and the handler's
return value; ``--result-file -`` prints it as the last line.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tempfile
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

TASK_ROOT = "/var/task"


class ClientContext:
    def __init__(self, custom: dict[str, Any]) -> None:
        self.custom = custom
        self.env = None
        self.client = None


class Context:
    """What the Python runtime passes as ``context``."""

    def __init__(self, function_name: str, timeout_s: float, custom: dict[str, Any]) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = (
            f"arn:aws:lambda:{os.environ.get('AWS_REGION', 'us-east-1')}:123456789012:"
            f"function:{function_name}"
        )
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self.identity = None
        self.client_context = ClientContext(custom)
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def gateway_custom(tool: str, gateway_id: str = "local-gateway") -> dict[str, Any]:
    return {
        "bedrockAgentCoreMessageVersion": "1.0",
        "bedrockAgentCoreAwsRequestId": str(uuid.uuid4()),
        "bedrockAgentCoreMcpMessageId": str(uuid.uuid4()),
        "bedrockAgentCoreGatewayId": gateway_id,
        "bedrockAgentCoreTargetId": "local-target",
        "bedrockAgentCoreToolName": tool,
    }


def unpack(code: Path) -> Path:
    if code.is_dir():
        return code
    directory = Path(tempfile.mkdtemp(prefix="lambda-task-"))
    with zipfile.ZipFile(code) as archive:
        archive.extractall(directory)
    return directory


def lambda_environment(task_root: Path, function_name: str, timeout_s: float) -> None:
    for key, value in list(os.environ.items()):
        if value == TASK_ROOT or value.startswith(TASK_ROOT + "/"):
            os.environ[key] = str(task_root) + value[len(TASK_ROOT) :]
    os.environ.update(
        LAMBDA_TASK_ROOT=str(task_root),
        AWS_LAMBDA_FUNCTION_NAME=function_name,
        AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE=os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024"),
        AWS_EXECUTION_ENV=f"AWS_Lambda_python{sys.version_info.major}.{sys.version_info.minor}",
        AWS_LAMBDA_FUNCTION_TIMEOUT=str(int(timeout_s)),
    )
    os.environ.setdefault("AWS_REGION", os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, required=True, help="the zip, or it unzipped")
    parser.add_argument("--handler", default="opsagent.bridge.handler.handler")
    parser.add_argument("--function-name", default="opsagent-bridge")
    parser.add_argument("--timeout", type=float, default=300.0, help="the function's timeout, s")
    parser.add_argument("--tool", action="append", default=[], help="per call: the tool name")
    parser.add_argument("--event", action="append", default=[], help="per call: its JSON event")
    parser.add_argument("--result-file", default="-")
    args = parser.parse_args(argv)
    if len(args.tool) != len(args.event):
        parser.error("give one --event per --tool")

    unpacking = time.perf_counter()
    task_root = unpack(args.code)
    unpacked = time.perf_counter()
    lambda_environment(task_root, args.function_name, args.timeout)
    sys.path.insert(0, str(task_root))
    module_name, _, function = args.handler.rpartition(".")
    handler = getattr(importlib.import_module(module_name), function)
    result: dict[str, Any] = {
        "handler": args.handler,
        "task_root": str(task_root),
        "python": sys.version.split()[0],
        "sys_path": sys.path,
        "unpack_s": unpacked - unpacking,
        "init_s": time.perf_counter() - unpacked,  # the handler's module imported
        "calls": [],
    }
    for tool, event in zip(args.tool, args.event, strict=True):
        context = Context(args.function_name, args.timeout, gateway_custom(tool))
        began = time.perf_counter()
        answer = handler(json.loads(event), context)
        result["calls"].append(
            {"tool": tool, "seconds": time.perf_counter() - began, "response": answer}
        )
    text = json.dumps(result, default=str)
    if args.result_file == "-":
        print(text)
    else:
        Path(args.result_file).write_text(text)
    sys.stdout.flush()
    # The bridge keeps a loop thread and sessions; the runtime freezes or ends the process.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
