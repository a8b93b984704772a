"""The account registry, discovered from AWS Organizations instead of written by hand.

    registry = discover_registry(boto3.Session())          # or discover(...) for the notes

What decides the result, and the AWS documentation each rule rests on:

* Who may discover. ListAccounts answers only the organization's management account or a
  member account that is a delegated administrator; anyone else gets AccessDeniedException,
  and an account outside any organization AWSOrganizationsNotInUseException. Both end here
  as a DiscoveryError saying whose credentials to use (the management account's id comes
  from DescribeOrganization, which any member may call).
  https://docs.aws.amazon.com/organizations/latest/APIReference/API_ListAccounts.html
  A delegated administrator also needs ListRoots, ListOrganizationalUnitsForParent,
  ListAccountsForParent and ListTagsForResource in the organization's delegation policy:
  https://docs.aws.amazon.com/organizations/latest/userguide/orgs_delegate_policies_example_view_accts_orgs.html
* Which accounts. Only ACTIVE ones. ``State`` (PENDING_ACTIVATION, ACTIVE, SUSPENDED,
  PENDING_CLOSURE, CLOSED) is read when present, else the older ``Status`` (ACTIVE,
  SUSPENDED, PENDING_CLOSURE), which AWS retires on September 9, 2026. Every other state
  is an account not yet usable, closing or closed: skipped, and named in
  ``Discovery.skipped``.
  https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_accounts_account_state.html
  https://docs.aws.amazon.com/organizations/latest/APIReference/API_Account.html
  https://docs.aws.amazon.com/organizations/latest/APIReference/API_CloseAccount.html
* The central account is the caller's own (sts:GetCallerIdentity): the agent runs there.
* Environment: the value of the first of ``environment_tag_keys`` the account carries; else
  the name of the OU the account sits in (not the root); else "unknown". Lower-cased and
  mapped through ENVIRONMENT_SYNONYMS ("prod" becomes "production"), since a registry
  environment must be the canonical word for "prod" in a question to find it.
* Aliases: the values of every one of ``alias_tag_keys`` the account carries, split on
  spaces (a tag value can hold no comma). An alias that is another account's name, or that
  two accounts claim, is left out (it would name no one account), with a note.
* Names: the account name. Names two accounts share get the id added to each,
  "Sandbox (555555555555)", since a registry name must name one account.
* OU path: "Root/Workloads/Prod", from the root's name down; a registry reference
  "ou:Workloads" covers it (see Registry.resolve).

Throttling (TooManyRequestsException) is retried by botocore: the clients use standard
retry mode with more attempts than its default.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from opsagent.registry.model import (
    DEFAULT_REGIONS,
    DEFAULT_ROLE_NAME,
    ENVIRONMENT_SYNONYMS,
    Registry,
    RegistryError,
    parse_registry,
)
from opsagent.registry.patterns import is_region

log = logging.getLogger(__name__)

DEFAULT_ENVIRONMENT_TAG_KEYS = ("environment", "env", "Environment")
DEFAULT_ALIAS_TAG_KEYS = ("alias", "opsagent:alias")
UNKNOWN_ENVIRONMENT = "unknown"
# Organizations is a global service: its endpoint for the aws partition is in us-east-1.
_FALLBACK_REGION = "us-east-1"
# Standard mode retries throttling with backoff; Organizations throttles list calls early.
_CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 10},
    user_agent_extra="opsagent-registry-discover",
)
_PERMISSIONS = (
    "organizations:ListAccounts, ListRoots, ListOrganizationalUnitsForParent, "
    "ListAccountsForParent and ListTagsForResource"
)
_ACCESS_DENIED = {"AccessDeniedException", "AccessDenied"}


class DiscoveryError(RegistryError):
    """The registry could not be discovered; the message says why and what to do."""


@dataclass(frozen=True)
class SkippedAccount:
    id: str
    name: str
    state: str


@dataclass(frozen=True)
class Discovery:
    """A discovered registry, the accounts left out of it, and what was changed to fit."""

    registry: Registry
    skipped: list[SkippedAccount] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def discover_registry(session: boto3.Session, **options: Any) -> Registry:
    """The registry of the caller's organization: ``discover(session, **options).registry``."""
    return discover(session, **options).registry


def discover(
    session: boto3.Session,
    *,
    environment_tag_keys: Sequence[str] = DEFAULT_ENVIRONMENT_TAG_KEYS,
    alias_tag_keys: Sequence[str] = DEFAULT_ALIAS_TAG_KEYS,
    default_regions: Sequence[str] | None = None,
    role_name: str | None = None,
    external_id: str | None = None,
    endpoint_url: str | None = None,
) -> Discovery:
    """Read the organization with ``session``'s credentials (the management account or a
    delegated administrator) and build a validated Registry of its active accounts.

    ``endpoint_url`` overrides both the STS and the Organizations endpoint (the sandbox);
    without it boto3 reads AWS_ENDPOINT_URL and the like as usual. ``default_regions``,
    ``role_name`` and ``external_id`` become the registry's top-level fields.
    Raises DiscoveryError (a RegistryError) with what to do.
    """
    # Before any AWS call: a typo here should not cost a walk of the whole organization.
    for code in default_regions or ():
        if not is_region(code):
            raise DiscoveryError(f"{code!r} is not an AWS region code (like us-east-1)")
    found = _read_organization(session, endpoint_url)
    caller, active, tags = found.caller, found.active, found.tags
    notes: list[str] = []
    names = _unique_names(active, notes)
    entries = []
    for account in active:
        account_id = account["Id"]
        account_tags = tags[account_id]
        entry: dict[str, Any] = {
            "id": account_id,
            "name": names[account_id],
            "environment": _environment(
                account_tags, environment_tag_keys, found.parents.get(account_id)
            ),
            "role": "central" if account_id == caller else "workload",
            "aliases": _aliases(account_tags, alias_tag_keys),
        }
        if account_id in found.paths:
            entry["ou"] = found.paths[account_id]
        entries.append(entry)
    _drop_ambiguous_aliases(entries, notes)
    raw: dict[str, Any] = {
        "accounts": entries,
        "default_regions": list(default_regions or DEFAULT_REGIONS),
        "role_name": role_name or DEFAULT_ROLE_NAME,
        "external_id": external_id,
    }
    registry = parse_registry(raw, source="registry discovered from AWS Organizations")
    return Discovery(registry=registry, skipped=found.skipped, notes=notes)


@dataclass
class _Organization:
    caller: str
    active: list[dict[str, Any]]  # ListAccounts' ACTIVE accounts, the caller's among them
    skipped: list[SkippedAccount]
    paths: dict[str, str]  # account id -> "Root/Workloads/Prod"
    parents: dict[str, str]  # account id -> the name of the OU it is in (not the root)
    tags: dict[str, dict[str, str]]  # account id -> its tags


def _read_organization(session: boto3.Session, endpoint_url: str | None) -> _Organization:
    region = session.region_name or _FALLBACK_REGION
    with _aws_errors(caller="the caller", operation="AWS client setup"):
        sts = session.client(
            "sts", region_name=region, endpoint_url=endpoint_url, config=_CLIENT_CONFIG
        )
        org = session.client(
            "organizations", region_name=region, endpoint_url=endpoint_url, config=_CLIENT_CONFIG
        )
    with closing(sts), closing(org):
        with _aws_errors(caller="the caller", operation="sts:GetCallerIdentity"):
            identity = sts.get_caller_identity()
        caller = identity["Account"]
        who = f"account {caller} ({identity['Arn']})"
        with _aws_errors(caller=who, operation="organizations:DescribeOrganization"):
            manager = _management_account(org)
        admins = _admins(manager)
        with _aws_errors(caller=who, operation="organizations:ListAccounts", admins=admins):
            listed = list(_pages(org, "list_accounts", "Accounts"))
        active = [a for a in listed if _state(a) == "ACTIVE"]
        skipped = [
            SkippedAccount(a["Id"], a.get("Name", ""), _state(a))
            for a in listed
            if _state(a) != "ACTIVE"
        ]
        for gone in skipped:
            log.info("skipped account", extra={"account_id": gone.id, "state": gone.state})
        if caller not in {a["Id"] for a in active}:
            # moto answers a member's ListAccounts with no accounts where AWS denies it.
            raise DiscoveryError(
                f"{who} is not among the active accounts ListAccounts returned: run discovery "
                f"with credentials of {admins}"
            )
        if len(active) < 2:
            raise DiscoveryError(
                f"the organization has no active account besides the caller's {caller}: "
                "there is no workload account to query"
            )
        with _aws_errors(
            caller=who, operation="organizations:ListRoots and the OU tree", admins=admins
        ):
            paths, parents = _ou_paths(org)
        tags: dict[str, dict[str, str]] = {}
        with _aws_errors(caller=who, operation="organizations:ListTagsForResource", admins=admins):
            for account in active:
                tags[account["Id"]] = {
                    t["Key"]: t["Value"]
                    for t in _pages(org, "list_tags_for_resource", "Tags", ResourceId=account["Id"])
                }
    return _Organization(caller, active, skipped, paths, parents, tags)


def _management_account(org: Any) -> str | None:
    """The organization's management account id; None when the caller may not ask (any
    member may by default, but an IAM policy can deny it: ListAccounts decides then).
    Not in an organization raises, for _aws_errors to say so."""
    try:
        return str(org.describe_organization()["Organization"]["MasterAccountId"])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _ACCESS_DENIED:
            return None
        raise


def _admins(manager: str | None) -> str:
    account = f"account {manager}" if manager else "account"
    return f"the organization's management {account} or a delegated administrator"


def _state(account: dict[str, Any]) -> str:
    return str(account.get("State") or account.get("Status") or "UNKNOWN")


def _pages(client: Any, operation: str, key: str, **params: Any) -> Iterator[dict[str, Any]]:
    # Paginators follow NextToken until it is null, as AWS asks, even past an empty page.
    for page in client.get_paginator(operation).paginate(**params):
        yield from page.get(key, [])


def _ou_paths(org: Any) -> tuple[dict[str, str], dict[str, str]]:
    """account id -> its OU path ("Root/Workloads/Prod"), and -> its OU's name (not the
    root's), walking the tree from each root with two list calls an OU."""
    paths: dict[str, str] = {}
    parents: dict[str, str] = {}
    todo = [
        (root["Id"], root.get("Name") or "Root", None)
        for root in _pages(org, "list_roots", "Roots")
    ]
    while todo:
        parent_id, path, ou_name = todo.pop()
        for account in _pages(org, "list_accounts_for_parent", "Accounts", ParentId=parent_id):
            paths[account["Id"]] = path
            if ou_name is not None:
                parents[account["Id"]] = ou_name
        for ou in _pages(
            org, "list_organizational_units_for_parent", "OrganizationalUnits", ParentId=parent_id
        ):
            todo.append((ou["Id"], f"{path}/{ou['Name']}", ou["Name"]))
    return paths, parents


def _canonical(text: str) -> str:
    word = _key(text)
    return ENVIRONMENT_SYNONYMS.get(word, word)


def _environment(tags: dict[str, str], keys: Sequence[str], ou_name: str | None) -> str:
    for key in keys:
        if tags.get(key, "").strip():
            return _canonical(tags[key])
    if ou_name and ou_name.strip():
        return _canonical(ou_name)
    return UNKNOWN_ENVIRONMENT


def _aliases(tags: dict[str, str], keys: Sequence[str]) -> list[str]:
    aliases: list[str] = []
    for key in keys:
        for alias in tags.get(key, "").lower().split():
            if alias not in aliases:
                aliases.append(alias)
    return aliases


def _unique_names(accounts: list[dict[str, Any]], notes: list[str]) -> dict[str, str]:
    """account id -> its registry name: the account name, with the id added where shared."""
    counts = Counter(_key(a.get("Name") or a["Id"]) for a in accounts)
    names: dict[str, str] = {}
    noted: set[str] = set()
    for account in accounts:
        name = account.get("Name") or account["Id"]
        if counts[_key(name)] > 1:
            if _key(name) not in noted:
                noted.add(_key(name))
                notes.append(
                    f"{counts[_key(name)]} accounts are named {name!r}: each name ends with its id"
                )
            name = f"{name} ({account['Id']})"
        names[account["Id"]] = name
    return names


def _drop_ambiguous_aliases(entries: list[dict[str, Any]], notes: list[str]) -> None:
    """Leave out each alias that another account's name is, or that two accounts claim."""
    names = {_key(e["name"]): e["id"] for e in entries}
    claims = Counter(alias for e in entries for alias in {_key(a) for a in e["aliases"]})
    for alias, count in claims.items():
        if count > 1:
            notes.append(f"alias {alias!r} left out: {count} accounts carry it")
    for entry in entries:
        kept = []
        for alias in entry["aliases"]:
            owner = names.get(_key(alias), entry["id"])
            if owner != entry["id"]:
                notes.append(f"alias {alias!r} of {entry['id']} left out: it is {owner}'s name")
            elif claims[_key(alias)] == 1:
                kept.append(alias)
        entry["aliases"] = kept


def _key(text: str) -> str:
    # How the registry compares names: case and spacing aside.
    return " ".join(text.strip().lower().replace("_", " ").split())


@contextmanager
def _aws_errors(*, caller: str, operation: str, admins: str = _admins(None)) -> Iterator[None]:
    """Turn what boto3 raises into a DiscoveryError saying what to do."""
    try:
        yield
    except NoCredentialsError:
        raise DiscoveryError(
            "no AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
            "as for the AWS CLI, with the management account's or a delegated administrator's"
        ) from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "Unknown"), error.get("Message", "")
        raise DiscoveryError(_client_error_text(caller, operation, admins, code, message)) from None
    except BotoCoreError as exc:  # no endpoint reachable, bad configuration, ...
        raise DiscoveryError(f"{operation} failed: {exc}") from None


def _client_error_text(caller: str, operation: str, admins: str, code: str, message: str) -> str:
    if code == "AWSOrganizationsNotInUseException":
        return (
            f"{caller} is not in an AWS Organizations organization: run discovery with "
            "credentials of an organization's management account or delegated administrator, "
            "or write the registry file by hand (infrastructure/account-registry.template.json)"
        )
    if code in _ACCESS_DENIED:
        return (
            f"{caller} may not call {operation}: only {admins} may list the organization's "
            f"accounts; use their credentials, with {_PERMISSIONS} allowed ({message})"
        )
    if code in {"InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch"}:
        return f"AWS does not accept these credentials ({code}: {message}): check them"
    if code in {"ExpiredToken", "ExpiredTokenException", "RequestExpired"}:
        return f"the AWS credentials have expired ({code}): refresh them (aws sso login, ...)"
    if code == "TooManyRequestsException":
        return f"{operation} is still throttled after retries ({message}): try again later"
    return f"{operation} failed for {caller}: {code}: {message}"
