"""The demo organization: one central operations account and three member accounts.

Everything the sandbox holds is written in the tables below, one row per resource, so the
counts can be read off the page. Seeding goes through the running moto server with boto3
and each account's own credentials, exactly as a person would set the accounts up:

1. Bootstrap, the only step that touches moto's backends directly (there is no other way
   to give an account its first identity): the central IAM user ``opsagent`` with an access
   key, and in every account the role ``OpsAgentReadOnly`` (what the agent assumes) and
   ``OrganizationAccountAccessRole`` (what AWS Organizations creates in member accounts,
   used here to build them), both trusting the central account.
2. Per account, in parallel: assume OrganizationAccountAccessRole from the central user
   (through the sandbox's STS trust check) and create the rows of that account.

Resource ids (instance ids, volume ids, ...) are moto's and differ between runs; names,
tags, regions, states and counts do not. Tests read their ground truth from moto, never
from these tables.

The role permissions below are documentation: moto does not evaluate IAM permissions, only
the sandbox's STS middleware evaluates trust policies.
"""

from __future__ import annotations

import io
import json
import logging
import os
import threading
import time
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, TypeVar

import botocore.session
from botocore.client import BaseClient
from botocore.config import Config
from botocore.credentials import Credentials
from moto.ec2.models import ec2_backends
from moto.iam.models import iam_backends

from opsagent.registry.model import DEFAULT_ROLE_NAME
from opsagent.sandbox.identity import PARTITION

log = logging.getLogger(__name__)

# ----- the organization -----

CENTRAL = "111111111111"
PROD = "222222222222"
STAGING = "333333333333"
DEV = "444444444444"
MEMBER_ACCOUNTS = (PROD, STAGING, DEV)
ALL_ACCOUNTS = (CENTRAL, *MEMBER_ACCOUNTS)
ENVIRONMENTS = {CENTRAL: "operations", PROD: "production", STAGING: "staging", DEV: "development"}

CENTRAL_USER = "opsagent"
READ_ONLY_ROLE = DEFAULT_ROLE_NAME  # "OpsAgentReadOnly", the role the registry points at
ADMIN_ROLE = "OrganizationAccountAccessRole"
SEED_SESSION_NAME = "opsagent-sandbox-seed"

E1 = "us-east-1"
W2 = "us-west-2"
REGIONS = (E1, W2)


# ----- phase 1: the resources "how many X in each account" questions are about -----


class Instance(NamedTuple):
    account: str
    region: str
    name: str
    instance_type: str
    state: str  # running | stopped
    team: str


INSTANCES = [
    Instance(CENTRAL, E1, "ops-bastion", "t3.micro", "running", "platform"),
    Instance(PROD, E1, "prod-web-1", "m5.large", "running", "web"),
    Instance(PROD, E1, "prod-web-2", "m5.large", "running", "web"),
    Instance(PROD, E1, "prod-api-1", "c5.xlarge", "running", "api"),
    Instance(PROD, E1, "prod-batch-1", "r5.large", "stopped", "data"),
    Instance(PROD, W2, "prod-web-dr-1", "m5.large", "running", "web"),
    Instance(PROD, W2, "prod-worker-1", "c5.large", "stopped", "data"),
    Instance(STAGING, E1, "stg-web-1", "t3.medium", "running", "web"),
    Instance(STAGING, E1, "stg-api-1", "t3.medium", "running", "api"),
    Instance(STAGING, W2, "stg-batch-1", "t3.large", "stopped", "data"),
    Instance(DEV, E1, "dev-sandbox-1", "t3.small", "running", "platform"),
    Instance(DEV, E1, "dev-sandbox-2", "t3.small", "stopped", "platform"),
    Instance(DEV, W2, "dev-web-1", "t3.micro", "running", "web"),
    Instance(DEV, W2, "dev-ml-1", "g4dn.xlarge", "stopped", "data"),
]


class Bucket(NamedTuple):
    account: str
    region: str
    name: str  # S3 names are global: each ends with its account id
    team: str


BUCKETS = [
    Bucket(CENTRAL, E1, "opsagent-audit-logs-111111111111", "platform"),
    Bucket(PROD, E1, "prod-web-assets-222222222222", "web"),
    Bucket(PROD, E1, "prod-app-logs-222222222222", "platform"),
    Bucket(PROD, W2, "prod-backups-222222222222", "data"),
    Bucket(STAGING, E1, "stg-web-assets-333333333333", "web"),
    Bucket(STAGING, W2, "stg-test-artifacts-333333333333", "platform"),
    Bucket(DEV, E1, "dev-scratch-444444444444", "platform"),
    Bucket(DEV, E1, "dev-web-assets-444444444444", "web"),
    Bucket(DEV, W2, "dev-ml-datasets-444444444444", "data"),
]


class DbInstance(NamedTuple):
    account: str
    region: str
    identifier: str
    engine: str
    instance_class: str
    state: str  # available | stopped
    team: str


DB_INSTANCES = [
    DbInstance(PROD, E1, "prod-orders-db", "postgres", "db.r5.large", "available", "api"),
    DbInstance(PROD, E1, "prod-legacy-db", "mysql", "db.t3.medium", "stopped", "data"),
    DbInstance(PROD, W2, "prod-analytics-db", "mysql", "db.r5.xlarge", "available", "data"),
    DbInstance(STAGING, E1, "stg-orders-db", "postgres", "db.t3.medium", "available", "api"),
    DbInstance(STAGING, W2, "stg-analytics-db", "mysql", "db.t3.medium", "stopped", "data"),
    DbInstance(DEV, E1, "dev-orders-db", "postgres", "db.t3.micro", "available", "api"),
]


class Function(NamedTuple):
    account: str
    region: str
    name: str
    runtime: str
    memory_mb: int
    role: str  # an IAM_ROLES row of the same account
    team: str


FUNCTIONS = [
    Function(PROD, E1, "prod-order-processor", "python3.12", 512, "prod-lambda-exec", "api"),
    Function(PROD, E1, "prod-image-resizer", "nodejs20.x", 1024, "prod-lambda-exec", "web"),
    Function(PROD, W2, "prod-report-builder", "python3.12", 256, "prod-lambda-exec", "data"),
    Function(STAGING, E1, "stg-order-processor", "python3.12", 512, "stg-lambda-exec", "api"),
    Function(STAGING, W2, "stg-image-resizer", "nodejs20.x", 512, "stg-lambda-exec", "web"),
    Function(DEV, E1, "dev-order-processor", "python3.12", 256, "dev-lambda-exec", "api"),
    Function(DEV, E1, "dev-image-resizer", "nodejs20.x", 256, "dev-lambda-exec", "web"),
    Function(DEV, W2, "dev-experiment", "python3.12", 128, "dev-lambda-exec", "data"),
]


class EcsCluster(NamedTuple):
    account: str
    region: str
    name: str
    team: str


ECS_CLUSTERS = [
    EcsCluster(PROD, E1, "prod-web", "web"),
    EcsCluster(PROD, W2, "prod-batch", "data"),
    EcsCluster(STAGING, E1, "stg-web", "web"),
    EcsCluster(DEV, E1, "dev-apps", "platform"),
    EcsCluster(DEV, W2, "dev-ml", "data"),
]


class EksCluster(NamedTuple):
    account: str
    region: str
    name: str
    version: str
    role: str  # an IAM_ROLES row of the same account
    team: str


EKS_CLUSTERS = [
    EksCluster(PROD, E1, "prod-platform", "1.31", "prod-eks-cluster", "platform"),
    EksCluster(STAGING, W2, "stg-platform", "1.31", "stg-eks-cluster", "platform"),
    EksCluster(DEV, E1, "dev-sandbox", "1.32", "dev-eks-cluster", "platform"),
    EksCluster(DEV, W2, "dev-ml", "1.30", "dev-eks-cluster", "data"),
]


# ----- phase 2: the resources behind deeper questions -----


class IamRole(NamedTuple):
    account: str
    name: str
    service: str  # the AWS service the role trusts


IAM_ROLES = [
    IamRole(PROD, "prod-lambda-exec", "lambda.amazonaws.com"),
    IamRole(PROD, "prod-eks-cluster", "eks.amazonaws.com"),
    IamRole(PROD, "prod-eks-nodes", "ec2.amazonaws.com"),
    IamRole(PROD, "prod-ecs-task-exec", "ecs-tasks.amazonaws.com"),
    IamRole(STAGING, "stg-lambda-exec", "lambda.amazonaws.com"),
    IamRole(STAGING, "stg-eks-cluster", "eks.amazonaws.com"),
    IamRole(STAGING, "stg-eks-nodes", "ec2.amazonaws.com"),
    IamRole(STAGING, "stg-ecs-task-exec", "ecs-tasks.amazonaws.com"),
    IamRole(DEV, "dev-lambda-exec", "lambda.amazonaws.com"),
    IamRole(DEV, "dev-eks-cluster", "eks.amazonaws.com"),
    IamRole(DEV, "dev-eks-nodes", "ec2.amazonaws.com"),
    IamRole(DEV, "dev-ecs-task-exec", "ecs-tasks.amazonaws.com"),
    IamRole(DEV, "dev-ci-deployer", "codebuild.amazonaws.com"),
]


class EcsService(NamedTuple):
    account: str
    region: str
    cluster: str
    name: str
    desired_count: int
    execution_role: str


ECS_SERVICES = [
    EcsService(PROD, E1, "prod-web", "frontend", 3, "prod-ecs-task-exec"),
    EcsService(PROD, E1, "prod-web", "checkout", 2, "prod-ecs-task-exec"),
    EcsService(PROD, W2, "prod-batch", "nightly-etl", 1, "prod-ecs-task-exec"),
    EcsService(STAGING, E1, "stg-web", "frontend", 1, "stg-ecs-task-exec"),
    EcsService(STAGING, E1, "stg-web", "checkout", 1, "stg-ecs-task-exec"),
    EcsService(DEV, E1, "dev-apps", "frontend", 1, "dev-ecs-task-exec"),
]


class NodeGroup(NamedTuple):
    account: str
    region: str
    cluster: str
    name: str
    instance_type: str
    desired_size: int
    node_role: str


EKS_NODEGROUPS = [
    NodeGroup(PROD, E1, "prod-platform", "general", "m5.large", 3, "prod-eks-nodes"),
    NodeGroup(PROD, E1, "prod-platform", "memory", "r5.large", 2, "prod-eks-nodes"),
    NodeGroup(STAGING, W2, "stg-platform", "general", "t3.large", 2, "stg-eks-nodes"),
    NodeGroup(DEV, E1, "dev-sandbox", "general", "t3.medium", 1, "dev-eks-nodes"),
    NodeGroup(DEV, W2, "dev-ml", "gpu", "g4dn.xlarge", 1, "dev-eks-nodes"),
]


class Volume(NamedTuple):
    account: str
    region: str
    name: str
    size_gb: int
    attached_to: str | None  # an INSTANCES name of the same account and region, or unattached


VOLUMES = [
    Volume(PROD, E1, "prod-web-1-data", 100, "prod-web-1"),
    Volume(PROD, E1, "prod-api-1-data", 200, "prod-api-1"),
    Volume(PROD, E1, "prod-restore-test", 500, None),
    Volume(PROD, W2, "prod-dr-scratch", 50, None),
    Volume(STAGING, E1, "stg-web-1-data", 50, "stg-web-1"),
    Volume(STAGING, E1, "stg-orphan-1", 20, None),
    Volume(STAGING, W2, "stg-orphan-2", 20, None),
    Volume(DEV, E1, "dev-sandbox-1-data", 30, "dev-sandbox-1"),
    Volume(DEV, E1, "dev-old-root", 8, None),
    Volume(DEV, W2, "dev-ml-scratch", 1000, None),
]


class ElasticIp(NamedTuple):
    account: str
    region: str
    name: str
    associated_with: str | None  # an INSTANCES name of the same account and region


ELASTIC_IPS = [
    ElasticIp(PROD, E1, "prod-web-eip", "prod-web-1"),
    ElasticIp(PROD, E1, "prod-spare-eip", None),
    ElasticIp(STAGING, E1, "stg-web-eip", "stg-web-1"),
    ElasticIp(DEV, E1, "dev-sandbox-eip", "dev-sandbox-1"),
    ElasticIp(DEV, E1, "dev-unused-eip-1", None),
    ElasticIp(DEV, W2, "dev-unused-eip-2", None),
]


class Table(NamedTuple):
    account: str
    region: str
    name: str
    team: str


DYNAMODB_TABLES = [
    Table(PROD, E1, "prod-sessions", "web"),
    Table(PROD, E1, "prod-orders", "api"),
    Table(PROD, W2, "prod-events", "data"),
    Table(STAGING, E1, "stg-sessions", "web"),
    Table(DEV, E1, "dev-sessions", "web"),
    Table(DEV, W2, "dev-feature-flags", "platform"),
]


class Vpc(NamedTuple):
    account: str
    region: str
    name: str
    cidr: str


VPCS = [
    Vpc(PROD, E1, "prod-vpc", "10.10.0.0/16"),
    Vpc(PROD, W2, "prod-dr-vpc", "10.20.0.0/16"),
    Vpc(STAGING, E1, "stg-vpc", "10.30.0.0/16"),
    Vpc(DEV, E1, "dev-vpc", "10.40.0.0/16"),
    Vpc(DEV, W2, "dev-ml-vpc", "10.50.0.0/16"),
]


class SecurityGroup(NamedTuple):
    account: str
    region: str
    vpc: str  # a VPCS name of the same account and region
    name: str
    port: int
    source_cidr: str  # 0.0.0.0/0 means open to the world


SECURITY_GROUPS = [
    SecurityGroup(PROD, E1, "prod-vpc", "prod-web-public", 443, "0.0.0.0/0"),
    SecurityGroup(PROD, E1, "prod-vpc", "prod-db-internal", 5432, "10.10.0.0/16"),
    SecurityGroup(STAGING, E1, "stg-vpc", "stg-web-internal", 443, "10.0.0.0/8"),
    SecurityGroup(DEV, E1, "dev-vpc", "dev-ssh-open", 22, "0.0.0.0/0"),
    SecurityGroup(DEV, W2, "dev-ml-vpc", "dev-ml-notebooks", 8888, "10.50.0.0/16"),
]


class Stack(NamedTuple):
    account: str
    region: str
    name: str
    team: str


# Each stack holds one SNS topic named after the stack: real CloudFormation resources that
# do not change the counts of the resource types above.
STACKS = [
    Stack(PROD, E1, "prod-network", "platform"),
    Stack(PROD, E1, "prod-monitoring", "platform"),
    Stack(PROD, W2, "prod-dr-network", "platform"),
    Stack(STAGING, E1, "stg-network", "platform"),
    Stack(DEV, E1, "dev-network", "platform"),
    Stack(DEV, W2, "dev-ml-pipeline", "data"),
]


# ----- seeding -----


@dataclass(frozen=True)
class SeedResult:
    """What seeding made that callers need: the central identity the agent runs as."""

    central_credentials: Credentials
    # Seconds spent per account, for the start-up figures.
    timings: dict[str, float] = field(default_factory=dict)


def trust_policy(*, principal: str, external_id: str | None = None) -> str:
    """A trust policy letting one AWS principal assume the role, optionally with an ExternalId."""
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"AWS": principal},
        "Action": "sts:AssumeRole",
    }
    if external_id is not None:
        statement["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


_READ_ONLY_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    f"{service}:{verb}*"
                    for service in (
                        "ec2",
                        "rds",
                        "lambda",
                        "ecs",
                        "eks",
                        "dynamodb",
                        "cloudformation",
                        "iam",
                        "s3",
                    )
                    for verb in ("Describe", "List", "Get")
                ],
                "Resource": "*",
            }
        ],
    }
)
_ADMIN_POLICY = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
)


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
        AccountBuilder(session, endpoint, account, creds).build()
        timings[account] = round(time.perf_counter() - t0, 3)
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


def _client(
    session: botocore.session.Session,
    service: str,
    region: str,
    endpoint: str,
    creds: Credentials,
) -> BaseClient:
    return session.create_client(
        service,
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id=creds.access_key,
        aws_secret_access_key=creds.secret_key,
        aws_session_token=creds.token,
        config=Config(
            retries={"max_attempts": 2, "mode": "standard"},
            s3={"addressing_style": "path"},
        ),
    )


def _assume(
    session: botocore.session.Session, endpoint: str, central: Credentials, account: str
) -> Credentials:
    sts = _client(session, "sts", E1, endpoint, central)
    answer = sts.assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/{ADMIN_ROLE}", RoleSessionName=SEED_SESSION_NAME
    )["Credentials"]
    return Credentials(answer["AccessKeyId"], answer["SecretAccessKey"], answer["SessionToken"])


class _AccountRow(Protocol):
    @property
    def account(self) -> str: ...


_Row = TypeVar("_Row", bound=_AccountRow)


# Public AMI ids are the same in every account of a region: looked up once per region.
_PUBLIC_IMAGES: dict[str, str] = {}


def _tags(**tags: str) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _rows(table: Iterable[_Row], account: str) -> list[_Row]:
    return [row for row in table if row.account == account]


class AccountBuilder:
    """Creates the rows of one account, in dependency order, with that account's credentials."""

    def __init__(
        self,
        session: botocore.session.Session,
        endpoint: str,
        account: str,
        creds: Credentials,
    ) -> None:
        self.account = account
        self.environment = ENVIRONMENTS[account]
        self._clients: dict[tuple[str, str], BaseClient] = {}
        self._new_client: Callable[[str, str], BaseClient] = lambda service, region: _client(
            session, service, region, endpoint, creds
        )
        self.role_arns: dict[str, str] = {}
        self.instance_ids: dict[str, str] = {}
        self.instance_zones: dict[str, str] = {}
        self.vpc_ids: dict[str, str] = {}
        self.subnet_ids: dict[str, list[str]] = {}

    def client(self, service: str, region: str = E1) -> BaseClient:
        key = (service, region)
        if key not in self._clients:
            self._clients[key] = self._new_client(service, region)
        return self._clients[key]

    def build(self) -> None:
        self.roles()
        self.vpcs()
        self.instances()
        self.volumes()
        self.elastic_ips()
        self.buckets()
        self.db_instances()
        self.functions()
        self.ecs()
        self.eks()
        self.tables()
        self.stacks()

    def tags(self, name: str, team: str | None = None) -> list[dict[str, str]]:
        tags = {"Name": name, "environment": self.environment}
        if team is not None:
            tags["team"] = team
        return _tags(**tags)

    def roles(self) -> None:
        iam = self.client("iam")
        for row in _rows(IAM_ROLES, self.account):
            document = json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": row.service},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            )
            arn = iam.create_role(
                RoleName=row.name,
                AssumeRolePolicyDocument=document,
                Tags=_tags(environment=self.environment),
            )["Role"]["Arn"]
            self.role_arns[row.name] = arn

    def vpcs(self) -> None:
        for row in _rows(VPCS, self.account):
            ec2 = self.client("ec2", row.region)
            vpc_id = ec2.create_vpc(
                CidrBlock=row.cidr,
                TagSpecifications=[{"ResourceType": "vpc", "Tags": self.tags(row.name)}],
            )["Vpc"]["VpcId"]
            self.vpc_ids[row.name] = vpc_id
        for group in _rows(SECURITY_GROUPS, self.account):
            ec2 = self.client("ec2", group.region)
            group_id = ec2.create_security_group(
                GroupName=group.name,
                Description=f"{group.name} (port {group.port})",
                VpcId=self.vpc_ids[group.vpc],
                TagSpecifications=[
                    {"ResourceType": "security-group", "Tags": self.tags(group.name)}
                ],
            )["GroupId"]
            ec2.authorize_security_group_ingress(
                GroupId=group_id,
                IpPermissions=[
                    {
                        "IpProtocol": "tcp",
                        "FromPort": group.port,
                        "ToPort": group.port,
                        "IpRanges": [{"CidrIp": group.source_cidr}],
                    }
                ],
            )

    def _image_id(self, region: str) -> str:
        return self.public_image(self.client("ec2", region), region)

    @staticmethod
    def public_image(ec2: BaseClient, region: str) -> str:
        """moto ships real public AMI ids per region; the same Amazon Linux one every run."""
        if region not in _PUBLIC_IMAGES:
            images = ec2.describe_images(
                Owners=["amazon"], Filters=[{"Name": "name", "Values": ["amzn2-ami-hvm-*"]}]
            )["Images"]
            _PUBLIC_IMAGES[region] = sorted(image["ImageId"] for image in images)[0]
        return _PUBLIC_IMAGES[region]

    def instances(self) -> None:
        rows = _rows(INSTANCES, self.account)
        images = {region: self._image_id(region) for region in {r.region for r in rows}}
        for row in rows:
            ec2 = self.client("ec2", row.region)
            instance = ec2.run_instances(
                ImageId=images[row.region],
                InstanceType=row.instance_type,
                MinCount=1,
                MaxCount=1,
                TagSpecifications=[
                    {"ResourceType": "instance", "Tags": self.tags(row.name, row.team)}
                ],
            )["Instances"][0]
            self.instance_ids[row.name] = instance["InstanceId"]
            self.instance_zones[row.name] = instance["Placement"]["AvailabilityZone"]
        for row in rows:
            if row.state == "stopped":
                self.client("ec2", row.region).stop_instances(
                    InstanceIds=[self.instance_ids[row.name]]
                )

    def volumes(self) -> None:
        for row in _rows(VOLUMES, self.account):
            ec2 = self.client("ec2", row.region)
            zone = self.instance_zones[row.attached_to] if row.attached_to else f"{row.region}a"
            volume_id = ec2.create_volume(
                AvailabilityZone=zone,
                Size=row.size_gb,
                VolumeType="gp3",
                TagSpecifications=[{"ResourceType": "volume", "Tags": self.tags(row.name)}],
            )["VolumeId"]
            if row.attached_to:
                ec2.attach_volume(
                    VolumeId=volume_id,
                    InstanceId=self.instance_ids[row.attached_to],
                    Device="/dev/sdf",
                )

    def elastic_ips(self) -> None:
        for row in _rows(ELASTIC_IPS, self.account):
            ec2 = self.client("ec2", row.region)
            allocation = ec2.allocate_address(
                Domain="vpc",
                TagSpecifications=[{"ResourceType": "elastic-ip", "Tags": self.tags(row.name)}],
            )["AllocationId"]
            if row.associated_with:
                ec2.associate_address(
                    AllocationId=allocation, InstanceId=self.instance_ids[row.associated_with]
                )

    def buckets(self) -> None:
        for row in _rows(BUCKETS, self.account):
            s3 = self.client("s3", row.region)
            if row.region == E1:
                # us-east-1 is the one region that must not be named as a location constraint.
                s3.create_bucket(Bucket=row.name)
            else:
                s3.create_bucket(
                    Bucket=row.name, CreateBucketConfiguration={"LocationConstraint": row.region}
                )
            s3.put_bucket_tagging(
                Bucket=row.name,
                Tagging={"TagSet": _tags(team=row.team, environment=self.environment)},
            )

    def db_instances(self) -> None:
        rows = _rows(DB_INSTANCES, self.account)
        for row in rows:
            self.client("rds", row.region).create_db_instance(
                DBInstanceIdentifier=row.identifier,
                DBInstanceClass=row.instance_class,
                Engine=row.engine,
                AllocatedStorage=50,
                MasterUsername="opsadmin",
                MasterUserPassword="sandbox-only-password",
                Tags=_tags(team=row.team, environment=self.environment),
            )
        for row in rows:
            if row.state == "stopped":
                self.client("rds", row.region).stop_db_instance(DBInstanceIdentifier=row.identifier)

    def functions(self) -> None:
        for row in _rows(FUNCTIONS, self.account):
            handler, code = _function_code(row.runtime)
            self.client("lambda", row.region).create_function(
                FunctionName=row.name,
                Runtime=row.runtime,
                Role=self.role_arns[row.role],
                Handler=handler,
                Code={"ZipFile": code},
                MemorySize=row.memory_mb,
                Timeout=30,
                Tags={"team": row.team, "environment": self.environment},
            )

    def ecs(self) -> None:
        for row in _rows(ECS_CLUSTERS, self.account):
            self.client("ecs", row.region).create_cluster(
                clusterName=row.name,
                tags=[
                    {"key": "team", "value": row.team},
                    {"key": "environment", "value": self.environment},
                ],
            )
        for service in _rows(ECS_SERVICES, self.account):
            ecs = self.client("ecs", service.region)
            family = f"{service.cluster}-{service.name}"
            ecs.register_task_definition(
                family=family,
                executionRoleArn=self.role_arns[service.execution_role],
                containerDefinitions=[
                    {
                        "name": service.name,
                        "image": "public.ecr.aws/nginx/nginx:1.27",
                        "memory": 512,
                        "essential": True,
                    }
                ],
            )
            ecs.create_service(
                cluster=service.cluster,
                serviceName=service.name,
                taskDefinition=family,
                desiredCount=service.desired_count,
            )

    def _default_subnets(self, region: str) -> list[str]:
        if region not in self.subnet_ids:
            subnets = self.client("ec2", region).describe_subnets(
                Filters=[{"Name": "default-for-az", "Values": ["true"]}]
            )["Subnets"]
            self.subnet_ids[region] = sorted(s["SubnetId"] for s in subnets)[:2]
        return self.subnet_ids[region]

    def eks(self) -> None:
        for row in _rows(EKS_CLUSTERS, self.account):
            self.client("eks", row.region).create_cluster(
                name=row.name,
                version=row.version,
                roleArn=self.role_arns[row.role],
                resourcesVpcConfig={"subnetIds": self._default_subnets(row.region)},
                tags={"team": row.team, "environment": self.environment},
            )
        for group in _rows(EKS_NODEGROUPS, self.account):
            self.client("eks", group.region).create_nodegroup(
                clusterName=group.cluster,
                nodegroupName=group.name,
                nodeRole=self.role_arns[group.node_role],
                subnets=self._default_subnets(group.region),
                instanceTypes=[group.instance_type],
                scalingConfig={
                    "minSize": 1,
                    "maxSize": max(group.desired_size * 2, 2),
                    "desiredSize": group.desired_size,
                },
                tags={"environment": self.environment},
            )

    def tables(self) -> None:
        for row in _rows(DYNAMODB_TABLES, self.account):
            self.client("dynamodb", row.region).create_table(
                TableName=row.name,
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
                Tags=_tags(team=row.team, environment=self.environment),
            )

    def stacks(self) -> None:
        for row in _rows(STACKS, self.account):
            template = {
                "AWSTemplateFormatVersion": "2010-09-09",
                "Description": f"{row.name} ({self.environment})",
                "Resources": {
                    "Topic": {
                        "Type": "AWS::SNS::Topic",
                        "Properties": {"TopicName": f"{row.name}-events"},
                    }
                },
            }
            self.client("cloudformation", row.region).create_stack(
                StackName=row.name,
                TemplateBody=json.dumps(template),
                Tags=_tags(team=row.team, environment=self.environment),
            )


def _function_code(runtime: str) -> tuple[str, bytes]:
    """A handler name and a small deployment package for the runtime, identical on every run."""
    if runtime.startswith("python"):
        name, source = "handler.py", "def handler(event, context):\n    return {'ok': True}\n"
        handler = "handler.handler"
    else:
        name, source = "index.js", "exports.handler = async () => ({ ok: true });\n"
        handler = "index.handler"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        # A fixed timestamp keeps the package (and so its CodeSha256) the same every run.
        archive.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), source)
    return handler, buffer.getvalue()
