"""The account registry: which accounts exist, how to name them and how to reach them.

The file shape that operators of the original design already have is accepted unchanged:

    {"accounts": [{"id": "111111111111", "name": "Central Operations",
                   "environment": "operations", "role": "central"}, ...]}

Optional fields extend it (all documented in infrastructure/account-registry.template.json):
per account ``aliases``, ``regions``, ``role_name``, ``external_id``, ``ou``; at the top level
``default_regions``, ``role_name``, ``external_id`` and ``groups``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from opsagent.registry.patterns import is_account_id, is_region

# The member-account role every workload account carries; the same name is the default in
# infrastructure/member-read-only-role.yaml.
DEFAULT_ROLE_NAME = "OpsAgentReadOnly"
DEFAULT_REGIONS = ["us-east-1"]
AWS_PARTITION = "aws"

# Words people use for environments, mapped to the canonical environment names.
ENVIRONMENT_SYNONYMS: dict[str, str] = {
    "prod": "production",
    "prd": "production",
    "live": "production",
    "stage": "staging",
    "stg": "staging",
    "dev": "development",
    "develop": "development",
    "ops": "operations",
    "central": "operations",
    "operation": "operations",
}


class RegistryError(ValueError):
    """The registry file is missing, unreadable or invalid. The message says what and where."""


class UnknownAccountError(LookupError):
    """A question named an account the registry does not know."""

    def __init__(self, reference: str, known: list[str]):
        self.reference = reference
        self.known = known
        super().__init__(f"Unknown account {reference!r}. Known accounts: {', '.join(known)}.")


class AccountEntry(BaseModel):
    """One account as written in the registry file."""

    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    environment: str
    role: Literal["central", "workload"] = "workload"
    aliases: list[str] = Field(default_factory=list)
    regions: list[str] | None = None
    role_name: str | None = None
    external_id: str | None = None
    # The account's AWS Organizations OU path, "Root/Workloads/Prod": what "ou:" references name.
    ou: str | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _twelve_digits(cls, value: object) -> str:
        text = str(value)
        if not is_account_id(text):
            raise ValueError(f"account id must be exactly 12 digits, got {value!r}")
        return text

    @field_validator("regions")
    @classmethod
    def _valid_regions(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            _check_regions(value)
        return value


class Registry(BaseModel):
    """The whole registry file, validated."""

    model_config = ConfigDict(extra="forbid")

    accounts: list[AccountEntry]
    default_regions: list[str] = Field(default_factory=lambda: list(DEFAULT_REGIONS))
    role_name: str = DEFAULT_ROLE_NAME
    external_id: str | None = None
    # Which identity-provider groups may see which accounts (references as in questions).
    # No groups means every authenticated caller may see every account.
    groups: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("default_regions")
    @classmethod
    def _valid_default_regions(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("default_regions must name at least one region")
        return _check_regions(value)

    @model_validator(mode="after")
    def _consistent(self) -> Registry:
        seen_ids: set[str] = set()
        for entry in self.accounts:
            if entry.id in seen_ids:
                raise ValueError(f"duplicate account id {entry.id}")
            seen_ids.add(entry.id)
        owner: dict[str, str] = {}
        for entry in self.accounts:
            for name in {entry.name.lower(), *(a.lower() for a in entry.aliases)}:
                if name in owner and owner[name] != entry.id:
                    raise ValueError(
                        f"alias or name {name!r} is used by both {owner[name]} and {entry.id}"
                    )
                owner[name] = entry.id
        if not any(e.role == "central" for e in self.accounts):
            raise ValueError('no central account: exactly one account needs "role": "central"')
        if sum(e.role == "central" for e in self.accounts) > 1:
            raise ValueError('more than one account has "role": "central"')
        if not any(e.role == "workload" for e in self.accounts):
            raise ValueError('no workload account: at least one needs "role": "workload"')
        for group, refs in self.groups.items():
            for ref in refs:
                try:
                    self.resolve(ref)
                except UnknownAccountError as exc:
                    raise ValueError(f"group {group!r}: {exc}") from None
        return self

    # ----- the accounts as the rest of the agent sees them -----

    @property
    def all_accounts(self) -> list[Account]:
        return [self._account(e) for e in self.accounts]

    @property
    def central(self) -> Account:
        return next(self._account(e) for e in self.accounts if e.role == "central")

    @property
    def workload_accounts(self) -> list[Account]:
        """What "all accounts" means: every workload account, never the central one."""
        return [self._account(e) for e in self.accounts if e.role == "workload"]

    def get(self, account_id: str) -> Account:
        for entry in self.accounts:
            if entry.id == account_id:
                return self._account(entry)
        raise UnknownAccountError(account_id, self.known_names())

    def known_names(self) -> list[str]:
        return [f"{e.name} ({e.id}, {e.environment})" for e in self.accounts]

    def resolve(self, reference: str) -> list[Account]:
        """Accounts a reference means: an id, a name, an alias, an environment or a synonym.

        "all accounts", "every account", "each account" mean the workload accounts.
        "ou:<path>" means every account in that OU or below it, central included.
        Raises UnknownAccountError naming the known accounts.
        """
        ref = _normalize(reference)
        if ref.startswith("ou:"):
            return self._resolve_ou(reference)
        if ref in {
            "all",
            "all accounts",
            "every account",
            "each account",
            "every",
            "each",
            "all workload accounts",
            "workload",
            "workloads",
        }:
            return self.workload_accounts
        matches = [e for e in self.accounts if ref in self._names_of(e)]
        if not matches:
            env = ENVIRONMENT_SYNONYMS.get(ref, ref)
            matches = [e for e in self.accounts if _normalize(e.environment) == env]
        if not matches:
            raise UnknownAccountError(reference, self.known_names())
        return [self._account(e) for e in matches]

    def reference_words(self) -> dict[str, list[str]]:
        """Every word or phrase that names accounts, with the ids it means (for planners)."""
        words: dict[str, list[str]] = {}
        for entry in self.accounts:
            for name in self._names_of(entry):
                words.setdefault(name, []).append(entry.id)
            words.setdefault(_normalize(entry.environment), []).append(entry.id)
        for synonym, env in ENVIRONMENT_SYNONYMS.items():
            ids = [e.id for e in self.accounts if _normalize(e.environment) == env]
            if ids and synonym not in words:
                words[synonym] = ids
        return {k: sorted(set(v)) for k, v in words.items()}

    def visible_to(self, groups: list[str]) -> set[str]:
        """Account ids a caller in these groups may see; every account when no groups exist."""
        if not self.groups:
            return {e.id for e in self.accounts}
        visible: set[str] = set()
        for group in groups:
            for ref in self.groups.get(group, []):
                visible.update(a.id for a in self.resolve(ref))
        return visible

    def groups_including(self, account_id: str) -> list[str]:
        """The groups whose members may see this account (for a denial that says which)."""
        return [
            group
            for group, refs in self.groups.items()
            if any(account_id in {a.id for a in self.resolve(ref)} for ref in refs)
        ]

    def visible_part(self, account_ids: set[str] | frozenset[str]) -> Registry:
        """The registry as a caller limited to these accounts sees it: the other accounts are
        not in it at all, so "all accounts" means all of theirs, and a message listing the
        known accounts lists only theirs. Not re-validated (a caller may see no central
        account); when the caller sees no workload account, what they see stands in for it."""
        entries = [e for e in self.accounts if e.id in account_ids]
        if not any(e.role == "workload" for e in entries):
            entries = [e.model_copy(update={"role": "workload"}) for e in entries]
        return self.model_construct(
            **{**dict(self), "accounts": entries, "groups": {}}  # groups: none of their business
        )

    def _resolve_ou(self, reference: str) -> list[Account]:
        """Case-insensitive, whole path segments from the top: "ou:Root/Workloads" and
        "ou:Workloads" (the root's name left out) both cover "Root/Workloads/Prod"."""
        wanted = _ou_segments(reference.strip()[3:])
        matches = []
        for entry in self.accounts:
            path = _ou_segments(entry.ou or "")
            if wanted and wanted in (path[: len(wanted)], path[1 : 1 + len(wanted)]):
                matches.append(entry)
        if not matches:
            ous = sorted({f"ou:{e.ou}" for e in self.accounts if e.ou})
            raise UnknownAccountError(reference, self.known_names() + ous)
        return [self._account(e) for e in matches]

    @staticmethod
    def _names_of(entry: AccountEntry) -> set[str]:
        return {entry.id, _normalize(entry.name), *(_normalize(a) for a in entry.aliases)}

    def _account(self, entry: AccountEntry) -> Account:
        role_name = entry.role_name or self.role_name
        return Account(
            id=entry.id,
            name=entry.name,
            alias=_normalize(entry.aliases[0]) if entry.aliases else _slug(entry.name),
            environment=entry.environment.lower(),
            is_central=entry.role == "central",
            regions=list(entry.regions or self.default_regions),
            role_arn=f"arn:{AWS_PARTITION}:iam::{entry.id}:role/{role_name}",
            external_id=entry.external_id or self.external_id,
        )


class Account(BaseModel):
    """One account, resolved: what a worker needs to reach it."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    alias: str
    environment: str
    is_central: bool = False
    regions: list[str]
    role_arn: str
    external_id: str | None = None


def load_registry(path: str | Path) -> Registry:
    """Read and validate a registry file; every problem becomes one readable RegistryError."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RegistryError(f"registry file not found: {path}") from None
    except IsADirectoryError:
        raise RegistryError(f"registry file {path} is a directory; give the JSON file") from None
    except OSError as exc:
        raise RegistryError(f"registry file {path} cannot be read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")  # JSON is UTF-8; a BOM is forgiven
    except UnicodeDecodeError as exc:
        raise RegistryError(
            f"registry file {path} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
            f"{exc.start}); save it as UTF-8"
        ) from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RegistryError(f"registry file {path} is not valid JSON: {exc}") from None
    except RecursionError:
        raise RegistryError(f"registry file {path} is nested too deeply to be a registry") from None
    return parse_registry(raw, source=str(path))


def parse_registry(raw: object, source: str = "registry") -> Registry:
    try:
        return Registry.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = "unknown field"
            problems.append(f"{where}: {message}")
        raise RegistryError(f"invalid {source}: " + "; ".join(problems)) from None


def _check_regions(regions: list[str]) -> list[str]:
    for region in regions:
        if not is_region(region):
            raise ValueError(f"{region!r} is not an AWS region code (like us-east-1)")
    return regions


def _normalize(text: str) -> str:
    return " ".join(text.strip().lower().replace("_", " ").split())


def _ou_segments(path: str) -> list[str]:
    return [_normalize(part) for part in path.split("/") if part.strip()]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
