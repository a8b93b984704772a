"""Which accounts exist, what they are called, and who may see them."""

from opsagent.registry.model import (
    DEFAULT_REGIONS,
    DEFAULT_ROLE_NAME,
    ENVIRONMENT_SYNONYMS,
    Account,
    AccountEntry,
    Registry,
    RegistryError,
    UnknownAccountError,
    load_registry,
    parse_registry,
)

__all__ = [
    "DEFAULT_REGIONS",
    "DEFAULT_ROLE_NAME",
    "ENVIRONMENT_SYNONYMS",
    "Account",
    "AccountEntry",
    "Registry",
    "RegistryError",
    "UnknownAccountError",
    "load_registry",
    "parse_registry",
]
