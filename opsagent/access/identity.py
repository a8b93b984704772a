"""Who asks: the caller's user name and groups, and how each member account's CloudTrail sees them.

Every AssumeRole into a member account carries the caller three ways (``Asker``):

- ``RoleSessionName`` ``opsagent-<user>`` (``role_session_name``): part of the assumed-role
  ARN, so every event the session makes names it. A label, cut to 64 characters.
- ``SourceIdentity`` ``<user>``: set once, it cannot be changed for the session's life and
  persists across role chaining; CloudTrail records it on every event and policies may test
  it (``aws:SourceIdentity``; the trust policy can require it, ``sts:SourceIdentity``).
- two session tags: ``opsagent:user`` (the user name, in the tags' wider alphabet) and
  ``opsagent:groups`` (the caller's groups joined with ``:``). They show in CloudTrail's
  AssumeRole event and as ``aws:PrincipalTag/opsagent:*`` to the member account's policies.
  Not transitive (``TransitiveTagKeys`` is not sent): nothing chains on from the member role.

STS's rules, from the AssumeRole API reference
(https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html) and the Tag type
(https://docs.aws.amazon.com/STS/latest/APIReference/API_Tag.html), also in botocore's STS model:

- RoleSessionName: 2-64 characters of ``[\\w+=,.@-]``.
- SourceIdentity: 2-64 characters of ``[\\w+=,.@-]`` (ASCII letters and digits), and it may
  not begin with ``aws:`` (it cannot: ``:`` is not in the alphabet). botocore's model now
  allows 256; the API reference says 64, and 64 is valid under both.
- Tags: at most 50; a key 1-128 and a value 0-256 characters of
  ``[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]`` (Unicode letters, spaces, digits and ``_.:/=+-@``; no
  comma); keys are case-insensitive and may not begin with ``aws:``; a key must not repeat
  an incoming transitive tag (ours are namespaced ``opsagent:``). Keys and values together
  with any session policy are also packed into a binary format with a limit of its own that
  AWS does not state in characters: the request fails with PackedPolicyTooLarge over it and
  the answer's ``PackedPolicySize`` says how close it came
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_session-tags.html,
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-limits.html#reference_iam-limits-entity-length).
  Two tags of at most 13 + 256 and 15 + 256 characters stay far below it; should STS still
  refuse them, ``credentials.py`` asks once more with ``compact=True`` tags (below).
- Setting a SourceIdentity needs ``sts:SetSourceIdentity``, passing tags ``sts:TagSession``,
  in the role's trust policy (``infrastructure/member-read-only-role.yaml``).

Names outside an alphabet are made to fit, never refused: a character STS does not take is
replaced, and a value that had to change or be cut ends in ``-`` and 8 hex digits of the
SHA-256 of the original, so two different callers never look the same in CloudTrail (the
audit record ``sts.assume_role`` maps the original name to what was sent). Groups that do not
fit in the 256 characters of ``opsagent:groups`` are never dropped silently: the value keeps
as many whole groups as fit (in sorted order) and ends in ``+N more`` for the N left out,
and the audit trail keeps the full list. The question never fails because of it.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

SESSION_NAME_PREFIX = "opsagent-"
SESSION_NAME_MAX = 64  # RoleSessionName: 2..64
SOURCE_IDENTITY_MIN, SOURCE_IDENTITY_MAX = 2, 64
MAX_SESSION_TAGS = 50
TAG_KEY_MAX, TAG_VALUE_MAX = 128, 256
USER_TAG = "opsagent:user"
GROUPS_TAG = "opsagent:groups"
GROUP_SEPARATOR = ":"
ANONYMOUS = "anonymous"

# RoleSessionName's and SourceIdentity's alphabet, ASCII: [\w+=,.@-].
_STS_NAME_BAD_CHARS = re.compile(r"[^\w+=,.@-]", flags=re.ASCII)
_TAG_PUNCTUATION = frozenset("_.:/=+-@")
_DIGEST_CHARS = 8  # hex digits of SHA-256 that tell two changed names apart


def role_session_name(user: str) -> str:
    """``opsagent-<user>`` in STS's alphabet ``[\\w+=,.@-]`` (ASCII), at most 64 characters."""
    cleaned = _STS_NAME_BAD_CHARS.sub("-", user.strip()).strip("-") or ANONYMOUS
    return (SESSION_NAME_PREFIX + cleaned)[:SESSION_NAME_MAX]


def source_identity(user: str) -> str:
    """The user name as a SourceIdentity: 2-64 characters of ``[\\w+=,.@-]``.

    The name itself when it fits; otherwise its characters outside the alphabet become ``-``,
    it is cut, and ``-<8 hex of SHA-256(user)>`` is added (``Jürgen Smith`` ->
    ``J-rgen-Smith-1f0c…``). An empty name is ``anonymous``.
    """
    cleaned = _STS_NAME_BAD_CHARS.sub("-", user.strip()).strip("-")
    if not cleaned:
        return ANONYMOUS
    if cleaned == user and SOURCE_IDENTITY_MIN <= len(cleaned) <= SOURCE_IDENTITY_MAX:
        return cleaned
    return _marked(cleaned, user, SOURCE_IDENTITY_MAX)


def tag_text(text: str) -> str:
    """``text`` in the session tags' alphabet ``[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]``: any other
    character (and any outside the Basic Multilingual Plane, which STS may count twice)
    becomes ``_``. No length limit here."""
    return "".join(ch if _tag_char(ch) else "_" for ch in text)


def user_tag_value(user: str) -> str:
    """The ``opsagent:user`` value: the name itself when it fits the tags' alphabet and 256
    characters, else made to fit and marked as ``source_identity`` does."""
    if not user.strip():
        return ANONYMOUS
    cleaned = tag_text(user)
    if cleaned == user and len(cleaned) <= TAG_VALUE_MAX:
        return cleaned
    return _marked(cleaned, user, TAG_VALUE_MAX)


def groups_tag_value(groups: Iterable[str], *, limit: int = TAG_VALUE_MAX) -> str:
    """The ``opsagent:groups`` value: the groups (in the order given) in the tags' alphabet,
    ``:`` inside a name made ``_``, joined with ``:``; ``""`` for none.

    Over ``limit`` characters it keeps the leading groups that fit whole and ends in
    ``+N more`` (``platform:sre-oncall:+12 more``), so a reader sees that N were left out.
    """
    names = [tag_text(group).replace(GROUP_SEPARATOR, "_") for group in groups]
    joined = GROUP_SEPARATOR.join(names)
    if len(joined) <= limit:
        return joined
    # Room for the widest marker this list can need (``:+<all> more``).
    reserve = len(f"{GROUP_SEPARATOR}+{len(names)} more")
    shown: list[str] = []
    used = 0
    for name in names:
        extra = len(name) + (len(GROUP_SEPARATOR) if shown else 0)
        if used + extra + reserve > limit:
            break
        shown.append(name)
        used += extra
    return GROUP_SEPARATOR.join([*shown, f"+{len(names) - len(shown)} more"])


@dataclass(frozen=True)
class Asker:
    """Who asks: the user name and the groups from their token.

    The value every layer of ``access/`` is handed instead of a bare user name: the pool's
    sessions, the credentials and the read cache are kept per Asker (user AND groups), since
    the session tags, and so what an ABAC policy in a member account lets the session see,
    differ with the groups. Groups are kept sorted and without repeats (and empty names), so
    the same groups in another order are the same Asker.
    """

    user: str
    groups: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "groups", tuple(sorted({g for g in self.groups if g})))

    @property
    def session_name(self) -> str:
        """The RoleSessionName: ``opsagent-<user>``."""
        return role_session_name(self.user)

    @property
    def source_identity(self) -> str:
        """The SourceIdentity: the user name, within STS's rules."""
        return source_identity(self.user)

    def session_tags(self, *, compact: bool = False) -> list[dict[str, str]]:
        """The AssumeRole ``Tags``: ``opsagent:user`` and ``opsagent:groups``.

        ``compact`` (after STS said PackedPolicyTooLarge): the groups tag is only the marker,
        ``+N more`` with every group left out, so the session still says it had groups."""
        if compact and self.groups:
            groups = f"+{len(self.groups)} more"
        else:
            groups = groups_tag_value(self.groups)
        return [
            {"Key": USER_TAG, "Value": user_tag_value(self.user)},
            {"Key": GROUPS_TAG, "Value": groups},
        ]

    def audit_fields(self) -> dict[str, Any]:
        """What every audit record says of the caller: the name and the full list of groups."""
        return {"user": self.user, "groups": list(self.groups)}


def _tag_char(ch: str) -> bool:
    if ch in _TAG_PUNCTUATION:
        return True
    return ord(ch) <= 0xFFFF and unicodedata.category(ch)[0] in "LNZ"


def _marked(cleaned: str, original: str, limit: int) -> str:
    """``cleaned`` cut so that ``-<8 hex>`` of the original's SHA-256 fits within ``limit``."""
    digest = hashlib.sha256(original.encode("utf-8")).hexdigest()[:_DIGEST_CHARS]
    return f"{cleaned[: limit - _DIGEST_CHARS - 1]}-{digest}"


__all__ = [
    "GROUPS_TAG",
    "MAX_SESSION_TAGS",
    "SESSION_NAME_PREFIX",
    "SOURCE_IDENTITY_MAX",
    "TAG_VALUE_MAX",
    "USER_TAG",
    "Asker",
    "groups_tag_value",
    "role_session_name",
    "source_identity",
    "tag_text",
    "user_tag_value",
]
