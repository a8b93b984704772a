"""Who an access key belongs to, read from the in-process moto backends.

moto decides the account of every request by its access key: IAM user keys and STS
temporary keys both live in the IAM backend of their account. The STS trust check of the
moto server and the SigV4 check of the MCP stand-in both need more than the account: the
principal behind the key (user or assumed-role session), its secret, its session token.
This module answers that, without creating backends for accounts that do not exist yet.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Literal

from moto.iam.models import IAMBackend, iam_backends
from moto.sts.models import AssumedRole, sts_backends

# The demo organization lives in the commercial partition only.
PARTITION = "aws"

PrincipalKind = Literal["user", "assumed-role"]


@dataclass(frozen=True)
class KeyIdentity:
    """The principal an access key belongs to, with what is needed to act as it."""

    access_key_id: str
    secret_access_key: str
    account_id: str
    kind: PrincipalKind
    # The caller's ARN as AWS reports it (sts get-caller-identity, AccessDenied messages).
    arn: str
    # The ARN trust policies match: the user ARN, or the role ARN behind a role session.
    principal_arn: str
    session_token: str | None = None
    expiration: datetime.datetime | None = None
    active: bool = True


# Access key -> its account. A key never moves between accounts, so the account found once
# is asked first next time instead of every account's IAM (0.16 ms at 500 accounts, on every
# MCP request and every STS or SCP check); what the key is now is still read from moto.
_KEY_ACCOUNTS: dict[str, str] = {}
_MAX_KEY_ACCOUNTS = 100_000


def resolve_access_key(access_key_id: str) -> KeyIdentity | None:
    """The identity behind an access key in the in-process moto; None if moto does not know it."""
    known = _KEY_ACCOUNTS.get(access_key_id)
    if known is not None and known in iam_backends:  # `in` creates no account
        iam = iam_backends[known][PARTITION]
        if access_key_id in iam.access_keys:
            return _identity(known, iam, access_key_id)
    # list() copies: other threads (moto request threads) may add accounts meanwhile.
    for account_id in list(iam_backends.keys()):
        iam = iam_backends[account_id][PARTITION]
        if access_key_id in iam.access_keys:
            if len(_KEY_ACCOUNTS) >= _MAX_KEY_ACCOUNTS:
                _KEY_ACCOUNTS.clear()
            _KEY_ACCOUNTS[access_key_id] = account_id
            return _identity(account_id, iam, access_key_id)
    return None


def _identity(account_id: str, iam: IAMBackend, access_key_id: str) -> KeyIdentity | None:
    key = iam.access_keys.get(access_key_id)
    if key is None:  # deleted meanwhile
        return None
    if key.user_name is not None:
        user = iam.users.get(key.user_name)
        arn = (
            user.arn
            if user is not None
            else (f"arn:{PARTITION}:iam::{account_id}:user/{key.user_name}")
        )
        return KeyIdentity(
            access_key_id=access_key_id,
            secret_access_key=key.secret_access_key,
            account_id=account_id,
            kind="user",
            arn=arn,
            principal_arn=arn,
            active=key.status == "Active",
        )
    session = _assumed_role_session(account_id, access_key_id)
    if session is None:
        # A temporary key without its session (moto state partly reset): unusable.
        return None
    return KeyIdentity(
        access_key_id=access_key_id,
        secret_access_key=session.secret_access_key,
        account_id=account_id,
        kind="assumed-role",
        arn=session.arn,
        principal_arn=_role_arn_without_path(session.role_arn, account_id),
        session_token=session.session_token,
        expiration=session.expiration,
    )


def _assumed_role_session(account_id: str, access_key_id: str) -> AssumedRole | None:
    if account_id not in sts_backends:
        return None
    for session in list(sts_backends[account_id][PARTITION].assumed_roles):
        if session.access_key_id == access_key_id:
            return session
    return None


def _role_arn_without_path(role_arn: str, account_id: str) -> str:
    # Trust policies name roles as arn:aws:iam::ACCOUNT:role/NAME; sessions keep only the name.
    return f"arn:{PARTITION}:iam::{account_id}:role/{role_arn.rsplit('/', 1)[-1]}"
