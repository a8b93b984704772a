"""Assumed-role credentials for member accounts, one refreshing set per (account, user).

Reaching a member account is STS AssumeRole from the central identity into the account's
read-only role, with the account's ExternalId when it has one and a RoleSessionName that
names the person asking (``opsagent-alice``), so CloudTrail in the member account says who
asked. Real AWS and the sandbox share this code; only the STS endpoint URL differs.

Caching and refreshing are botocore's: an ``AssumeRoleCredentialFetcher`` behind
``DeferredRefreshableCredentials``, the pair botocore itself uses for ``role_arn`` profiles.
They refresh ahead of expiry (advisory 15 min before, mandatory 10 min before), and the
same object is handed to the MCP client's SigV4 signer, so signing always sees current keys.
Blocking STS calls run in a worker thread (``RoleCredentials.get``), never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeAlias

import boto3
from botocore.config import Config
from botocore.credentials import (
    AssumeRoleCredentialFetcher,
    Credentials,
    DeferredRefreshableCredentials,
    RefreshableCredentials,
)
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from opsagent.access.audit import audit
from opsagent.access.errors import (
    AccessError,
    AccountAccessDenied,
    AccountTimeout,
    AccountUnreachable,
)
from opsagent.registry import Account

# The central account's identity: a boto3 Session (its credential chain is used, refreshed
# as boto3 refreshes it) or botocore Credentials.
CentralIdentity: TypeAlias = boto3.Session | Credentials

SESSION_NAME_PREFIX = "opsagent-"
_SESSION_NAME_MAX = 64  # STS limit for RoleSessionName
_SESSION_NAME_BAD_CHARS = re.compile(r"[^\w+=,.@-]", flags=re.ASCII)
# STS error codes that mean "this role will not have you" rather than "something broke".
_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException"})
_BAD_CENTRAL_CODES = frozenset(
    {"InvalidClientTokenId", "ExpiredToken", "SignatureDoesNotMatch", "UnrecognizedClientException"}
)


def role_session_name(user: str) -> str:
    """``opsagent-<user>`` in STS's alphabet ``[\\w+=,.@-]`` (ASCII), at most 64 characters."""
    cleaned = _SESSION_NAME_BAD_CHARS.sub("-", user.strip()).strip("-") or "anonymous"
    return (SESSION_NAME_PREFIX + cleaned)[:_SESSION_NAME_MAX]


class RoleCredentials:
    """Assumed-role credentials per (account, user), created once and refreshed by botocore.

    ``for_account`` is cheap and makes no call: the first AssumeRole happens on first use.
    ``get`` makes sure usable credentials exist (calling STS in a worker thread if they are
    missing or due for refresh) and turns every failure into a typed ``AccessError``.
    """

    def __init__(
        self,
        central: CentralIdentity,
        *,
        sts_endpoint_url: str | None = None,
        sts_region: str | None = None,
        duration_seconds: int = 3600,
        connect_timeout: float = 5.0,
        read_timeout: float = 10.0,
        max_attempts: int = 2,
        time_fetcher: Callable[[], datetime] | None = None,
    ) -> None:
        self._session = central if isinstance(central, boto3.Session) else boto3.Session()
        source = central.get_credentials() if isinstance(central, boto3.Session) else central
        if source is None:
            raise NoCredentialsError()
        self._source: Credentials = source
        self._sts_endpoint_url = sts_endpoint_url
        self._sts_region = sts_region or self._session.region_name or "us-east-1"
        self._duration_seconds = duration_seconds
        self._client_config = Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"max_attempts": max_attempts, "mode": "standard"},
        )
        self._time_fetcher = time_fetcher
        self._cache: dict[tuple[str, str, str | None, str], RefreshableCredentials] = {}
        self._lock = threading.Lock()  # get/for_account may run in several threads at once
        # boto3 Sessions are not thread-safe, and refreshes create STS clients in threads.
        self._client_lock = threading.Lock()

    def for_account(self, account: Account, user: str) -> RefreshableCredentials:
        """The (lazy, self-refreshing) credentials for this account and user; no STS call."""
        key = (account.id, account.role_arn, account.external_id, user)
        with self._lock:
            credentials = self._cache.get(key)
            if credentials is None:
                credentials = self._create(account, user)
                self._cache[key] = credentials
            return credentials

    async def get(self, account: Account, user: str) -> RefreshableCredentials:
        """Credentials good for at least the mandatory-refresh window, or a typed error.

        Raises AccountAccessDenied (status denied) when STS refuses the role,
        AccountTimeout when STS does not answer in time, AccountUnreachable (status error)
        for anything else (endpoint down, bad central credentials…).
        """
        credentials = self.for_account(account, user)
        try:
            # get_frozen_credentials refreshes first when due; that is the blocking STS call.
            await asyncio.to_thread(credentials.get_frozen_credentials)
        except Exception as exc:  # every failure becomes one of our typed errors
            raise assume_role_error(account, exc) from exc
        return credentials

    def _create(self, account: Account, user: str) -> RefreshableCredentials:
        session_name = role_session_name(user)
        extra_args: dict[str, Any] = {
            "RoleSessionName": session_name,
            "DurationSeconds": self._duration_seconds,
        }
        if account.external_id:
            extra_args["ExternalId"] = account.external_id

        def client_creator(service_name: str, **kwargs: Any) -> Any:
            # The fetcher passes the central keys; we add where STS is and how long to wait.
            with self._client_lock:
                client = self._session.client(
                    service_name,
                    region_name=self._sts_region,
                    endpoint_url=self._sts_endpoint_url,
                    config=self._client_config,
                    **kwargs,
                )
            _audit_assume_role(client, account, user, session_name)
            return client

        fetcher = AssumeRoleCredentialFetcher(
            client_creator=client_creator,
            source_credentials=self._source,
            role_arn=account.role_arn,
            extra_args=extra_args,
        )
        options: dict[str, Any] = {}
        if self._time_fetcher is not None:
            options["time_fetcher"] = self._time_fetcher
        return DeferredRefreshableCredentials(
            refresh_using=fetcher.fetch_credentials, method="assume-role", **options
        )


def _audit_assume_role(client: Any, account: Account, user: str, session_name: str) -> None:
    """Log every AssumeRole this client makes, with its outcome, through botocore's events."""
    started: dict[str, float] = {}
    base: dict[str, Any] = {
        "user": user,
        "account_id": account.id,
        "account_alias": account.alias,
        "role_arn": account.role_arn,
        "role_session_name": session_name,
        "external_id_used": bool(account.external_id),
    }

    def before(**_: Any) -> None:
        started["t"] = time.monotonic()

    def elapsed_ms() -> int:
        return int((time.monotonic() - started.get("t", time.monotonic())) * 1000)

    def after(http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
        if http_response.status_code < 300:
            audit(
                "sts.assume_role",
                outcome="ok",
                assumed_role_arn=parsed.get("AssumedRoleUser", {}).get("Arn"),
                expires=parsed.get("Credentials", {}).get("Expiration"),
                elapsed_ms=elapsed_ms(),
                **base,
            )
        else:
            error = parsed.get("Error", {})
            audit(
                "sts.assume_role",
                level=logging.WARNING,
                outcome="denied" if error.get("Code") in _DENIED_CODES else "error",
                error_code=error.get("Code"),
                error=error.get("Message"),
                elapsed_ms=elapsed_ms(),
                **base,
            )

    def after_error(exception: Exception, **_: Any) -> None:
        audit(
            "sts.assume_role",
            level=logging.WARNING,
            outcome="timeout" if _is_timeout(exception) else "error",
            error=str(exception),
            elapsed_ms=elapsed_ms(),
            **base,
        )

    events = client.meta.events
    events.register("before-call.sts.AssumeRole", before)
    events.register("after-call.sts.AssumeRole", after)
    events.register("after-call-error.sts.AssumeRole", after_error)


def _is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, ConnectTimeoutError | ReadTimeoutError | TimeoutError)


def assume_role_error(account: Account, exc: BaseException) -> AccessError:
    """Turn an AssumeRole failure into the typed error (and account status) it means."""
    where = f"{account.alias} ({account.id})"
    if isinstance(exc, AccessError):
        return exc
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code, message = error.get("Code", ""), error.get("Message", str(exc))
        if code in _DENIED_CODES:
            return AccountAccessDenied(
                account.id,
                f"{where}: AssumeRole into {account.role_arn} was refused ({code}): {message}",
            )
        if code in _BAD_CENTRAL_CODES:
            return AccountUnreachable(
                account.id,
                f"{where}: STS rejected the central identity's credentials ({code}): {message}",
            )
        return AccountUnreachable(
            account.id, f"{where}: AssumeRole into {account.role_arn} failed ({code}): {message}"
        )
    if _is_timeout(exc):
        return AccountTimeout(account.id, f"{where}: STS did not answer in time ({exc})")
    if isinstance(exc, EndpointConnectionError):
        return AccountUnreachable(account.id, f"{where}: could not reach STS ({exc})")
    if isinstance(exc, NoCredentialsError):
        return AccountUnreachable(
            account.id, f"{where}: the central identity has no AWS credentials to assume roles with"
        )
    if isinstance(exc, BotoCoreError):
        return AccountUnreachable(account.id, f"{where}: AssumeRole failed: {exc}")
    return AccountUnreachable(
        account.id, f"{where}: AssumeRole failed: {type(exc).__name__}: {exc}"
    )
