"""What can go wrong when reaching one account, as typed errors.

Every error carries ``status``: the ``AccountResult.status`` the graph should record for the
account ("denied", "timeout" or "error"), so a worker can map any of them with one
``except AccessError as exc: status = exc.status``. ``str(exc)`` is the readable message
shown to the person who asked.
"""

from __future__ import annotations

from typing import ClassVar, Literal

# graph.state.AccountStatus less "ok"; spelled out here because access/ may only
# import registry/ (the graph imports us, not the other way round).
ErrorStatus = Literal["denied", "timeout", "error"]

# AWS error codes that mean "this role may not do that": the read's status is denied.
ACCESS_DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnauthorizedAccess",
        "AuthorizationError",
        "AuthorizationErrorException",
        "NotAuthorized",
        "Forbidden",
    }
)


def is_denied(code: str | None) -> bool:
    """Whether an AWS error code means the role may not make this read."""
    return code in ACCESS_DENIED_CODES


# A region the account has not enabled (an opt-in region: af-south-1, ap-east-1, ...) answers
# OptInRequired, or fails the credentials, because the account's keys are not known there:
# AuthFailure (EC2), InvalidClientTokenId (query services), UnrecognizedClientException (json),
# InvalidAccessKeyId (S3). Sources: opsagent/sandbox/optin.py, which plays it, and
# https://docs.aws.amazon.com/accounts/latest/reference/manage-acct-regions.html
REGION_NOT_ENABLED = "OptInRequired"
REGION_MAYBE_NOT_ENABLED_CODES = frozenset(
    {"AuthFailure", "UnrecognizedClientException", "InvalidClientTokenId", "InvalidAccessKeyId"}
)


class AccessError(Exception):
    """Reaching an account, or running a command in it, failed."""

    status: ClassVar[ErrorStatus] = "error"

    def __init__(self, message: str, *, account_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.account_id = account_id


class AccountAccessDenied(AccessError):
    """The account refused us: AssumeRole was denied, or the AWS MCP Server rejected the
    assumed role. Status ``denied``."""

    status: ClassVar[ErrorStatus] = "denied"

    def __init__(self, account_id: str | None, message: str) -> None:
        super().__init__(message, account_id=account_id)


class AccountTimeout(AccessError):
    """STS or the AWS MCP Server did not answer in time. Status ``timeout``."""

    status: ClassVar[ErrorStatus] = "timeout"

    def __init__(self, account_id: str | None, message: str) -> None:
        super().__init__(message, account_id=account_id)


class AccountUnreachable(AccessError):
    """STS or the AWS MCP Server could not be reached or failed (endpoint down, connection
    dropped, bad central credentials). Status ``error``."""

    def __init__(self, account_id: str | None, message: str) -> None:
        super().__init__(message, account_id=account_id)


class EndpointLacksTool(AccountUnreachable):
    """The MCP endpoint answered but does not offer ``aws___run_script``. Status ``error``."""


class AwsCommandError(AccessError):
    """The command reached AWS and AWS answered with an error (``error_code`` such as
    ``InvalidParameterValue``), or the MCP server reported the tool call failed. Status
    ``error``."""

    def __init__(
        self,
        message: str,
        error_code: str | None = None,
        *,
        account_id: str | None = None,
        status_code: int | None = None,
        command: str | None = None,
    ) -> None:
        AccessError.__init__(self, message, account_id=account_id)
        self.error_code = error_code
        self.status_code = status_code
        self.command = command


class CommandAccessDenied(AwsCommandError, AccountAccessDenied):
    """The role was assumed but AWS refused this command (``AccessDenied``,
    ``UnauthorizedOperation``…). Both an ``AwsCommandError`` and an ``AccountAccessDenied``,
    so status ``denied``."""

    status: ClassVar[ErrorStatus] = "denied"


class ReadOnlyViolation(AccessError):
    """The read-only guard refused a command; nothing was sent anywhere. Status ``error``
    for the account (the graph may also show it as a ``read_only`` refusal)."""

    def __init__(
        self,
        command: str,
        reason: str,
        *,
        operation: str | None = None,
        shown: str | None = None,
        account_id: str | None = None,
    ) -> None:
        subject = f"`{shown or command}`" + (f" ({operation})" if operation else "")
        super().__init__(
            f"opsagent is read-only: {subject} {reason} and was not sent", account_id=account_id
        )
        self.command = command
        self.reason = reason
        self.operation = operation
