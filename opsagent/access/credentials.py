"""Assumed-role credentials for member accounts, one refreshing set per (account, asker).

Reaching a member account is STS AssumeRole from the central identity into the account's
read-only role, with the account's ExternalId when it has one, and the person asking
(``identity.Asker``) carried three ways so that CloudTrail in the member account says who
asked: a RoleSessionName that names them (``opsagent-alice``), their SourceIdentity, and
session tags with their user name and groups (``identity.py`` says how each is made to fit
STS's limits). The asker's groups are part of the cache key: two callers, or one caller with
other groups, never share credentials, since their session tags differ. Real AWS and the
sandbox share this code; only the STS endpoint URL differs.

Refreshing is botocore's ``DeferredRefreshableCredentials``: AssumeRole on first use and
again ahead of expiry (advisory 15 min, mandatory 10 min before), and the same object is
handed to the MCP client's SigV4 signer, so signing always sees current keys. A chained role
session (central role -> member role) lasts at most one hour (DurationSeconds 900..3600 s)
and the service runs for days:
https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use.html
https://repost.aws/knowledge-center/iam-role-chaining-limit
https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/sts/aws.sdk.kotlin.services.sts.model/-assume-role-request/duration-seconds.html

At organization scale (hundreds of accounts per question):
- STS calls run on a thread pool of our own (``max_concurrent_assume_roles``), not the loop's
  default executor (min(32, cpus + 4) threads), through ONE shared STS client (thread-safe;
  a connection pool as large as the thread pool; one retry quota for every account).
- botocore's "standard" retry mode retries throttling with exponential backoff and full
  jitter, rand(0,1) * min(2 ** (attempt - 1), 20) s, within ``max_attempts`` and the
  client-wide retry quota: STS answers ``Throttling`` ("Rate exceeded", HTTP 400); botocore
  also knows ThrottlingException, RequestLimitExceeded, TooManyRequestsException & co, HTTP
  429, 5xx and connection errors. AssumeRole models no throttling error; IDPCommunicationError
  is AssumeRoleWithWebIdentity's. "adaptive" mode is not meant for multi-tenant clients.
  https://repost.aws/knowledge-center/iam-sts-throttling-error
  https://docs.aws.amazon.com/boto3/latest/guide/retries.html
  https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html
- ``get(deadline_s=...)`` (or the caller's own timeout) bounds the wait. A thread cannot be
  cancelled, so once its caller stops waiting it makes no further attempt (a ``needs-retry``
  hook); credentials it still gets are kept for the next caller.
- ``forget`` drops one (account, asker) entry, so many users do not grow memory for ever.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from logging import WARNING
from typing import Any, TypeAlias

import boto3
from botocore.config import Config
from botocore.credentials import (
    Credentials,
    DeferredRefreshableCredentials,
    ReadOnlyCredentials,
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
from opsagent.access.identity import Asker
from opsagent.registry import Account

# The central account's identity: a boto3 Session (its credential chain is used, refreshed
# as boto3 refreshes it) or botocore Credentials.
CentralIdentity: TypeAlias = boto3.Session | Credentials

# STS error codes that mean "this role will not have you" rather than "something broke".
_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException"})
_BAD_CENTRAL_CODES = frozenset(
    {"InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException", "SignatureDoesNotMatch"}
    | {"UnrecognizedClientException"}
)
# "Slow down" codes (botocore's standard mode retries these and more): for the audit trail
# and the message; botocore decides what to retry.
_THROTTLE_CODES = frozenset(
    {"Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException"}
    | {"RequestThrottled", "RequestLimitExceeded", "TooManyRequestsException"}
)
# The session tags (with any session policy) are over STS's packed-size limit. The code is
# the error shape's name without "Exception" (botocore's STS model; query-protocol errors).
_TOO_LARGE_CODES = frozenset({"PackedPolicyTooLarge", "PackedPolicyTooLargeException"})


@dataclass
class _Waiter:
    """Whoever waits on an AssumeRole: whether they stopped waiting, what the thread met."""

    abandoned: threading.Event = field(default_factory=threading.Event)
    throttled: list[str] = field(default_factory=list)  # codes of throttled attempts


# Set on an STS thread for the get() it serves, then (with the audit fields) for the call.
_WAITER: contextvars.ContextVar[_Waiter | None] = contextvars.ContextVar("sts_waiter", default=None)
_CALL: contextvars.ContextVar[tuple[dict[str, Any], _Waiter] | None] = contextvars.ContextVar(
    "sts_call", default=None
)


class RoleCredentials:
    """Assumed-role credentials per (account, asker), created once and refreshed by botocore.

    ``for_account`` is cheap and makes no call: the first AssumeRole happens on first use.
    ``get`` makes sure usable credentials exist (calling STS on the STS thread pool if they
    are missing or due for refresh) and turns every failure into a typed ``AccessError``.
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
        max_attempts: int = 4,
        max_concurrent_assume_roles: int = 64,
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
            # total_max_attempts counts the first try; Config's "max_attempts" would not.
            retries={"total_max_attempts": max_attempts, "mode": "standard"},
            # Every STS thread may hold a connection; botocore's default pool is 10.
            max_pool_connections=max_concurrent_assume_roles,
        )
        self._time_fetcher = time_fetcher
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_concurrent_assume_roles, thread_name_prefix="opsagent-sts"
        )
        self._closed = False
        # (account id, asker) -> ((role ARN, external id) it was made for, credentials)
        self._cache: dict[tuple[str, Asker], tuple[tuple[str, str | None], RefreshableCredentials]]
        self._cache = {}
        self._lock = threading.Lock()  # get/for_account/forget may run in several threads
        # One STS client for all accounts, remade only when the central keys change.
        self._client_lock = threading.Lock()
        self._client: Any = None
        self._client_source: ReadOnlyCredentials | None = None

    @property
    def cached_count(self) -> int:
        """How many (account, asker) credential sets are held (not ``__len__``: an empty
        instance must stay truthy for ``credentials or RoleCredentials(...)``)."""
        return len(self._cache)

    def for_account(self, account: Account, asker: Asker) -> RefreshableCredentials:
        """The (lazy, self-refreshing) credentials for this account and asker; no STS call."""
        key, made_for = (account.id, asker), (account.role_arn, account.external_id)
        with self._lock:
            entry = self._cache.get(key)
            if entry is None or entry[0] != made_for:  # new, or the registry changed the role
                clock = {"time_fetcher": self._time_fetcher} if self._time_fetcher else {}
                refresh = self._refresher(account, asker)
                entry = (made_for, DeferredRefreshableCredentials(refresh, "assume-role", **clock))
                self._cache[key] = entry
            return entry[1]

    def forget(self, account_id: str, asker: Asker) -> None:
        """Drop the credentials held for (account, asker); the next use assumes the role anew."""
        with self._lock:
            self._cache.pop((account_id, asker), None)

    async def get(
        self, account: Account, asker: Asker, *, deadline_s: float | None = None
    ) -> RefreshableCredentials:
        """Credentials good for at least the mandatory-refresh window, or a typed error.

        ``deadline_s`` bounds the whole wait, retries and backoff included (the caller's own
        timeout or cancellation works too). Raises AccountAccessDenied (status denied) when
        STS refuses the role, AccountTimeout when STS does not answer in time, and
        AccountUnreachable (status error) for anything else (endpoint down, bad central
        credentials, throttled on every attempt…).
        """
        if self._closed:
            raise RuntimeError("RoleCredentials is closed")
        credentials = self.for_account(account, asker)
        if not credentials.refresh_needed():
            return credentials  # the common case: no thread hop at all
        waiter = _Waiter()
        loop = asyncio.get_running_loop()
        done = False
        try:
            async with asyncio.timeout(deadline_s):
                try:
                    await loop.run_in_executor(self._executor, _freeze, credentials, waiter)
                    done = True
                except Exception as exc:  # every failure becomes one of our typed errors
                    done = True
                    raise assume_role_error(account, exc) from exc
        except TimeoutError:
            met = (
                f"AssumeRole was throttled {len(waiter.throttled)} times ({waiter.throttled[-1]})"
                if waiter.throttled
                else "STS was slow to answer"
            )
            raise AccountTimeout(
                account.id,
                f"{account.alias} ({account.id}): no credentials from STS within "
                f"{deadline_s:g}s: {met}; no further attempts will be made",
            ) from None
        finally:
            if not done:  # timed out or cancelled: the thread must not try again
                waiter.abandoned.set()
        return credentials

    def close(self) -> None:
        """Stop the STS threads; queued work is cancelled, running calls end on their own."""
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _refresher(self, account: Account, asker: Asker) -> Callable[[], dict[str, Any]]:
        # Who asks, three ways (identity.py): the session name, the SourceIdentity (set for
        # the session's life; the role's trust policy must allow sts:SetSourceIdentity) and
        # session tags (sts:TagSession), not transitive: nothing chains on from this role.
        params: dict[str, Any] = {
            "RoleArn": account.role_arn,
            "RoleSessionName": asker.session_name,
            "DurationSeconds": self._duration_seconds,
            "SourceIdentity": asker.source_identity,
            "Tags": asker.session_tags(),
        }
        if account.external_id:
            params["ExternalId"] = account.external_id
        fields: dict[str, Any] = {
            **asker.audit_fields(),
            "account_id": account.id,
            "account_alias": account.alias,
            "role_arn": account.role_arn,
            "role_session_name": params["RoleSessionName"],
            "source_identity": params["SourceIdentity"],
            "session_tags": _tag_map(params["Tags"]),
            "external_id_used": bool(account.external_id),
        }

        def refresh() -> dict[str, Any]:
            # Runs in whichever thread refreshes: an STS worker, or rarely the signer's.
            # No waiter when the signer refreshes on its own (get() keeps that rare).
            waiter = _WAITER.get() or _Waiter()
            token = _CALL.set((fields, waiter))
            started = time.monotonic()
            try:
                response, tags = self._assume_role(params, asker, fields)
            except Exception as exc:
                _audit_failure(exc, fields, waiter, started)
                raise
            finally:
                _CALL.reset(token)
            creds = response["Credentials"]
            audit(
                "sts.assume_role",
                outcome="ok",
                assumed_role_arn=response.get("AssumedRoleUser", {}).get("Arn"),
                access_key_id=creds["AccessKeyId"],  # not secret; CloudTrail shows it too
                expires=creds["Expiration"],
                attempts=_attempts(response),
                # How full STS's packed space for session tags (and policies) is, in percent.
                packed_policy_size=response.get("PackedPolicySize"),
                elapsed_ms=_ms_since(started),
                **{**fields, "session_tags": _tag_map(tags)},
            )
            return {
                "access_key": creds["AccessKeyId"],
                "secret_key": creds["SecretAccessKey"],
                "token": creds["SessionToken"],
                "expiry_time": creds["Expiration"].isoformat(),
                "account_id": account.id,
            }

        return refresh

    def _assume_role(
        self, params: dict[str, Any], asker: Asker, fields: dict[str, Any]
    ) -> tuple[dict[str, Any], list[dict[str, str]]]:
        """AssumeRole, and the session tags it was given; once more with compact tags if STS
        finds them too large.

        Two tags of at most 256 characters each should never reach the packed-size limit
        (identity.py); if STS says they do, the groups tag is cut to its ``+N more`` marker
        and the call made again, so the question is answered and the session still shows
        that groups were left out (the audit records have them all)."""
        try:
            return self._sts_client().assume_role(**params), params["Tags"]
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            compact = asker.session_tags(compact=True)
            call = _CALL.get()
            abandoned = call is not None and call[1].abandoned.is_set()
            if code not in _TOO_LARGE_CODES or compact == params["Tags"] or abandoned:
                raise
        audit(
            "sts.assume_role.tags_too_large",
            level=WARNING,
            error_code=code,
            **{**fields, "session_tags": _tag_map(compact)},
        )
        return self._sts_client().assume_role(**{**params, "Tags": compact}), compact

    def _sts_client(self) -> Any:
        """The shared STS client, signed with the central identity's current keys."""
        source = self._source.get_frozen_credentials()  # may refresh the central identity
        with self._client_lock:  # boto3 Sessions are not thread-safe; clients are
            if self._client is None or self._client_source != source:
                client = self._session.client(
                    "sts",
                    region_name=self._sts_region,
                    endpoint_url=self._sts_endpoint_url,
                    config=self._client_config,
                    aws_access_key_id=source.access_key,
                    aws_secret_access_key=source.secret_key,
                    aws_session_token=source.token,
                )
                client.meta.events.register_first("needs-retry.sts.AssumeRole", _before_retry)
                self._client, self._client_source = client, source
            return self._client


def _freeze(credentials: RefreshableCredentials, waiter: _Waiter) -> None:
    """On an STS thread: refresh if due (the blocking STS call), saying for whom."""
    token = _WAITER.set(waiter)
    try:
        credentials.get_frozen_credentials()
    finally:
        _WAITER.reset(token)


def _before_retry(
    attempts: int,
    response: tuple[Any, dict[str, Any]] | None,
    caught_exception: Exception | None,
    **_: Any,
) -> None:
    """botocore's needs-retry hook, run before its standard retry handler decides to sleep.

    Audits each throttled attempt, and ends the call (re-raising its error) when the get()
    that started it stopped waiting: a thread cannot be cancelled, so it stops itself here.
    """
    call = _CALL.get()
    status = response[0].status_code if response is not None else None
    if call is None or (caught_exception is None and (status or 0) < 300):
        return  # not ours, or a success
    fields, waiter = call
    parsed = response[1] if response is not None else {}
    code = parsed.get("Error", {}).get("Code")
    if code in _THROTTLE_CODES or status == 429:
        waiter.throttled.append(code or "HTTP 429")
        audit(
            "sts.assume_role.throttled", level=WARNING, attempt=attempts, error_code=code, **fields
        )
    if waiter.abandoned.is_set():
        if caught_exception is not None:
            raise caught_exception
        parsed.setdefault("ResponseMetadata", {})["RetryAttempts"] = attempts - 1
        raise ClientError(parsed, "AssumeRole")


def _audit_failure(exc: Exception, fields: dict[str, Any], waiter: _Waiter, started: float) -> None:
    code = exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else None
    outcome = (
        "denied" if code in _DENIED_CODES else "throttled" if code in _THROTTLE_CODES else None
    )
    audit(
        "sts.assume_role",
        level=WARNING,
        outcome=outcome or ("timeout" if _is_timeout(exc) else "error"),
        error_code=code,
        error=str(exc),
        attempts=_attempts(exc.response) if isinstance(exc, ClientError) else None,
        throttled_attempts=len(waiter.throttled),
        abandoned=waiter.abandoned.is_set(),
        elapsed_ms=_ms_since(started),
        **fields,
    )


def _tag_map(tags: list[dict[str, str]]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in tags}


def _attempts(response: Any) -> int | None:
    retries = response.get("ResponseMetadata", {}).get("RetryAttempts")
    return None if retries is None else retries + 1


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


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
                f"{where}: AssumeRole into {account.role_arn} was refused ({code}): {message} "
                "(the role's trust policy must allow the central principal sts:AssumeRole, "
                "sts:SetSourceIdentity and sts:TagSession, as "
                "infrastructure/member-read-only-role.yaml does)",
            )
        if code in _BAD_CENTRAL_CODES:
            return AccountUnreachable(
                account.id,
                f"{where}: STS rejected the central identity's credentials ({code}): {message}",
            )
        if code in _THROTTLE_CODES:
            attempts = _attempts(exc.response)
            tries = f" on every attempt ({attempts})" if attempts else ""
            return AccountUnreachable(
                account.id,
                f"{where}: STS throttled AssumeRole into {account.role_arn}{tries} "
                f"({code}: {message}); too many STS calls from the central account, "
                "try again shortly",
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
