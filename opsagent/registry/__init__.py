"""Which accounts exist, what they are called, and who may see them."""

from opsagent.registry.discovery import DiscoveryError, discover, discover_registry
from opsagent.registry.live import LiveRegistry
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
from opsagent.registry.patterns import (
    ACCOUNT_ID_PATTERN,
    ACCOUNT_ID_RE,
    REGION_PATTERN,
    REGION_RE,
    is_account_id,
    is_region,
)

__all__ = [
    "ACCOUNT_ID_PATTERN",
    "ACCOUNT_ID_RE",
    "REGION_PATTERN",
    "REGION_RE",
    "DEFAULT_REGIONS",
    "DEFAULT_ROLE_NAME",
    "DiscoveryError",
    "ENVIRONMENT_SYNONYMS",
    "LiveRegistry",
    "Account",
    "AccountEntry",
    "Registry",
    "RegistryError",
    "UnknownAccountError",
    "discover",
    "discover_registry",
    "is_account_id",
    "is_region",
    "load_registry",
    "parse_registry",
]
