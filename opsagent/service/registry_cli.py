"""`opsagent registry discover`: the account registry file, read from AWS Organizations.

    opsagent registry discover --out registry.json --region us-east-1 --region eu-west-1

Credentials and endpoints come from boto3's usual chain (AWS_PROFILE, AWS_ACCESS_KEY_ID,
SSO, instance roles; AWS_ENDPOINT_URL), and must be the organization's management account's
or a delegated administrator's; that account becomes the registry's central account.

With no AWS configuration at all (boto3 finds no credentials, no AWS_PROFILE or
AWS_ENDPOINT_URL is set, and no OPSAGENT_REGISTRY or OPSAGENT_MCP_ENDPOINT says the agent
is pointed at real accounts), it discovers the embedded sandbox's demo organization, as
every other command runs on the sandbox when nothing is configured; a line on stderr says
so. ``--sandbox`` asks for that explicitly.

The registry JSON goes to stdout, or to ``--out`` (written whole or not at all); what was
skipped or changed goes to stderr. Errors are one line, "error: ...", exit code 1.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, NoReturn

import boto3
import typer
from botocore.exceptions import BotoCoreError

from opsagent.registry import Registry, RegistryError, is_region, load_registry
from opsagent.registry.discovery import (
    DEFAULT_ALIAS_TAG_KEYS,
    DEFAULT_ENVIRONMENT_TAG_KEYS,
    Discovery,
    discover,
)

__all__ = ["registry_app", "registry_json"]

EXIT_CONFIGURATION = 1

registry_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="The account registry: discover it from AWS Organizations.",
)

# Any of these means someone configured AWS for this process: discover there, not the sandbox.
_AWS_SETTINGS = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_ORGANIZATIONS",
    "AWS_ENDPOINT_URL_STS",
)


@registry_app.callback()
def _registry() -> None:
    """The account registry: discover it from AWS Organizations."""


@registry_app.command("discover")
def discover_command(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", metavar="FILE", help="Write the registry JSON to this file (default: stdout)."
        ),
    ] = None,
    environment_tag_key: Annotated[
        list[str] | None,
        typer.Option(
            "--environment-tag-key",
            metavar="KEY",
            help="Account tag naming its environment; repeat for more, the first present "
            f"wins (default: {', '.join(DEFAULT_ENVIRONMENT_TAG_KEYS)}).",
        ),
    ] = None,
    alias_tag_key: Annotated[
        list[str] | None,
        typer.Option(
            "--alias-tag-key",
            metavar="KEY",
            help="Account tag holding aliases separated by spaces; repeat for more "
            f"(default: {', '.join(DEFAULT_ALIAS_TAG_KEYS)}).",
        ),
    ] = None,
    region: Annotated[
        list[str] | None,
        typer.Option(
            "--region",
            metavar="REGION",
            help="A default region of the registry; repeat for more (us-east-1).",
        ),
    ] = None,
    role_name: Annotated[
        str | None,
        typer.Option(help="Role the agent assumes in each account (OpsAgentReadOnly)."),
    ] = None,
    external_id: Annotated[
        str | None, typer.Option(help="sts:ExternalId the member roles require, if any.")
    ] = None,
    sandbox: Annotated[
        bool, typer.Option("--sandbox", help="Discover the embedded sandbox's demo organization.")
    ] = False,
) -> None:
    """Write the account registry from AWS Organizations: its active accounts, their names,
    environment and alias tags and OU paths; the caller's account is the central one."""
    for code in region or ():
        if not is_region(code):  # before a sandbox starts or AWS is asked anything
            _fail(f"--region {code!r} is not an AWS region code (like us-east-1)")
    options: dict[str, Any] = {
        "environment_tag_keys": tuple(environment_tag_key or DEFAULT_ENVIRONMENT_TAG_KEYS),
        "alias_tag_keys": tuple(alias_tag_key or DEFAULT_ALIAS_TAG_KEYS),
        "default_regions": region or None,
        "role_name": role_name,
        "external_id": external_id,
    }
    try:
        if sandbox or _nothing_configured():
            reason = "as asked" if sandbox else "no AWS configuration"
            _note(f"{reason}: discovering the embedded sandbox's demo organization")
            found = _discover_sandbox(options)
        else:
            found = discover(boto3.Session(), **options)
    except RegistryError as exc:
        _fail(str(exc))
    except BotoCoreError as exc:  # a missing AWS_PROFILE, a broken config file
        _fail(f"AWS configuration: {exc}")
    text = json.dumps(registry_json(found.registry), indent=2) + "\n"
    if out is None:
        typer.echo(text, nl=False)
    else:
        _write(out, text)
    _summary(found, out)


def registry_json(registry: Registry) -> dict[str, Any]:
    """The registry as its file holds it, unset fields left out (load_registry reads it)."""
    data = registry.model_dump(mode="json", exclude_none=True)
    if not data.get("groups"):
        data.pop("groups", None)
    return data


def _nothing_configured() -> bool:
    """True when neither the agent nor boto3 has been told about any AWS."""
    from opsagent.service.cli import _settings_from

    if not _settings_from({}).uses_sandbox:
        return False
    if any(os.environ.get(name) for name in _AWS_SETTINGS):
        return False
    try:
        return boto3.Session().get_credentials() is None
    except BotoCoreError:
        return False  # configured, badly: the discovery says how


def _discover_sandbox(options: dict[str, Any]) -> Discovery:
    from opsagent.sandbox import start_sandbox

    with start_sandbox() as box:
        if options["default_regions"] is None:
            options = {
                **options,
                "default_regions": load_registry(box.registry_path).default_regions,
            }
        return discover(box.central_session(), endpoint_url=box.aws_endpoint, **options)


def _write(path: Path, text: str) -> None:
    # Through a temporary file: a reader (the service) never sees half a registry.
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        _fail(f"cannot write the registry to {path}: {exc.strerror or exc}")


def _summary(found: Discovery, out: Path | None) -> None:
    registry = found.registry
    where = f" to {out}" if out is not None else ""
    _note(
        f"discovered {len(registry.accounts)} accounts{where}; central account "
        f"{registry.central.id} ({registry.central.name})"
    )
    for account in found.skipped:
        _note(f"skipped {account.id} ({account.name}): {account.state}")
    for note in found.notes:
        _note(note)


def _note(text: str) -> None:
    from opsagent.service.cli import err

    err.print(text, style="dim", soft_wrap=True)


def _fail(message: str) -> NoReturn:
    # Imported here: cli.py adds this sub-app, so importing it at the top would be circular.
    from opsagent.service.cli import _error

    _error(message)
    raise typer.Exit(EXIT_CONFIGURATION)


if __name__ == "__main__":
    registry_app()
