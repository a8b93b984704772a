"""Run one AWS CLI command the way the AWS MCP Server's call_aws does, with given credentials.

Parsing is the ``awscli`` package's own: its command table, its argument tables (shorthand
syntax, JSON values, --filters, the pagination arguments its paginate customization adds) and
``ServiceOperation._build_call_parameters``. The one awscli step not taken is the last, the
API call: awscli would call with the process's own credentials, while here the call goes
through botocore with the caller's credentials against the endpoint the server was given.

The result has the shape of the open-source AWS API MCP Server (awslabs/mcp,
src/aws-api-mcp-server: ``CallAWSResponse`` around ``ProgramInterpretationResponse``): the
API response is a JSON *string* under ``response.as_json``, paginated results are merged,
``--query`` results are wrapped as ``{"Result": ...}``, and a service error is data
(``response.error``/``status_code``/``error_code``), not an exception. A command that cannot
be run at all raises ``CommandError``.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import decimal
import difflib
import json
import re
import shlex
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, NoReturn

import botocore.session
import jmespath
from awscli.argprocess import ParamError
from awscli.arguments import UnknownArgumentError
from awscli.clidriver import CLIDriver, ServiceCommand, ServiceOperation, create_clidriver
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError
from botocore.paginate import PageIterator
from botocore.utils import merge_dicts, set_value_from_jmespath
from botocore.validate import validate_parameters

DEFAULT_REGION = "us-east-1"
# Merging pages stops here, as the real server caps it, so one command cannot exhaust memory.
MAX_PAGINATION_ITEMS = 10_000

_REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d+$")
_SHELL_OPERATORS = {"|", "||", "&&", ";", ">", ">>", "<", "<<", "&", "2>", "2>&1"}
# Global options that would change where or as whom the command runs; the server decides that.
_REFUSED_GLOBALS = {
    "endpoint_url": "--endpoint-url",
    "profile": "--profile",
    "ca_bundle": "--ca-bundle",
}
# S3 calls the real server reports as "Global" when no --region was given.
_GLOBAL_S3_OPERATIONS = {"ListBuckets"}


class CommandError(ValueError):
    """The command cannot be run: not AWS CLI syntax, unknown service/operation, bad arguments."""


@dataclass(frozen=True)
class ParsedCommand:
    cli_command: str
    service_cli_name: str  # what the user typed: "ec2", "s3api"
    service_name: str  # botocore's name: "ec2", "s3"
    service_full_name: str
    operation_name: str  # "DescribeInstances"
    region: str | None  # --region, None when not given
    parameters: dict[str, Any] = field(default_factory=dict)
    pagination_config: dict[str, Any] = field(default_factory=dict)
    paginate: bool = True
    query: str | None = None


class CliParser:
    """The awscli command table, built once, used under a lock (awscli parsers share state)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._driver: CLIDriver | None = None

    def _get_driver(self) -> CLIDriver:
        if self._driver is None:
            driver = create_clidriver()
            # awscli would read file:// and fetch http(s):// parameter values on this machine;
            # a remote caller must not make the server read its files or reach the network.
            driver.session.register("load-cli-arg", _refuse_uri_parameters)
            self._driver = driver
        return self._driver

    def parse(self, cli_command: str) -> ParsedCommand:
        tokens = _tokens(cli_command)
        with self._lock:
            return self._parse(cli_command, tokens)

    def _parse(self, cli_command: str, args: list[str]) -> ParsedCommand:
        driver = self._get_driver()
        command_table = driver._get_command_table()
        _check_choice("service", _first_positional(args), command_table)
        parser = driver._create_parser(command_table)
        parsed_globals, remaining = _argparse(parser, args)
        for dest, option in _REFUSED_GLOBALS.items():
            if getattr(parsed_globals, dest, None):
                raise CommandError(f"{option} is not supported: the server decides where "
                                   "and as whom commands run")
        if getattr(parsed_globals, "sign_request", True) is False:
            raise CommandError("--no-sign-request is not supported")
        region = parsed_globals.region
        if region is not None and not _REGION_RE.match(region):
            raise CommandError(f"{region!r} is not an AWS region code (like us-east-1)")

        service = command_table[parsed_globals.command]
        if not isinstance(service, ServiceCommand):
            hint = " (use aws s3api ...)" if parsed_globals.command == "s3" else ""
            raise CommandError(
                f"'aws {parsed_globals.command}' is an AWS CLI customization, not an API "
                f"operation; this server runs API operations only{hint}"
            )
        operations = service._get_command_table()
        if _first_positional(remaining) == "help":
            raise CommandError("help is not supported; call an operation")
        _check_choice("operation", _first_positional(remaining), operations,
                      service=parsed_globals.command)
        service_parser = service._create_parser()
        parsed_service, remaining = _argparse(service_parser, remaining)
        operation = operations[parsed_service.operation]
        if not isinstance(operation, ServiceOperation):
            raise CommandError(
                f"'aws {service.name} {parsed_service.operation}' is an AWS CLI "
                "customization, not an API operation; this server runs API operations only"
            )
        return _operation_call(driver, service, operation, remaining, parsed_globals, cli_command)


def _operation_call(
    driver: CLIDriver,
    service: ServiceCommand,
    operation: ServiceOperation,
    args: list[str],
    parsed_globals: argparse.Namespace,
    cli_command: str,
) -> ParsedCommand:
    """ServiceOperation.__call__ of awscli, up to (not including) the API call."""
    lineage = f"{service.name}.{operation.name}"
    arg_table = operation.arg_table
    operation._emit(
        f"before-building-argument-table-parser.{lineage}",
        argument_table=arg_table,
        args=args,
        session=driver.session,
        parsed_globals=parsed_globals,
    )
    parser = operation._create_operation_parser(arg_table)
    operation._add_help(parser)
    parsed_args, remaining = _argparse(parser, args)
    if parsed_args.help is not None:
        if parsed_args.help == "help":
            raise CommandError("help is not supported; call the operation itself")
        remaining.append(parsed_args.help)
    if remaining:
        raise CommandError(f"Unknown options: {', '.join(remaining)}")
    if getattr(parsed_args, "generate_cli_skeleton", None) is not None:
        raise CommandError("--generate-cli-skeleton is not supported")
    try:
        operation._emit(
            f"operation-args-parsed.{lineage}",
            parsed_args=parsed_args,
            parsed_globals=parsed_globals,
        )
        parameters = operation._build_call_parameters(parsed_args, arg_table, parsed_globals)
        # cli-input-json and other customizations merge their values in on this event.
        override = operation._emit_first_non_none_response(
            f"calling-command.{lineage}",
            call_parameters=parameters,
            parsed_args=parsed_args,
            parsed_globals=parsed_globals,
        )
    except (ParamError, UnknownArgumentError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    if override is not None:
        raise CommandError("this command is handled by an AWS CLI customization, not supported")

    model = operation._operation_model
    pagination_config = parameters.pop("PaginationConfig", {}) or {}
    if model.input_shape is not None:
        try:
            validate_parameters(parameters, model.input_shape)
        except ParamValidationError as exc:
            raise CommandError(str(exc)) from None
    query = parsed_globals.query
    if query is not None:
        try:
            jmespath.compile(query)
        except jmespath.exceptions.JMESPathError as exc:
            raise CommandError(f"Bad value for --query {query}: {exc}") from None
    return ParsedCommand(
        cli_command=cli_command,
        service_cli_name=service.name,
        service_name=model.service_model.service_name,
        service_full_name=model.service_model.metadata.get("serviceFullName", ""),
        operation_name=model.name,
        region=parsed_globals.region,
        parameters=parameters,
        pagination_config=dict(pagination_config),
        paginate=bool(parsed_globals.paginate),
        query=query,
    )


def _tokens(cli_command: str) -> list[str]:
    try:
        tokens = shlex.split(cli_command)
    except ValueError as exc:
        raise CommandError(f"The command could not be split into arguments: {exc}") from None
    if not tokens or tokens[0] != "aws":
        raise CommandError("The command must start with 'aws'")
    operators = [t for t in tokens if t in _SHELL_OPERATORS or t.startswith("$(")]
    if operators:
        raise CommandError(
            f"Shell operators are not supported ({', '.join(operators)}): "
            "send one AWS CLI command"
        )
    if "--version" in tokens:
        # argparse would print the CLI version on the server's stdout and stop parsing.
        raise CommandError("--version is not supported")
    if len(tokens) < 3:
        raise CommandError("The command must name a service and an operation (aws SERVICE OP)")
    return tokens[1:]


def _first_positional(args: list[str]) -> str | None:
    # Global options may come first ("aws --region us-west-2 ec2 ..."): skip them and values.
    value_options = {"--region", "--output", "--query", "--profile", "--endpoint-url",
                     "--color", "--ca-bundle", "--cli-read-timeout", "--cli-connect-timeout"}
    skip = False
    for token in args:
        if skip:
            skip = False
            continue
        if token in value_options:
            skip = True
            continue
        if token.startswith("-"):
            continue
        return token
    return None


def _check_choice(
    kind: str, value: str | None, table: dict[str, Any], service: str | None = None
) -> None:
    if value is None:
        raise CommandError(f"The command names no {kind}")
    if value in table:
        return
    close = difflib.get_close_matches(value, list(table), n=3, cutoff=0.7)
    where = f" of service '{service}'" if service else ""
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise CommandError(f"The {kind} '{value}'{where} does not exist.{hint}")


def _argparse(
    parser: argparse.ArgumentParser, args: list[str]
) -> tuple[argparse.Namespace, list[str]]:
    """Run an awscli argparse parser whose errors become CommandError instead of an exit."""

    def error(message: str) -> NoReturn:
        raise CommandError(message)

    def leave(status: int = 0, message: str | None = None) -> NoReturn:
        # --version and the like print and exit: neither makes sense for a server.
        raise CommandError((message or "").strip() or "this option is not supported")

    # argparse reports through self.error / self.exit, which print and end the process;
    # these instances report to us instead (their class, shared, is left alone).
    parser.error = error  # type: ignore[method-assign]
    parser.exit = leave  # type: ignore[method-assign]
    try:
        return parser.parse_known_args(args)
    except argparse.ArgumentError as exc:
        raise CommandError(str(exc)) from None
    except (ParamError, UnknownArgumentError, ValueError) as exc:
        if isinstance(exc, CommandError):
            raise
        raise CommandError(str(exc)) from None


def _refuse_uri_parameters(param: Any = None, value: Any = None, **_: Any) -> None:
    values = value if isinstance(value, list) else [value]
    for item in values:
        if isinstance(item, str) and item.startswith(_URI_PREFIXES):
            raise ParamError(
                getattr(param, "cli_name", "parameter"),
                f"{item.split('://', 1)[0]}:// values are not supported by this server",
            )
    return None


_URI_PREFIXES = ("file://", "fileb://", "http://", "https://")


# ----- execution -----


@dataclass(frozen=True)
class CallerCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None


class AwsExecutor:
    """Calls AWS APIs for parsed commands; botocore clients are cached per caller and region."""

    def __init__(self, endpoint_url: str | None, max_clients: int = 64) -> None:
        self._endpoint_url = endpoint_url
        self._session = botocore.session.get_session()
        self._lock = threading.Lock()
        self._clients: OrderedDict[tuple[str, ...], BaseClient] = OrderedDict()
        self._max_clients = max_clients

    def client(self, service: str, region: str, creds: CallerCredentials) -> BaseClient:
        key = (service, region, creds.access_key_id, creds.secret_access_key,
               creds.session_token or "")
        # botocore sessions are not thread-safe for client creation; clients themselves are.
        with self._lock:
            if key in self._clients:
                self._clients.move_to_end(key)
                return self._clients[key]
            client = self._session.create_client(
                service,
                region_name=region,
                endpoint_url=self._endpoint_url,
                aws_access_key_id=creds.access_key_id,
                aws_secret_access_key=creds.secret_access_key,
                aws_session_token=creds.session_token,
                config=Config(
                    retries={"max_attempts": 2, "mode": "standard"},
                    connect_timeout=10,
                    read_timeout=60,
                    # Loopback endpoints have no per-bucket host names.
                    s3={"addressing_style": "path"},
                    user_agent_extra="opsagent-sandbox-mcp",
                ),
            )
            self._clients[key] = client
            if len(self._clients) > self._max_clients:
                self._clients.popitem(last=False)
            return client

    def enabled_regions(self, creds: CallerCredentials) -> list[str]:
        regions = self.client("ec2", DEFAULT_REGION, creds).describe_regions()["Regions"]
        return sorted(r["RegionName"] for r in regions)

    def run(
        self, command: ParsedCommand, creds: CallerCredentials, max_results: int | None = None
    ) -> dict[str, Any]:
        """The serialized result of one command: CallAWSResponse of the real server."""
        region = command.region or DEFAULT_REGION
        client = self.client(command.service_name, region, creds)
        pagination_config = dict(command.pagination_config)
        if max_results is not None:
            wanted = pagination_config.get("MaxItems")
            pagination_config["MaxItems"] = min(int(wanted), max_results) if wanted else max_results
        python_name = _python_name(client, command.operation_name)
        response: dict[str, Any]
        try:
            if command.paginate and client.can_paginate(python_name):
                response = _paginated(client, python_name, command, pagination_config)
            else:
                response = getattr(client, python_name)(**command.parameters)
                if command.query is not None:
                    response = {
                        "Result": jmespath.search(command.query, to_jsonable(response)),
                        "ResponseMetadata": response.get("ResponseMetadata"),
                    }
        except ClientError as error:
            meta = error.response.get("ResponseMetadata", {})
            return _call_response(
                command,
                region,
                response={
                    "error": str(error),
                    "status_code": meta.get("HTTPStatusCode"),
                    "error_code": error.response.get("Error", {}).get("Code"),
                    "pagination_token": None,
                    "as_json": None,
                },
            )
        except (BotoCoreError, OSError) as error:
            # Not AWS saying no, the call itself failed: the real server reports it as an error.
            return {"cli_command": command.cli_command,
                    "error": f"Error while executing the command: {error}"}

        status = (response.pop("ResponseMetadata", None) or {}).get("HTTPStatusCode")
        report_region = region
        if command.service_name == "s3" and command.operation_name in _GLOBAL_S3_OPERATIONS:
            report_region = "Global" if command.region is None else region
        return _call_response(
            command,
            report_region,
            response={
                "error": None,
                "status_code": status,
                "error_code": None,
                "pagination_token": response.get("pagination_token"),
                "as_json": json.dumps(to_jsonable(response)),
            },
        )


def _python_name(client: BaseClient, operation_name: str) -> str:
    mapping = {api: py for py, api in client.meta.method_to_api_mapping.items()}
    return mapping[operation_name]


def _paginated(
    client: BaseClient, python_name: str, command: ParsedCommand, config: dict[str, Any]
) -> dict[str, Any]:
    """Pages merged into one result, like botocore's build_full_result, with a resume token."""
    pages: PageIterator = client.get_paginator(python_name).paginate(
        **command.parameters, PaginationConfig=config
    )
    result: dict[str, Any] = {}
    metadata: dict[str, Any] | None = None
    for page in pages:
        metadata = page.get("ResponseMetadata")
        for expression in pages.result_keys:
            value = expression.search(page)
            if value is None:
                continue
            existing = expression.search(result)
            if existing is None:
                set_value_from_jmespath(result, expression.expression, value)
            elif isinstance(value, list):
                existing.extend(value)
            elif isinstance(value, int | float | str):
                set_value_from_jmespath(result, expression.expression, existing + value)
        if _item_count(result, pages) >= MAX_PAGINATION_ITEMS:
            break
    if command.query is not None:
        result = {"Result": jmespath.search(command.query, to_jsonable(result))}
    merge_dicts(result, pages.non_aggregate_part)
    result["ResponseMetadata"] = metadata
    if pages.resume_token is not None:
        result["pagination_token"] = pages.resume_token
    return result


def _item_count(result: dict[str, Any], pages: PageIterator) -> int:
    counts = [len(v) for e in pages.result_keys if isinstance(v := e.search(result), list)]
    return max(counts, default=0)


def _call_response(command: ParsedCommand, region: str, response: dict[str, Any]) -> dict[str, Any]:
    return {
        "cli_command": command.cli_command,
        "response": response,
        "metadata": {
            "service": command.service_name,
            "service_full_name": command.service_full_name,
            "operation": command.operation_name,
            "region_name": region,
        },
        "validation_failures": None,
        "missing_context_failures": None,
        "failed_constraints": [],
    }


def to_jsonable(value: Any) -> Any:
    """botocore values as JSON: timestamps in ISO 8601, blobs in base64, numbers as numbers."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [to_jsonable(v) for v in value]
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    # Streaming bodies and other objects: their text, never a crash.
    return str(value)
