"""Reaching one account: assumed-role credentials, one MCP session per account and user, and
the read-only guard every command passes before it leaves the process."""

from opsagent.access.credentials import CentralIdentity, RoleCredentials, role_session_name
from opsagent.access.errors import (
    AccessError,
    AccountAccessDenied,
    AccountTimeout,
    AccountUnreachable,
    AwsCommandError,
    CommandAccessDenied,
    ReadOnlyViolation,
)
from opsagent.access.guard import ReadOnlyCommand, check_read_only
from opsagent.access.sessions import (
    CALL_AWS_TOOL,
    READ_ONLY_TOOLS,
    AccountSessions,
    parse_call_aws_result,
)

__all__ = [
    "CALL_AWS_TOOL",
    "READ_ONLY_TOOLS",
    "AccessError",
    "AccountAccessDenied",
    "AccountSessions",
    "AccountTimeout",
    "AccountUnreachable",
    "AwsCommandError",
    "CentralIdentity",
    "CommandAccessDenied",
    "ReadOnlyCommand",
    "ReadOnlyViolation",
    "RoleCredentials",
    "check_read_only",
    "parse_call_aws_result",
    "role_session_name",
]
