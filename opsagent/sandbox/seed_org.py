"""The demo organization in moto's AWS Organizations, so registry discovery has a real one.

    Root
    ├── Operations           111111111111  Central Operations  (management account)
    └── Workloads
        ├── Prod             222222222222  Production
        └── NonProd          333333333333  Staging
                             444444444444  Development
                             565656565656  Retired Sandbox     (closed: SUSPENDED)

Every account carries the tags ``environment`` and ``alias`` (aliases separated by spaces),
so ``opsagent.registry.discovery`` reads back ``demo-registry.json``'s accounts: same ids,
names, environments, aliases and central account, plus their OU paths. The closed account is
in no registry: discovery must skip it.

Built through the moto server's Organizations API as the central user, as a person would,
except two things no Organizations API can do: give a new account a chosen id (CreateAccount
draws a random one) and rename the management account (moto names it "master"). Those two go
through moto's backend objects, as the IAM bootstrap in ``seed.py`` does.
"""

from __future__ import annotations

from typing import NamedTuple
from unittest import mock

import botocore.session
from botocore.credentials import Credentials
from moto.organizations import utils as organizations_utils
from moto.organizations.models import OrganizationsBackend, organizations_backends

from opsagent.sandbox.identity import PARTITION
from opsagent.sandbox.seed_builder import _client, _tags
from opsagent.sandbox.seed_data import CENTRAL, DEV, E1, PROD, STAGING

__all__ = ["CLOSED_ACCOUNT", "ORG_ACCOUNTS", "ORG_UNITS", "OrgAccount", "seed_org"]


class OrgAccount(NamedTuple):
    id: str
    name: str
    ou: str  # path under Root
    environment: str
    aliases: str  # the ``alias`` tag: aliases separated by spaces


# Parents before children: each is created under the one before its last "/".
ORG_UNITS = ("Operations", "Workloads", "Workloads/Prod", "Workloads/NonProd")

ORG_ACCOUNTS = [
    OrgAccount(CENTRAL, "Central Operations", "Operations", "operations", "central ops"),
    OrgAccount(PROD, "Production", "Workloads/Prod", "production", "production prod"),
    OrgAccount(STAGING, "Staging", "Workloads/NonProd", "staging", "staging stage"),
    OrgAccount(DEV, "Development", "Workloads/NonProd", "development", "development dev"),
]
# Closed after it is created: ListAccounts still lists it, as SUSPENDED.
CLOSED_ACCOUNT = OrgAccount(
    "565656565656", "Retired Sandbox", "Workloads/NonProd", "development", "retired"
)


def seed_org(endpoint: str, central: Credentials) -> None:
    """Create the organization above in the moto server at ``endpoint`` (in this process),
    with the central account ``central`` holds credentials of as its management account."""
    session = botocore.session.get_session()
    org = _client(session, "organizations", E1, endpoint, central)
    try:
        org.create_organization(FeatureSet="ALL")
        root = org.list_roots()["Roots"][0]["Id"]
        ou_ids = {"": root}
        for path in ORG_UNITS:
            parent, _, name = path.rpartition("/")
            answer = org.create_organizational_unit(ParentId=ou_ids[parent], Name=name)
            ou_ids[path] = answer["OrganizationalUnit"]["Id"]
        backend = organizations_backends[CENTRAL][PARTITION]
        for account in [*ORG_ACCOUNTS, CLOSED_ACCOUNT]:
            tags = _tags(environment=account.environment, alias=account.aliases)
            if account.id == CENTRAL:
                _rename_management_account(backend, account.name)
                org.tag_resource(ResourceId=account.id, Tags=tags)
            else:
                _create_member(backend, account, tags)
            org.move_account(
                AccountId=account.id, SourceParentId=root, DestinationParentId=ou_ids[account.ou]
            )
        org.close_account(AccountId=CLOSED_ACCOUNT.id)
    finally:
        org.close()


def _rename_management_account(backend: OrganizationsBackend, name: str) -> None:
    backend.get_account_by_id(CENTRAL).name = name


def _create_member(
    backend: OrganizationsBackend, account: OrgAccount, tags: list[dict[str, str]]
) -> None:
    """moto's own CreateAccount (default policies attached, the member mapped to its
    organization, OrganizationAccountAccessRole kept if the IAM bootstrap made it), with the
    demo's fixed id in place of the random one."""
    with mock.patch.object(organizations_utils, "make_random_account_id", return_value=account.id):
        backend.create_account(
            AccountName=account.name,
            Email=f"aws+{account.id}@example.com",
            Tags=tags,
        )
