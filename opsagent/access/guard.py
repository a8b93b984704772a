"""The read-only guard: every AWS CLI command is checked here before it leaves the process.

The decision is made from the operation the command would call, resolved with the AWS CLI's
own command table and botocore's service models (the same resolution ``aws`` itself does),
never from words in the question. A command passes only if all of this holds:

1. **One plain command.** The text is a single ``aws <service> <operation> [args]``:
   no control characters or newlines, no ``$(`` / ``${`` substitutions, no unquoted shell
   operators (``; & | < > ( )`` or a backtick), balanced quotes, and the first word is ``aws``.
   No shell ever runs these commands (the AWS MCP Server parses them), so quoting only
   groups words; a quoted JMESPath such as ``'Volumes[?State==`available`]'`` is fine.
2. **Known service and operation.** The service must be in the CLI's command table and the
   operation in that service's table; anything unknown is refused, as are arguments the
   operation does not define and missing required arguments (argparse from the CLI's own
   argument table decides). ``aws help``, ``aws configure``, aliases and plugins are refused.
3. **A read by name.** The botocore operation name must start with a read verb:
   ``Describe``, ``List``, ``Get``, ``BatchGet``, ``BatchDescribe``, ``Search``, ``Lookup``,
   ``Head`` or ``Filter`` (``FilterLogEvents``). ``Scan``, ``Query`` and ``Select`` are not
   on the list: they read table and object contents, which an operations agent does not need.
   ``Invoke``, ``Run*``, ``Start*``, ``Create*``, ``Generate*``, ``AssumeRole*``… are refused,
   whatever flags come with them: ``ec2 run-instances --dry-run`` is refused like any
   ``RunInstances`` (a dry run still exercises a write path).
4. **Not a read that hands out secrets, credentials or data.** Some read-named operations
   mint credentials, reveal secrets, create something, or dump data and files:
   - any read-named operation whose name contains the word Credentials, Token(s),
     Password(s), Url(s)/URL(s) (pre-signed and embed URLs grant access), Presigned or
     Decrypted (``sts get-session-token``, ``sts get-federation-token``,
     ``ecr get-authorization-token``, ``redshift get-cluster-credentials``,
     ``ec2 get-password-data``, ``quicksight get-dashboard-embed-url``…), except the few
     plainly harmless ones in ``_SENSITIVE_NAME_EXCEPTIONS`` (``sqs get-queue-url``,
     ``iam get-account-password-policy``, Lambda function URL configs);
   - named operations in ``_DENIED_OPERATIONS``: secret values
     (``secretsmanager get-secret-value``), API and stream keys, ``cognito-identity get-id``
     (creates an identity), DynamoDB/Kinesis record reads, KMS import parameters…;
   - operations with a streaming output (``s3api get-object`` and friends): the CLI writes
     the body to a local file and the body is data, not inventory;
   - ``ssm get-parameter(s)`` / ``get-parameters-by-path`` / ``get-parameter-history``
     with ``--with-decryption``.
5. **Customizations.** High-level CLI commands that are not one API operation are refused
   (``s3 cp/mv/rm/sync/mb/rb/presign``, ``ec2 wait``, ``eks get-token``,
   ``ecr get-login-password``, ``rds generate-db-auth-token``, ``deploy push``…), except
   ``s3 ls`` (``ListBuckets`` / ``ListObjectsV2``).
6. **Safe global options and values.** Only ``--region`` (a region code, or ``*``, the
   AWS MCP Server's "every enabled region"),
   ``--output``, ``--query``, ``--no-paginate``, ``--color``, ``--cli-read-timeout`` and
   ``--cli-connect-timeout`` may be given; ``--endpoint-url``, ``--profile``,
   ``--no-verify-ssl``, ``--ca-bundle``, ``--no-sign-request`` and ``--debug`` are refused
   (they redirect, re-identify or expose the signed call). ``--generate-cli-skeleton``
   (no call at all), ``--cli-input-json`` / ``--cli-input-yaml`` and any ``file://`` or
   ``fileb://`` value (reads local files) are refused.

The guard stops changes; what a role may *read* is still bounded by the member-account
read-only role, which remains the real boundary. Every refusal is audit-logged.
"""

from __future__ import annotations

import argparse
import logging
import re
import shlex
import threading
from dataclasses import dataclass, field
from difflib import get_close_matches
from functools import cache
from typing import Any, NoReturn

from awscli.argparser import ArgTableArgParser
from awscli.clidriver import CLIDriver, ServiceCommand, ServiceOperation, create_clidriver
from awscli.customizations.s3.utils import find_bucket_key
from botocore import xform_name
from botocore.model import OperationModel

from opsagent.access.audit import audit
from opsagent.access.errors import ReadOnlyViolation

READ_VERBS = (
    "Describe",
    "List",
    "Get",
    "BatchGet",
    "BatchDescribe",
    "Search",
    "Lookup",
    "Head",
    "Filter",
)
# A verb counts only as a whole CamelCase word: "Get" matches GetObject, not "Getaway".
_READ_VERB_RE = re.compile(rf"^(?:{'|'.join(READ_VERBS)})(?=[A-Z0-9]|$)")

# Reads of table or object contents (DynamoDB Scan/Query, S3 Select): refused, with a
# message of their own since they change nothing.
_CONTENT_READ_RE = re.compile(r"^(?:Scan|Query|Select)(?=[A-Z0-9]|$)")

# Words (in botocore's snake_case form of the operation name) that mark a read-named
# operation as minting credentials or access, or revealing secrets.
_SENSITIVE_WORDS = frozenset(
    {"credentials", "token", "tokens", "password", "passwords", "url", "urls", "presigned",
     "decrypted"}
)
_SENSITIVE_NAME_EXCEPTIONS = frozenset(
    {
        ("sqs", "GetQueueUrl"),  # the queue's address, no access
        ("iam", "GetAccountPasswordPolicy"),  # the policy, no password
        ("lambda", "GetFunctionUrlConfig"),  # the URL's auth settings
        ("lambda", "ListFunctionUrlConfigs"),
    }
)
# Read-named operations that still reveal secrets, create something, or read data.
# Keys are botocore service names (``s3`` for ``s3api``).
_DENIED_OPERATIONS: dict[tuple[str, str], str] = {
    ("secretsmanager", "GetSecretValue"): "reveals secret values",
    ("secretsmanager", "BatchGetSecretValue"): "reveals secret values",
    ("cognito-idp", "ListUserPoolClientSecrets"): "reveals client secrets",
    ("cognito-identity", "GetId"): "creates an identity",
    ("lightsail", "GetInstanceAccessDetails"): "creates temporary SSH keys or passwords",
    ("lightsail", "GetBucketAccessKeys"): "reveals access keys",
    ("ivs", "GetStreamKey"): "reveals stream keys",
    ("ivs", "BatchGetStreamKey"): "reveals stream keys",
    ("apigateway", "GetApiKey"): "reveals API keys",
    ("apigateway", "GetApiKeys"): "reveals API keys",
    ("appsync", "ListApiKeys"): "reveals API keys",
    ("bedrock-agentcore", "GetResourceApiKey"): "reveals API keys",
    ("kms", "GetParametersForImport"): "creates key import material",
    ("dynamodb", "GetItem"): "reads table contents",
    ("dynamodb", "BatchGetItem"): "reads table contents",
    ("kinesis", "GetRecords"): "reads stream records",
    ("dynamodbstreams", "GetRecords"): "reads stream records",
}
_DECRYPTING_SSM_OPERATIONS = frozenset(
    {"GetParameter", "GetParameters", "GetParametersByPath", "GetParameterHistory"}
)
# High-level CLI commands (not one API operation) that are still plain reads.
_READ_CUSTOMIZATIONS = frozenset({("s3", "ls")})

# Global options a command may carry (argparse dests of the CLI's top-level parser).
_ALLOWED_GLOBALS = frozenset(
    {"command", "region", "output", "query", "paginate", "color", "read_timeout",
     "connect_timeout"}
)
_GLOBAL_OPTION_NAMES = {
    "endpoint_url": "--endpoint-url",
    "profile": "--profile",
    "verify_ssl": "--no-verify-ssl",
    "ca_bundle": "--ca-bundle",
    "sign_request": "--no-sign-request",
    "debug": "--debug",
    "v2_debug": "--v2-debug",
    "version": "--version",
}
# Operation arguments that make the CLI do something other than send this one request.
_REFUSED_ARGUMENTS = {
    "generate_cli_skeleton": "asks for --generate-cli-skeleton, which prints a template "
    "instead of calling AWS",
    "cli_input_json": "takes its parameters from --cli-input-json, where the guard cannot "
    "check them",
    "cli_input_yaml": "takes its parameters from --cli-input-yaml, where the guard cannot "
    "check them",
}

_REGION_RE = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$")
# Unquoted, these would be shell operators; shlex returns them as tokens of their own.
_SHELL_OPERATORS = ";&|<>()`"
_MAX_COMMAND_LENGTH = 10_000


@dataclass(frozen=True)
class ReadOnlyCommand:
    """A command the guard let through, as the CLI would run it."""

    command: str  # the command as given, stripped
    service: str  # CLI service name: "ec2", "s3api", "s3"
    api_service: str  # botocore service name: "ec2", "s3"
    cli_operation: str  # "describe-instances", "ls"
    operation: str  # API operation name: "DescribeInstances"
    region: str | None  # --region, None for the server's default
    args: dict[str, Any] = field(default_factory=dict)  # operation arguments given, by CLI name


class _Refused(Exception):
    """Internal: carries a refusal up to check_read_only, which logs and raises."""

    def __init__(self, reason: str, *, operation: str | None = None, shown: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.operation = operation
        self.shown = shown


def check_read_only(
    cli_command: str, *, user: str | None = None, account_id: str | None = None
) -> ReadOnlyCommand:
    """Return the resolved command if it is a read; raise ReadOnlyViolation otherwise.

    ``user`` and ``account_id`` only enrich the audit record of a refusal.
    CPU-bound and quick once warm (the CLI's tables load once, ~0.3 s, plus each
    service's model on first use); async callers run it in a worker thread.
    """
    text = cli_command.strip() if isinstance(cli_command, str) else ""
    try:
        with _LOCK:  # the CLI's command tables are built lazily and are not thread-safe
            return _check(text)
    except _Refused as refused:
        violation = ReadOnlyViolation(
            _excerpt(text),
            refused.reason,
            operation=refused.operation,
            shown=refused.shown,
            account_id=account_id,
        )
        audit(
            "guard.refused",
            level=logging.WARNING,
            user=user,
            account_id=account_id,
            command=_excerpt(text, 2000),
            operation=refused.operation,
            reason=refused.reason,
        )
        raise violation from None


def warm_up() -> None:
    """Load the CLI's command table now, so the first question does not pay for it."""
    with _LOCK:
        _command_table()


_LOCK = threading.RLock()


@cache
def _driver() -> CLIDriver:
    return create_clidriver()


@cache
def _command_table() -> dict[str, Any]:
    # awscli has no public "resolve without running" API; these are the same calls
    # CLIDriver.main makes (the AWS API MCP Server resolves commands the same way).
    return _driver()._get_command_table()


@cache
def _main_parser() -> argparse.ArgumentParser:
    parser = _driver()._create_parser(_command_table())
    return _quiet(parser)


def _check(text: str) -> ReadOnlyCommand:
    tokens = _tokens(text)
    table = _command_table()
    try:
        parsed_globals, rest = _main_parser().parse_known_args(tokens[1:])
    except _ParseError as exc:
        if "Invalid choice" in str(exc):
            raise _Refused(
                f"names no AWS CLI service the guard knows{_suggestion(tokens[1], table)}",
                shown=_excerpt(text, 80),
            ) from None
        raise _Refused(f"is not a valid AWS CLI command ({_first_line(exc)})") from None
    service = parsed_globals.command
    _check_globals(parsed_globals, _shown(service, rest))
    command = table[service]
    if isinstance(command, ServiceCommand):
        operations = command._get_command_table()
    elif any(s == service for s, _ in _READ_CUSTOMIZATIONS):
        operations = command.subcommand_table  # e.g. `aws s3`: the high-level commands
    else:
        raise _Refused("is a local CLI command, not an AWS API read", shown=f"aws {service}")
    if not rest or rest[0].startswith("-"):
        raise _Refused("names no operation", shown=f"aws {service}")
    operation_name = rest[0]
    operation = operations.get(operation_name)
    shown = f"aws {service} {operation_name}"
    if operation is None:
        raise _Refused(f"is not an operation of `aws {service}`", shown=shown)
    _check_values(tokens, shown)
    if not isinstance(operation, ServiceOperation):
        return _check_customization(text, service, operation_name, operation, rest[1:],
                                    parsed_globals.region)
    model: OperationModel = operation._operation_model  # the operation the CLI would call
    api_service = model.service_model.service_name
    args = _operation_args(operation.arg_table, rest[1:], shown, model.name)
    _check_operation(api_service, model, args, shown)
    return ReadOnlyCommand(
        command=text,
        service=service,
        api_service=api_service,
        cli_operation=operation_name,
        operation=model.name,
        region=parsed_globals.region,
        args=args,
    )


def _tokens(text: str) -> list[str]:
    if not text:
        raise _Refused("is empty, not an AWS CLI command", shown="")
    if len(text) > _MAX_COMMAND_LENGTH:
        raise _Refused(f"is longer than {_MAX_COMMAND_LENGTH} characters")
    if any(ord(c) < 32 and c != "\t" or ord(c) == 127 for c in text):
        raise _Refused("contains a newline or control character, so it could be more than "
                       "one command")
    for marker in ("$(", "${"):
        if marker in text:
            raise _Refused(f"contains the shell substitution `{marker}`")
    lexer = shlex.shlex(text, posix=True, punctuation_chars=_SHELL_OPERATORS)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError as exc:  # unbalanced quotes
        raise _Refused(f"cannot be split into words ({exc})") from None
    for token in tokens:
        if token and all(c in _SHELL_OPERATORS for c in token):
            raise _Refused(f"contains the shell operator `{token}`, so it is not a single "
                           "AWS CLI command")
    if not tokens or tokens[0] != "aws":
        raise _Refused("does not start with `aws`, so it is not an AWS CLI command",
                       shown=_excerpt(text, 80))
    if len(tokens) < 3:
        raise _Refused("is not of the form `aws <service> <operation>`")
    return tokens


def _check_globals(parsed: argparse.Namespace, shown: str) -> None:
    defaults = _main_parser()
    for dest, value in vars(parsed).items():
        if dest in _ALLOWED_GLOBALS or value == defaults.get_default(dest):
            continue
        option = _GLOBAL_OPTION_NAMES.get(dest, f"--{dest.replace('_', '-')}")
        raise _Refused(f"uses the global option {option}, which the guard does not allow",
                       shown=shown)
    region = parsed.region
    # "*" is the AWS MCP Server's "every enabled region": still the same read.
    if region is not None and region != "*" and not _REGION_RE.match(region):
        raise _Refused(f"names {region!r}, which is not an AWS region code", shown=shown)


def _check_values(tokens: list[str], shown: str) -> None:
    for token in tokens:
        lowered = token.lower()
        if "file://" in lowered or "fileb://" in lowered:
            raise _Refused("reads a local file (file:// or fileb://)", shown=shown)


def _operation_args(
    arg_table: dict[str, Any], args: list[str], shown: str, operation: str | None
) -> dict[str, Any]:
    parser = _quiet(ArgTableArgParser(arg_table))
    try:
        parsed, remaining = parser.parse_known_args(args)
    except _ParseError as exc:
        raise _Refused(f"has invalid arguments ({_first_line(exc)})", operation=operation,
                       shown=shown) from None
    if getattr(parsed, "help", None) is not None:  # `aws ec2 describe-instances help`
        raise _Refused("asks for help text, which is not an AWS call", operation=operation,
                       shown=shown)
    if remaining:
        raise _Refused(f"has arguments the operation does not define: {' '.join(remaining)}",
                       operation=operation, shown=shown)
    given: dict[str, Any] = {}
    for name, argument in arg_table.items():
        value = getattr(parsed, argument.py_name, None)
        if value is None or value is False or value == parser.get_default(argument.py_name):
            continue
        if argument.py_name in _REFUSED_ARGUMENTS:
            raise _Refused(_REFUSED_ARGUMENTS[argument.py_name], operation=operation,
                           shown=shown)
        given[name] = value
    return given


def _check_operation(
    api_service: str, model: OperationModel, args: dict[str, Any], shown: str
) -> None:
    name = model.name
    if not _READ_VERB_RE.match(name):
        if _CONTENT_READ_RE.match(name):
            raise _Refused("reads data contents, not resource metadata", operation=name,
                           shown=shown)
        raise _Refused("changes resources", operation=name, shown=shown)
    denied = _DENIED_OPERATIONS.get((api_service, name))
    if denied:
        raise _Refused(denied, operation=name, shown=shown)
    words = set(xform_name(name).split("_"))
    if words & _SENSITIVE_WORDS and (api_service, name) not in _SENSITIVE_NAME_EXCEPTIONS:
        raise _Refused("hands out credentials, tokens, passwords or access URLs",
                       operation=name, shown=shown)
    if model.has_streaming_output:
        raise _Refused("downloads data to a local file", operation=name, shown=shown)
    if api_service == "ssm" and name in _DECRYPTING_SSM_OPERATIONS and args.get(
        "with-decryption"
    ):
        raise _Refused("decrypts SecureString parameters (--with-decryption)", operation=name,
                       shown=shown)


def _check_customization(
    text: str,
    service: str,
    name: str,
    command: Any,
    args: list[str],
    region: str | None,
) -> ReadOnlyCommand:
    shown = f"aws {service} {name}"
    if (service, name) not in _READ_CUSTOMIZATIONS:
        raise _Refused("is a high-level CLI command, not a single read-only API operation",
                       shown=shown)
    given = _operation_args(command.arg_table, args, shown, None)
    path = str(given.get("paths", "s3://")).removeprefix("s3://")
    bucket, _ = find_bucket_key(path)
    return ReadOnlyCommand(
        command=text,
        service=service,
        api_service="s3",
        cli_operation=name,
        operation="ListObjectsV2" if bucket else "ListBuckets",
        region=region,
        args=given,
    )


class _ParseError(Exception):
    """argparse's complaint about a command, raised instead of printing and exiting."""


def _raise_parse_error(message: str) -> NoReturn:
    raise _ParseError(message)


def _quiet(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    # argparse prints usage and calls sys.exit on a bad command; a server must not.
    parser.error = _raise_parse_error  # type: ignore[method-assign]
    return parser


def _shown(service: str, rest: list[str]) -> str:
    operation = next((w for w in rest if not w.startswith("-")), "")
    return f"aws {service} {operation}".strip()


def _suggestion(word: str, table: dict[str, Any]) -> str:
    close = [] if word.startswith("-") else get_close_matches(word, list(table), n=3)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _excerpt(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
