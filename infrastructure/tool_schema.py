"""The bridge's MCP tool schema, as the Gateway target in bridge-gateway.yaml carries it inline.

``opsagent/bridge/tools.json`` is the one source: the bridge Lambda's tools as MCP lists them
(``name``, ``description``, ``inputSchema`` in JSON Schema). The template cannot include a
file, so it holds the same tools in CloudFormation's spelling, between two marker comments:
AWS::BedrockAgentCore::GatewayTarget ``ToolSchema.InlinePayload`` is a list of
``ToolDefinition`` (``Name``, ``Description``, ``InputSchema``, ``OutputSchema``) whose schemas
are ``SchemaDefinition`` (``Type``, ``Description``, ``Properties``, ``Items``, ``Required``
and nothing else):
https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-bedrockagentcore-gatewaytarget-toolschema.html
https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-bedrockagentcore-gatewaytarget-tooldefinition.html
https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-bedrockagentcore-gatewaytarget-schemadefinition.html

The mapping is one to one in both directions, so a test can compare the template's block with
the file exactly (``from_cloudformation(block) == tools.json``). A JSON Schema keyword the
template cannot carry (``enum``, ``default``, ``additionalProperties``...) is an error here
rather than a silent drop: the Gateway would validate arguments against a looser schema than
the bridge declares.

    python infrastructure/tool_schema.py          # rewrite the block from tools.json
    python infrastructure/tool_schema.py --check  # exit 1 when the block differs
    (make gateway-schema runs the first)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TOOLS_JSON = ROOT / "opsagent" / "bridge" / "tools.json"
TEMPLATE = ROOT / "infrastructure" / "bridge-gateway.yaml"
BEGIN = "# BEGIN tool schema"
END = "# END tool schema"

TOOL_KEYS = {
    "name": "Name",
    "description": "Description",
    "inputSchema": "InputSchema",
    "outputSchema": "OutputSchema",
}
SCHEMA_KEYS = {
    "type": "Type",
    "description": "Description",
    "properties": "Properties",
    "items": "Items",
    "required": "Required",
}
SCHEMA_TYPES = {"string", "number", "object", "array", "boolean", "integer"}


class ToolSchemaError(ValueError):
    """tools.json holds something the Gateway's inline tool schema cannot carry."""


def _schema_to_cfn(schema: dict[str, Any], where: str) -> dict[str, Any]:
    unknown = set(schema) - set(SCHEMA_KEYS)
    if unknown:
        raise ToolSchemaError(
            f"{where}: {', '.join(sorted(unknown))} cannot be carried by the Gateway's inline "
            f"tool schema (SchemaDefinition has only {', '.join(SCHEMA_KEYS.values())})"
        )
    if schema.get("type") not in SCHEMA_TYPES:
        raise ToolSchemaError(f"{where}: type must be one of {sorted(SCHEMA_TYPES)}")
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "properties":
            value = {
                name: _schema_to_cfn(sub, f"{where}.properties.{name}")
                for name, sub in value.items()
            }
        elif key == "items":
            value = _schema_to_cfn(value, f"{where}.items")
        out[SCHEMA_KEYS[key]] = value
    return out


def _schema_from_cfn(schema: dict[str, Any]) -> dict[str, Any]:
    back = {v: k for k, v in SCHEMA_KEYS.items()}
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "Properties":
            value = {name: _schema_from_cfn(sub) for name, sub in value.items()}
        elif key == "Items":
            value = _schema_from_cfn(value)
        out[back[key]] = value
    return out


def to_cloudformation(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """tools.json's tools as ``ToolSchema.InlinePayload``."""
    payload = []
    for tool in tools:
        where = f"tool {tool.get('name')!r}"
        unknown = set(tool) - set(TOOL_KEYS)
        if unknown:
            raise ToolSchemaError(
                f"{where}: {', '.join(sorted(unknown))} has no ToolDefinition key"
            )
        missing = {"name", "description", "inputSchema"} - set(tool)
        if missing:
            raise ToolSchemaError(f"{where}: ToolDefinition needs {', '.join(sorted(missing))}")
        payload.append(
            {
                TOOL_KEYS[key]: (
                    _schema_to_cfn(value, f"{where}.{key}")
                    if key in {"inputSchema", "outputSchema"}
                    else value
                )
                for key, value in tool.items()
            }
        )
    return payload


def from_cloudformation(payload: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``ToolSchema.InlinePayload`` back in tools.json's spelling."""
    back = {v: k for k, v in TOOL_KEYS.items()}
    return [
        {
            back[key]: (
                _schema_from_cfn(value) if key in {"InputSchema", "OutputSchema"} else value
            )
            for key, value in tool.items()
        }
        for tool in payload
    ]


def render_block(tools: list[dict[str, Any]], indent: int) -> list[str]:
    """The lines between the markers: ``InlinePayload:`` and the tools, YAML at ``indent``."""
    import yaml

    body = yaml.safe_dump(
        {"InlinePayload": to_cloudformation(tools)},
        sort_keys=False,
        width=92,
        default_flow_style=False,
        allow_unicode=True,
    )
    return [(" " * indent + line) if line else line for line in body.splitlines()]


def sync(template: Path = TEMPLATE, tools_json: Path = TOOLS_JSON) -> tuple[str, str]:
    """(current template text, the text with its block regenerated from tools.json)."""
    text = template.read_text(encoding="utf-8")
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip().startswith(BEGIN)]
    ends = [i for i, line in enumerate(lines) if line.strip().startswith(END)]
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        raise ToolSchemaError(f"{template}: expected one '{BEGIN}' ... '{END}' block")
    start, end = starts[0], ends[0]
    indent = len(lines[start]) - len(lines[start].lstrip())
    tools = json.loads(tools_json.read_text(encoding="utf-8"))
    new = [*lines[: start + 1], *render_block(tools, indent), *lines[end:]]
    return text, "\n".join(new) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say whether it is in sync")
    args = parser.parse_args(argv)
    try:
        old, new = sync()
    except ToolSchemaError as exc:
        print(f"tool schema: {exc}", file=sys.stderr)
        return 2
    if args.check:
        if old != new:
            print(
                f"{TEMPLATE.relative_to(ROOT)}: the Gateway target's tool schema differs from "
                f"{TOOLS_JSON.relative_to(ROOT)}; run `make gateway-schema`",
                file=sys.stderr,
            )
            return 1
        print("tool schema in sync")
        return 0
    if old != new:
        TEMPLATE.write_text(new, encoding="utf-8")
        print(f"rewrote the tool schema in {TEMPLATE.relative_to(ROOT)}")
    else:
        print("tool schema already in sync")
    return 0


if __name__ == "__main__":
    sys.exit(main())
