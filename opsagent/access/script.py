"""One account's reads as ONE ``aws___run_script`` call: a fixed template, the reads as data.

The AWS MCP Server's ``aws___run_script`` runs Python in a server-side sandbox (no file
system, no network) whose only way to AWS is ``await call_boto3(service_name,
operation_name, region_name, params)``, signed as the MCP request's caller; top-level
``await`` works and the script's last expression is returned as ``return_value`` in
``{"status", "return_value", "api_calls"}``. Sources: the AWS agent-toolkit user guide,
"Understanding the MCP Server tools"
(https://docs.aws.amazon.com/aws-mcp/latest/userguide/understanding-mcp-server-tools.html);
awslabs/mcp PR #4584 (MIGRATION.md: ``call_aws`` removed 2026-08-31, PascalCase operation
names, ~13–15 s per script); aws/agent-toolkit-for-aws issue #294. The result shape and the
sandbox's module list are not published in full: the template uses only ``asyncio`` and
``re`` and plain builtins, and the parser accepts the return value as an object or as JSON
text.

Safety: the script is always ``SCRIPT_TEMPLATE`` with one change, the value of its ``PLAN``
assignment, which is a literal (dicts, lists, strings, numbers, booleans, None) built from
reads the guard has already checked. ``build_script`` puts it in place of that value in
the template's text, after checking that it is one line and round-trips through
``ast.literal_eval``, so no value (quotes, newlines, ``"); import os; ("``) can ever become
code. A model never writes script code.

What the template does with each read: follows pagination with the token names of
botocore's paginator model up to ``max_pages``; merges the pages' result lists; deletes the
output members the guard names as secret (``redact``); fans out to child reads per item or
batch with bound parameters; catches each read's error on its own (one AccessDenied loses
no other read's rows) and returns per-read results: ``{"results": [node, ...]}`` with
``node = {"operation", "params", "result", "error": {"code", "message"} | None,
"truncated", "children": [[node, ...] per fan-out]}``.
"""

from __future__ import annotations

import ast
import json
import random
import re
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

import botocore.session
from botocore.retries.standard import ThrottledRetryableChecker
from mcp.types import CallToolResult, TextContent
from pydantic import ValidationError

from opsagent.access.errors import AwsCommandError
from opsagent.access.reads import Read, ReadResult

RUN_SCRIPT_TOOL = "aws___run_script"
# Pages per read: 20 pages of DescribeInstances is thousands of instances; a larger account
# says "truncated" rather than holding one script open for minutes.
DEFAULT_MAX_PAGES = 20
# Reads in flight at once inside one script: enough for parallel regions and fan-outs,
# few enough not to meet the account's API throttling.
DEFAULT_CONCURRENCY = 8

# A read AWS throttles is retried inside the script after these waits: exponential backoff
# with full jitter ("Exponential Backoff And Jitter", AWS Architecture Blog, 2015:
# https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/), drawn here per
# read because the script has no random module. The budget: at most RETRY_BASE_S * (2**n - 1)
# seconds of waiting per read, 3.5 s, well inside OPSAGENT_ACCOUNT_TIMEOUT.
RETRY_ATTEMPTS = 3
RETRY_BASE_S = 0.5
# botocore's own list of throttling error codes (its standard retry mode's).
THROTTLING_CODES = tuple(ThrottledRetryableChecker._THROTTLED_ERROR_CODES)


def retry_delays(attempts: int = RETRY_ATTEMPTS, base_s: float = RETRY_BASE_S) -> list[float]:
    """Full-jitter waits before each retry: uniform in [0, base * 2**i], rounded to 10 ms."""
    return [round(random.uniform(0, base_s * 2**i), 2) for i in range(attempts)]


SCRIPT_TEMPLATE = """\
import asyncio
import re

PLAN = None

gate = asyncio.Semaphore(PLAN["concurrency"])


def flat(values):
    out = []
    for value in values:
        if isinstance(value, list):
            out.extend(flat(value))
        elif value is not None:
            out.append(value)
    return out


def pluck(value, path):
    found = [value]
    for key in path.split("."):
        if key:
            found = [v[key] for v in flat(found) if isinstance(v, dict) and key in v]
    return flat(found)


def plain(value):
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    try:
        return value.isoformat()
    except Exception:
        return str(value)


def redact(value, path):
    keys = path.split(".")
    holders = [value]
    for key in keys[:-1]:
        holders = [h[key] for h in flat(holders) if isinstance(h, dict) and key in h]
    for holder in flat(holders):
        if isinstance(holder, dict):
            holder.pop(keys[-1], None)


def error_of(exc):
    text = str(exc)
    try:
        error = exc.response["Error"]
        return {"code": error.get("Code"), "message": (error.get("Message") or text)[:2000]}
    except Exception:
        found = re.search(r"An error occurred \\(([^)]+)\\)", text)
        return {"code": found.group(1) if found else None, "message": text[:2000]}


def bind(read, item, batched, parent):
    params = dict(read["params"])
    for name, source in read["bind"].items():
        root, _, path = source.partition(".")
        if root == "item" and batched:
            params[name] = pluck(item, path) if path else list(item)
        else:
            values = pluck(item if root == "item" else parent, path) if path else [item]
            params[name] = values[0] if values else None
    return params


async def call(read, params):
    for delay in read["delays"] + [None]:
        try:
            async with gate:
                return await call_boto3(
                    service_name=read["service"],
                    operation_name=read["operation"],
                    region_name=read["region"],
                    params=params,
                )
        except Exception as exc:
            if delay is None or error_of(exc)["code"] not in PLAN["throttled"]:
                raise
        await asyncio.sleep(delay)


async def run(read, params):
    node = {"operation": read["operation"], "params": params, "result": None,
            "error": None, "truncated": False, "children": []}
    pages = read["pages"]
    merged = None
    sent = dict(params)
    count = 0
    try:
        while True:
            page = plain(await call(read, sent))
            count += 1
            if merged is None:
                merged = page
            elif pages:
                for key in pages["keys"]:
                    if isinstance(page.get(key), list):
                        merged[key] = (merged.get(key) or []) + page[key]
            if not pages:
                break
            tokens = [page.get(key) for key in pages["out"]]
            more = page.get(pages["more"]) if pages["more"] else True
            if not more or not any(tokens):
                break
            if count >= PLAN["max_pages"]:
                node["truncated"] = True
                break
            sent = dict(params)
            for key, token in zip(pages["in"], tokens):
                if token:
                    sent[key] = token
        if pages:
            for key in pages["out"] + ([pages["more"]] if pages["more"] else []):
                merged.pop(key, None)
    except Exception as exc:
        node["error"] = error_of(exc)
        return node
    for path in read["redact"]:
        redact(merged, path)
    node["result"] = merged
    for fan in read["then"]:
        items = pluck(merged, fan["each"])
        if fan["unless"]:
            items = [i for i in items if not pluck(i, fan["unless"])]
        if len(items) > fan["limit"]:
            items = items[: fan["limit"]]
            node["truncated"] = True
        size = fan["batch"]
        groups = [items[i : i + size] for i in range(0, len(items), size)] if size else items
        jobs = [run(child, bind(child, group, bool(size), params))
                for group in groups for child in fan["reads"]]
        node["children"].append(list(await asyncio.gather(*jobs)))
    return node


results = await asyncio.gather(*[run(read, dict(read["params"])) for read in PLAN["reads"]])
{"results": results}
"""

_SIMPLE_KEY = re.compile(r"^[A-Za-z0-9_]+$")


class ScriptError(AwsCommandError):
    """The script itself failed on the server (not one read: those are per-read results)."""


def build_script(
    reads: Sequence[Read],
    *,
    redact: Mapping[tuple[str, str], Sequence[str]] | None = None,
    max_pages: int = DEFAULT_MAX_PAGES,
    concurrency: int = DEFAULT_CONCURRENCY,
    retry_base_s: float = RETRY_BASE_S,
) -> str:
    """The template with ``reads`` as its data literal. ``redact`` maps (service, operation)
    to the output paths the guard says carry secrets (``guard.sensitive_output_paths``)."""
    plan = {
        "max_pages": int(max_pages),
        "concurrency": int(concurrency),
        "throttled": list(THROTTLING_CODES),
        "reads": [_literal(read, redact or {}, retry_base_s) for read in reads],
    }
    literal = repr(plan)
    # Only literals, and exactly the plan. repr escapes every line break, so the literal is
    # one line and takes the place of the template's PLAN value and nothing else (the tests
    # compare each script's syntax tree with the template's).
    if "\n" in literal or "\r" in literal or ast.literal_eval(literal) != plan:
        raise ValueError("the reads do not make a plain data literal")
    before, after = _template_around_plan()
    return before + literal + after


@cache
def _template_around_plan() -> tuple[str, str]:
    """The template's text before and after the value of ``PLAN = None``, unparsed once."""
    text = ast.unparse(template_tree())
    before, found, after = text.partition("\nPLAN = None\n")
    if not found:
        raise AssertionError("the script template has no `PLAN = None` line")
    return before + "\nPLAN = ", "\n" + after


def template_tree() -> ast.Module:
    """A fresh syntax tree of the template (the tests compare scripts against it)."""
    return ast.parse(SCRIPT_TEMPLATE)


def plan_assignment(tree: ast.Module) -> ast.Assign:
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id == "PLAN"
        ):
            return node
    raise AssertionError("the script template has no PLAN assignment")


def _literal(
    read: Read, redact: Mapping[tuple[str, str], Sequence[str]], retry_base_s: float
) -> dict[str, Any]:
    return {
        "service": read.service,
        "operation": read.operation,
        "region": read.region,
        "params": _plain(read.params),
        "bind": dict(read.bind),
        "pages": pagination(read.service, read.operation) if read.paginate else None,
        "redact": list(redact.get((read.service, read.operation), ())),
        # Each read its own waits: reads throttled together do not retry together.
        "delays": retry_delays(base_s=retry_base_s),
        "then": [
            {
                "each": fan.each,
                "batch": fan.batch,
                "limit": fan.limit,
                "unless": fan.unless,
                "reads": [_literal(child, redact, retry_base_s) for child in fan.reads],
            }
            for fan in read.then
        ],
    }


def _plain(value: Any) -> Any:
    """JSON's types only (the guard has already refused anything else)."""
    return json.loads(json.dumps(value))


@cache
def pagination(service: str, operation: str) -> dict[str, Any] | None:
    """Token and result-key names from botocore's paginator model, or None when the
    operation does not paginate or its tokens are expressions the template cannot follow."""
    try:
        config = (
            botocore.session.get_session().get_paginator_model(service).get_paginator(operation)
        )
    except Exception:  # no paginator model for the service or the operation
        return None

    def names(key: str) -> list[str]:
        value = config.get(key) or []
        return [value] if isinstance(value, str) else list(value)

    pages = {
        "in": names("input_token"),
        "out": names("output_token"),
        "keys": names("result_key"),
        "more": config.get("more_results"),
    }
    every = pages["in"] + pages["out"] + pages["keys"] + ([pages["more"]] if pages["more"] else [])
    if (
        not pages["in"]
        or len(pages["in"]) != len(pages["out"])
        or not all(isinstance(name, str) and _SIMPLE_KEY.match(name) for name in every if name)
    ):
        return None
    return pages


def parse_script_result(
    result: CallToolResult, reads: Sequence[Read], *, account_id: str | None = None
) -> list[ReadResult]:
    """The per-read results of a run_script answer, in the order of ``reads``.

    Raises ScriptError when the script failed as a whole or the answer is not what the
    template returns (the message carries the server's own error text).
    """
    text = "\n".join(c.text for c in result.content if isinstance(c, TextContent)).strip()
    payload: Any = result.structuredContent
    if payload is None or (isinstance(payload, dict) and set(payload) == {"result"}):
        payload = payload["result"] if payload else _loads(text, account_id)
    if isinstance(payload, str):
        payload = _loads(payload, account_id)
    if not isinstance(payload, dict):
        raise ScriptError(
            f"the AWS MCP Server answered run_script with {_clip(text)}", account_id=account_id
        )
    status = str(payload.get("status", "")).lower()
    if result.isError or status not in ("success", "succeeded", "ok", "completed"):
        reason = payload.get("error") or payload.get("message") or text or "no reason given"
        raise ScriptError(
            f"the AWS MCP Server could not run the script: {_clip(str(reason))}",
            account_id=account_id,
        )
    value = payload.get("return_value")
    if isinstance(value, str):  # a server that returns the value as text
        value = _loads(value, account_id, literal=True)
    nodes = value.get("results") if isinstance(value, dict) else None
    if not isinstance(nodes, list) or len(nodes) != len(reads):
        raise ScriptError(
            f"run_script returned {_clip(json.dumps(value, default=str))}, not one result per "
            f"read ({len(reads)})",
            account_id=account_id,
        )
    try:
        return [ReadResult.model_validate(node) for node in nodes]
    except ValidationError as exc:
        raise ScriptError(
            f"run_script returned results of an unexpected shape: {_clip(str(exc))}",
            account_id=account_id,
        ) from None


def _loads(text: str, account_id: str | None, *, literal: bool = False) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, TypeError):
        if literal:
            try:  # str() of a Python dict, as a server without JSON encoding would send
                return ast.literal_eval(text)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                pass
        raise ScriptError(
            f"the AWS MCP Server answered with non-JSON: {_clip(text)}", account_id=account_id
        ) from None


def _clip(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_PAGES",
    "RUN_SCRIPT_TOOL",
    "SCRIPT_TEMPLATE",
    "ScriptError",
    "build_script",
    "pagination",
    "parse_script_result",
    "plan_assignment",
    "template_tree",
]
