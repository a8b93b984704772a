"""Reaching one account: assumed-role credentials, one MCP session per account and asker
(who asks: user and groups, ``Asker``), reads as data, the read-only guard every read passes,
and the one script template that carries an account's reads to ``aws___run_script``."""

from opsagent.access.credentials import CentralIdentity, RoleCredentials
from opsagent.access.errors import (
    ACCESS_DENIED_CODES,
    REGION_MAYBE_NOT_ENABLED_CODES,
    REGION_NOT_ENABLED,
    AccessError,
    AccountAccessDenied,
    AccountTimeout,
    AccountUnreachable,
    AwsCommandError,
    CommandAccessDenied,
    EndpointLacksTool,
    ReadOnlyViolation,
    is_denied,
)
from opsagent.access.guard import check_read, sensitive_output_paths
from opsagent.access.identity import Asker, role_session_name
from opsagent.access.pool import KNOWLEDGE_TOOLS, AccountSessions
from opsagent.access.read_cache import ReadCache, RunReads
from opsagent.access.reads import FanOut, Read, ReadError, ReadResult
from opsagent.access.script import RUN_SCRIPT_TOOL, ScriptError, build_script
from opsagent.access.slots import AccountSlots

__all__ = [
    "ACCESS_DENIED_CODES",
    "KNOWLEDGE_TOOLS",
    "REGION_MAYBE_NOT_ENABLED_CODES",
    "REGION_NOT_ENABLED",
    "RUN_SCRIPT_TOOL",
    "AccessError",
    "AccountAccessDenied",
    "AccountSessions",
    "AccountSlots",
    "AccountTimeout",
    "AccountUnreachable",
    "Asker",
    "AwsCommandError",
    "CentralIdentity",
    "CommandAccessDenied",
    "EndpointLacksTool",
    "FanOut",
    "Read",
    "ReadError",
    "ReadCache",
    "ReadOnlyViolation",
    "ReadResult",
    "RoleCredentials",
    "RunReads",
    "ScriptError",
    "build_script",
    "check_read",
    "is_denied",
    "role_session_name",
    "sensitive_output_paths",
]
