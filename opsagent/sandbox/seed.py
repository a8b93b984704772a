"""The demo organization: one central operations account and three member accounts.

Everything the sandbox holds is written in the tables below, one row per resource, so the
counts can be read off the page. Seeding goes through the running moto server with boto3
and each account's own credentials, exactly as a person would set the accounts up, except
for two steps that touch moto's backends directly because no AWS API can do them:

1. Bootstrap (there is no other way to give an account its first identity): the central
   IAM user ``opsagent`` with an access key, and in every account the role
   ``OpsAgentReadOnly`` (what the agent assumes) and ``OrganizationAccountAccessRole`` (what
   AWS Organizations creates in member accounts, used here to build them), both trusting
   the central account.
2. Per account: assume OrganizationAccountAccessRole from the central user (through the
   sandbox's STS trust check) and create the rows of that account; then backdate them
   (``_backdate``). AWS sets a resource's creation time itself (LaunchTime,
   InstanceCreateTime, LastModified, createdAt, CreateTime, CreationDate) and no API
   changes it, so everything moto just created would be seconds old. Each row's
   ``days_ago`` is subtracted from the time moto gave it, in moto's backend objects, so
   ages count from the moment of seeding and "launched in the last 7 days" or "older than
   90 days" answers the same on any day.

Resource ids (instance ids, volume ids, ...) are moto's and differ between runs, and so do
exact creation times (not ages in days); names, tags, regions, states and counts do not.
Tests read their ground truth from moto, never from these tables.

The role permissions below are documentation: moto does not evaluate IAM permissions, only
the sandbox's STS middleware evaluates trust policies.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import botocore.session
from botocore.config import Config
from botocore.credentials import Credentials
from moto.awslambda.models import lambda_backends
from moto.ec2.models import ec2_backends
from moto.eks.models import eks_backends
from moto.iam.models import iam_backends
from moto.rds.models import rds_backends
from moto.s3.models import s3_backends

from opsagent.sandbox.identity import PARTITION
from opsagent.sandbox.seed_builder import AccountBuilder, _client, _rows, _tags
from opsagent.sandbox.seed_data import (
    _ADMIN_POLICY,
    _READ_ONLY_POLICY,
    ADMIN_ROLE,
    ALL_ACCOUNTS,
    BUCKETS,
    CENTRAL,
    CENTRAL_USER,
    DB_INSTANCES,
    DB_SETTINGS,
    DEV,
    DYNAMODB_TABLES,
    E1,
    ECS_CLUSTERS,
    ECS_SERVICES,
    EKS_CLUSTERS,
    EKS_NODEGROUPS,
    ELASTIC_IPS,
    ENVIRONMENTS,
    FUNCTIONS,
    IAM_ROLES,
    INSTANCE_TAGS,
    INSTANCES,
    IO1_IOPS,
    MEMBER_ACCOUNTS,
    PROD,
    READ_ONLY_ROLE,
    REGIONS,
    SECURITY_GROUPS,
    SEED_SESSION_NAME,
    STACKS,
    STAGING,
    VOLUMES,
    VPCS,
    W2,
    Bucket,
    DbInstance,
    DbSettings,
    EcsCluster,
    EcsService,
    EksCluster,
    ElasticIp,
    Function,
    IamRole,
    Instance,
    NodeGroup,
    SecurityGroup,
    Stack,
    Table,
    Volume,
    Vpc,
    trust_policy,
)
from opsagent.sandbox.seed_org import seed_org

log = logging.getLogger(__name__)

__all__ = [
    "ADMIN_ROLE",
    "ALL_ACCOUNTS",
    "AccountBuilder",
    "BUCKETS",
    "Bucket",
    "CENTRAL",
    "CENTRAL_USER",
    "DB_INSTANCES",
    "DB_SETTINGS",
    "DEV",
    "DYNAMODB_TABLES",
    "DbInstance",
    "DbSettings",
    "E1",
    "ECS_CLUSTERS",
    "ECS_SERVICES",
    "EKS_CLUSTERS",
    "EKS_NODEGROUPS",
    "ELASTIC_IPS",
    "ENVIRONMENTS",
    "EcsCluster",
    "EcsService",
    "EksCluster",
    "ElasticIp",
    "FIRST_MEMBER_ID",
    "FUNCTIONS",
    "Function",
    "IAM_ROLES",
    "INSTANCE_TAGS",
    "INSTANCES",
    "IO1_IOPS",
    "IamRole",
    "Instance",
    "MEMBER_ACCOUNTS",
    "MEMBER_INSTANCE_TYPE",
    "NodeGroup",
    "PROD",
    "READ_ONLY_ROLE",
    "REGIONS",
    "SECURITY_GROUPS",
    "SEED_SESSION_NAME",
    "STACKS",
    "STAGING",
    "SecurityGroup",
    "SeedResult",
    "Stack",
    "Table",
    "VOLUMES",
    "VPCS",
    "Volume",
    "Vpc",
    "W2",
    "member_account_ids",
    "member_bucket_name",
    "member_instance_name",
    "seed_member_accounts",
    "seed_organization",
    "trust_policy",
]

# ----- seeding -----


@dataclass(frozen=True)
class SeedResult:
    """What seeding made that callers need: the central identity the agent runs as."""

    central_credentials: Credentials
    # Seconds spent per account, for the start-up figures.
    timings: dict[str, float] = field(default_factory=dict)


def seed_organization(endpoint: str) -> SeedResult:
    """Build the demo organization in the moto server at ``endpoint`` (running in this process)."""
    started = time.perf_counter()
    central = _bootstrap()
    session = botocore.session.get_session()
    timings: dict[str, float] = {}
    # One account after the other: moto runs in this process, so threads only fight over the
    # GIL (measured: 4 workers take 5.5 s, one takes 4.2 s).
    for account in ALL_ACCOUNTS:
        t0 = time.perf_counter()
        creds = central if account == CENTRAL else _assume(session, endpoint, central, account)
        builder = AccountBuilder(session, endpoint, account, creds)
        builder.build()
        _backdate(builder)
        timings[account] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    seed_org(endpoint, central)  # what `opsagent registry discover` reads
    timings["organization"] = round(time.perf_counter() - t0, 3)
    timings["total"] = round(time.perf_counter() - started, 3)
    log.info("sandbox seeded", extra={"seconds": timings})
    return SeedResult(central_credentials=central, timings=timings)


def _bootstrap() -> Credentials:
    """The first identities of each account, which only moto's own backends can create."""
    central_iam = iam_backends[CENTRAL][PARTITION]
    central_iam.create_user(region_name=E1, user_name=CENTRAL_USER)
    key = central_iam.create_access_key(CENTRAL_USER)
    for account in ALL_ACCOUNTS:
        _create_account_roles(account, admin=account != CENTRAL)
    return Credentials(key.access_key_id, key.secret_access_key)


def _backdate(built: AccountBuilder) -> None:
    """Make each row of one account ``days_ago`` days old, in moto's backends (no AWS API
    sets a creation time): the time moto gave it minus that many days, kept in the type
    moto keeps it in."""
    account = built.account
    data_volumes = set(built.volume_ids.values())
    for inst in _rows(INSTANCES, account):
        ec2 = ec2_backends[account][inst.region]
        instance = ec2.get_instance(built.instance_ids[inst.name])
        instance.launch_time -= timedelta(days=inst.days_ago)
        # moto gives every instance a root volume (8 GiB gp2): as old as the instance.
        for _, device in instance.get_block_device_mapping:
            if device.volume_id not in data_volumes:
                ec2.get_volume(device.volume_id).create_time -= timedelta(days=inst.days_ago)
    for vol in _rows(VOLUMES, account):
        volume = ec2_backends[account][vol.region].get_volume(built.volume_ids[vol.name])
        volume.create_time -= timedelta(days=vol.days_ago)
    for bucket in _rows(BUCKETS, account):
        found = s3_backends[account][PARTITION].buckets[bucket.name]
        found.creation_date -= timedelta(days=bucket.days_ago)
    for db in _rows(DB_INSTANCES, account):
        database = rds_backends[account][db.region].databases[db.identifier]
        age = timedelta(days=DB_SETTINGS[db.identifier].days_ago)
        database.created -= age
        database.instance_create_time -= age  # what DescribeDBInstances answers
    for fn in _rows(FUNCTIONS, account):
        function = lambda_backends[account][fn.region].get_function(fn.name)
        # Lambda's LastModified is text; written as moto writes it (nanoseconds, Z).
        modified = datetime.now(UTC) - timedelta(days=fn.days_ago)
        function.last_modified = modified.strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
    for eks in _rows(EKS_CLUSTERS, account):
        cluster = eks_backends[account][eks.region].clusters[eks.name]
        cluster.created_at -= timedelta(days=eks.days_ago)


def _create_account_roles(account: str, *, admin: bool) -> None:
    """OpsAgentReadOnly (and, for a member, OrganizationAccountAccessRole) trusting central."""
    trust_central = trust_policy(principal=f"arn:aws:iam::{CENTRAL}:root")
    iam = iam_backends[account][PARTITION]
    roles = [(READ_ONLY_ROLE, "Read-only access for the operations agent", _READ_ONLY_POLICY)]
    if admin:
        roles.append(
            (ADMIN_ROLE, "Administrator access from the management account", _ADMIN_POLICY)
        )
    for name, description, policy in roles:
        iam.create_role(
            role_name=name,
            assume_role_policy_document=trust_central,
            path="/",
            permissions_boundary=None,
            description=description,
            tags=[],
            max_session_duration="3600",
        )
        iam.put_role_policy(name, f"{name}Policy", policy)


# ----- more member accounts, for organization-scale work -----

# Where seed_member_accounts numbers accounts from by default: 100000000001, 100000000002, ...
# (far below the demo's 111111111111 for any count a machine can hold).
FIRST_MEMBER_ID = 100_000_000_001
MEMBER_INSTANCE_TYPE = "t3.micro"


def member_account_ids(count: int, first_id: int = FIRST_MEMBER_ID) -> list[str]:
    """The ids seed_member_accounts gives ``count`` accounts numbered from ``first_id``."""
    if count < 0 or first_id < 10**11 or first_id + count > 10**12:
        raise ValueError(f"{count} accounts from {first_id} are not all 12-digit account ids")
    return [f"{first_id + n:012d}" for n in range(count)]


def member_bucket_name(account: str, region: str) -> str:
    return f"member-{region}-{account}"


def member_instance_name(account: str, region: str) -> str:
    return f"member-{account}-{region}"


def seed_member_accounts(
    endpoint: str,
    central: Credentials,
    count: int,
    *,
    first_id: int = FIRST_MEMBER_ID,
    regions: Iterable[str] = REGIONS,
    public_images: bool = False,
) -> list[str]:
    """Add ``count`` member accounts to the sandbox's moto, cheaply; return their ids.

    The moto server at ``endpoint`` must run in this process (the roles are created in moto's
    IAM backends, as ``seed_organization``'s bootstrap does) and already hold the central
    identity ``central`` (``Sandbox.central_credentials``). Each new account gets, as a demo
    member account has them, the role ``OpsAgentReadOnly`` that the central account may
    assume (what a registry entry with the default role name points at) and
    ``OrganizationAccountAccessRole``; then, built through moto's API with that account's
    assumed-role credentials, in every region of ``regions``: one running EC2 instance
    (``t3.micro``, Name ``member-<account>-<region>``, tags ``environment=member``,
    ``team=scale``) and one S3 bucket (``member-<region>-<account>``). So "EC2 instances (or
    S3 buckets) across all accounts" finds exactly one per account and region.

    Ids are ``member_account_ids(count, first_id)``: 12 digits counting up from ``first_id``;
    an id that already holds the agent's role raises ValueError before anything is created.

    Cheap on purpose (under 0.1 s an account with two regions): one client per service and
    region serves every account (their credentials are swapped between accounts; creating
    botocore clients per account was a third of the time), and unless ``public_images`` is
    set, the new accounts' EC2 regions are created without moto's catalogue of public AMIs
    (moto copies its few hundred AMIs, each with a snapshot, into every account and region on
    first use: half the time). So DescribeImages of Amazon's AMIs finds none in these
    accounts; the instances run an AMI id moto does not check. That switch
    (``MOTO_EC2_LOAD_DEFAULT_AMIS``) is moto's process-wide setting: it is off only while
    these accounts' EC2 regions are created, one account after another.

    Stopping costs what seeding saved: ``Sandbox.stop()`` resets moto, which rebuilds every
    backend it holds, these EC2 regions with the AMI catalogue (measured: 23 s after 100
    accounts × 2 regions); a process that is about to exit can skip the stop.
    """
    regions = tuple(regions)
    accounts = member_account_ids(count, first_id)
    taken = [
        a
        for a in accounts
        if a in iam_backends
        and any(r.name == READ_ONLY_ROLE for r in iam_backends[a][PARTITION].roles.values())
    ]
    if taken:
        raise ValueError(
            f"accounts already seeded: {', '.join(taken[:5])}"
            + (f" and {len(taken) - 5} more" if len(taken) > 5 else "")
        )
    started = time.perf_counter()
    session = botocore.session.get_session()
    sts = _client(session, "sts", E1, endpoint, central)
    # The clients below sign with this one object; it holds each account's keys in turn.
    session.set_credentials("unset", "unset")
    as_account = session.get_credentials()
    config = Config(
        retries={"max_attempts": 2, "mode": "standard"}, s3={"addressing_style": "path"}
    )
    s3 = session.create_client("s3", region_name=E1, endpoint_url=endpoint, config=config)
    ec2 = {
        region: session.create_client(
            "ec2", region_name=region, endpoint_url=endpoint, config=config
        )
        for region in regions
    }
    for account in accounts:
        _create_account_roles(account, admin=True)
        answer = sts.assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/{ADMIN_ROLE}", RoleSessionName=SEED_SESSION_NAME
        )["Credentials"]
        as_account.access_key = answer["AccessKeyId"]
        as_account.secret_key = answer["SecretAccessKey"]
        as_account.token = answer["SessionToken"]
        if not public_images:
            _create_ec2_regions_without_images(account, regions)
        for region in regions:
            image = (
                AccountBuilder.public_image(ec2[region], region)
                if public_images
                else _UNCHECKED_IMAGE
            )
            ec2[region].run_instances(
                ImageId=image,
                InstanceType=MEMBER_INSTANCE_TYPE,
                MinCount=1,
                MaxCount=1,
                TagSpecifications=[
                    {
                        "ResourceType": "instance",
                        "Tags": _tags(
                            Name=member_instance_name(account, region),
                            environment="member",
                            team="scale",
                        ),
                    }
                ],
            )
            bucket = member_bucket_name(account, region)
            if region == E1:
                s3.create_bucket(Bucket=bucket)
            else:
                s3.create_bucket(
                    Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region}
                )
    for client in (sts, s3, *ec2.values()):
        client.close()
    log.info(
        "member accounts seeded",
        extra={
            "accounts": len(accounts),
            "regions": list(regions),
            "seconds": round(time.perf_counter() - started, 3),
        },
    )
    return accounts


# An AMI id for instances in accounts without moto's public AMIs (moto does not check it
# unless MOTO_ENABLE_AMI_VALIDATION is set).
_UNCHECKED_IMAGE = "ami-0123456789abcdef0"
_LOAD_IMAGES = "MOTO_EC2_LOAD_DEFAULT_AMIS"
_load_images_lock = threading.Lock()


def _create_ec2_regions_without_images(account: str, regions: Iterable[str]) -> None:
    with _load_images_lock:
        before = os.environ.get(_LOAD_IMAGES)
        os.environ[_LOAD_IMAGES] = "false"
        try:
            for region in regions:
                ec2_backends[account][region]  # noqa: B018 - creating it is the point
        finally:
            if before is None:
                del os.environ[_LOAD_IMAGES]
            else:
                os.environ[_LOAD_IMAGES] = before


def _assume(
    session: botocore.session.Session, endpoint: str, central: Credentials, account: str
) -> Credentials:
    sts = _client(session, "sts", E1, endpoint, central)
    answer = sts.assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/{ADMIN_ROLE}", RoleSessionName=SEED_SESSION_NAME
    )["Credentials"]
    return Credentials(answer["AccessKeyId"], answer["SecretAccessKey"], answer["SessionToken"])
