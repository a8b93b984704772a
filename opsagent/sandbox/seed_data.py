"""The demo organization's data: its accounts, regions and roles, and one table per resource kind.

Everything the sandbox holds is written in these tables, one row per resource, so the counts
can be read off the page (``opsagent.sandbox.seed`` creates them in moto).

Ages (``days_ago``) count back from the moment the sandbox is seeded, so "launched in the
last 7 days" or "older than 90 days" has the same answer on any day. They keep clear of the
usual cut-offs (7, 30, 60, 90, 365 days), so an answer does not flip while a sandbox runs.
Spread, per type: a few within the last week, some 10 to 60 days old, some older than 90
days, one or two older than a year.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from opsagent.registry.model import DEFAULT_ROLE_NAME

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
    # Its Name tag; for an untagged row (``tagged=False``) only how this table names it.
    name: str
    instance_type: str
    state: str  # running | stopped
    team: str | None  # None: no team tag
    days_ago: int  # launched this many days before the sandbox was seeded
    platform: str = "linux"  # linux | windows (launched from one of moto's Windows AMIs)
    tagged: bool = True  # False: no tags at all, not even Name or environment

    def tags(self) -> dict[str, str]:
        """Every tag it carries: Name, environment, team and its INSTANCE_TAGS; none if
        untagged."""
        if not self.tagged:
            return {}
        tags = {"Name": self.name, "environment": ENVIRONMENTS[self.account]}
        if self.team is not None:
            tags["team"] = self.team
        return {**tags, **INSTANCE_TAGS.get(self.name, {})}


INSTANCES = [
    Instance(CENTRAL, E1, "ops-bastion", "t3.micro", "running", "platform", 420),
    Instance(PROD, E1, "prod-web-1", "m5.large", "running", "web", 120),
    Instance(PROD, E1, "prod-web-2", "m5.large", "running", "web", 45),
    Instance(PROD, E1, "prod-api-1", "c5.xlarge", "running", "api", 200),
    Instance(PROD, E1, "prod-batch-1", "r5.large", "stopped", "data", 540, "windows"),
    Instance(PROD, W2, "prod-web-dr-1", "m5.large", "running", "web", 3),
    Instance(PROD, W2, "prod-worker-1", "c5.large", "stopped", "data", 75),
    Instance(STAGING, E1, "stg-web-1", "t3.medium", "running", "web", 2),
    Instance(STAGING, E1, "stg-api-1", "t3.medium", "running", None, 12, "windows"),
    Instance(STAGING, W2, "stg-batch-1", "t3.large", "stopped", None, 97, tagged=False),
    Instance(DEV, E1, "dev-sandbox-1", "t3.small", "running", None, 5),
    Instance(DEV, E1, "dev-sandbox-2", "t3.small", "stopped", None, 33, tagged=False),
    Instance(DEV, W2, "dev-web-1", "t3.micro", "running", "web", 1),
    Instance(DEV, W2, "dev-ml-1", "g4dn.xlarge", "stopped", "data", 58),
]

# Instances' tags beyond Name, environment and team, as real accounts have them: owners and
# cost centers on some, an "env" tag (another team's spelling of environment) on others.
INSTANCE_TAGS: dict[str, dict[str, str]] = {
    "ops-bastion": {"owner": "ops-team"},
    "prod-web-1": {"owner": "alice", "cost-center": "cc-1001"},
    "prod-web-2": {"cost-center": "cc-1001"},
    "prod-api-1": {"owner": "bob", "cost-center": "cc-2002"},
    "prod-web-dr-1": {"owner": "alice"},
    "prod-worker-1": {"cost-center": "cc-3003"},
    "stg-web-1": {"env": "stg"},
    "stg-api-1": {"owner": "carol"},
    "dev-sandbox-1": {"env": "dev"},
    "dev-web-1": {"env": "dev"},
    "dev-ml-1": {"owner": "dave"},
}


class Bucket(NamedTuple):
    account: str
    region: str
    name: str  # S3 names are global: each ends with its account id
    team: str
    days_ago: int  # created this many days before the sandbox was seeded
    public_access_block: bool  # a bucket-level public access block, all four settings on
    encryption: str | None  # its default encryption (aws:kms, AES256); None: no configuration


BUCKETS = [
    Bucket(CENTRAL, E1, "opsagent-audit-logs-111111111111", "platform", 800, True, "aws:kms"),
    Bucket(PROD, E1, "prod-web-assets-222222222222", "web", 400, False, "AES256"),
    Bucket(PROD, E1, "prod-app-logs-222222222222", "platform", 300, True, "aws:kms"),
    Bucket(PROD, W2, "prod-backups-222222222222", "data", 500, True, "aws:kms"),
    Bucket(STAGING, E1, "stg-web-assets-333333333333", "web", 120, False, None),
    Bucket(STAGING, W2, "stg-test-artifacts-333333333333", "platform", 6, True, "AES256"),
    Bucket(DEV, E1, "dev-scratch-444444444444", "platform", 2, False, None),
    Bucket(DEV, E1, "dev-web-assets-444444444444", "web", 45, False, "AES256"),
    Bucket(DEV, W2, "dev-ml-datasets-444444444444", "data", 75, True, None),
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


class DbSettings(NamedTuple):
    """What else each DB_INSTANCES row is created with (by identifier)."""

    engine_version: str
    storage_gb: int
    days_ago: int  # created this many days before the sandbox was seeded
    public: bool = False  # PubliclyAccessible
    encrypted: bool = True  # StorageEncrypted
    multi_az: bool = False


DB_SETTINGS = {
    "prod-orders-db": DbSettings("16.4", 500, 400, multi_az=True),
    "prod-legacy-db": DbSettings("5.7.44", 100, 1200, public=True, encrypted=False),
    "prod-analytics-db": DbSettings("8.0.39", 1000, 150, multi_az=True),
    "stg-orders-db": DbSettings("14.9", 100, 50),
    "stg-analytics-db": DbSettings("8.0.35", 200, 20, encrypted=False),
    "dev-orders-db": DbSettings("14.12", 20, 4, public=True, encrypted=False),
}


class Function(NamedTuple):
    account: str
    region: str
    name: str
    runtime: str
    memory_mb: int
    role: str  # an IAM_ROLES row of the same account
    team: str
    days_ago: int  # last modified this many days before the sandbox was seeded


# Runtimes Lambda has deprecated (python3.8, python3.9, nodejs16.x, nodejs20.x since
# 2026-04-30) and current ones (python3.12, python3.13, nodejs22.x until 2027-04-30): the
# lifecycle table (graph/catalogue/lifecycle.toml) says which is which on the day asked.
FUNCTIONS = [
    Function(PROD, E1, "prod-order-processor", "python3.12", 512, "prod-lambda-exec", "api", 3),
    Function(PROD, E1, "prod-image-resizer", "nodejs16.x", 1024, "prod-lambda-exec", "web", 400),
    Function(PROD, W2, "prod-report-builder", "python3.8", 2048, "prod-lambda-exec", "data", 220),
    Function(STAGING, E1, "stg-order-processor", "python3.12", 512, "stg-lambda-exec", "api", 45),
    Function(STAGING, W2, "stg-image-resizer", "nodejs20.x", 1536, "stg-lambda-exec", "web", 75),
    Function(DEV, E1, "dev-order-processor", "python3.13", 256, "dev-lambda-exec", "api", 1),
    Function(DEV, E1, "dev-image-resizer", "nodejs22.x", 3008, "dev-lambda-exec", "web", 12),
    Function(DEV, W2, "dev-experiment", "python3.9", 128, "dev-lambda-exec", "data", 130),
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
    days_ago: int  # created this many days before the sandbox was seeded


# Versions whose standard support has ended (1.29, 1.32) and current ones (1.35, 1.36 until
# 2027): the lifecycle table (graph/catalogue/lifecycle.toml) says which is which on the day
# asked.
EKS_CLUSTERS = [
    EksCluster(PROD, E1, "prod-platform", "1.35", "prod-eks-cluster", "platform", 180),
    EksCluster(STAGING, W2, "stg-platform", "1.32", "stg-eks-cluster", "platform", 40),
    EksCluster(DEV, E1, "dev-sandbox", "1.36", "dev-eks-cluster", "platform", 6),
    EksCluster(DEV, W2, "dev-ml", "1.29", "dev-eks-cluster", "data", 500),
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
    volume_type: str  # gp2 | gp3 | io1 (created with IO1_IOPS) | st1 (125 GiB at least)
    encrypted: bool
    days_ago: int  # created this many days before the sandbox was seeded


IO1_IOPS = 3000

# Besides these, moto gives every instance a root volume (8 GiB gp2, unencrypted, no tags),
# as old as its instance.
VOLUMES = [
    Volume(PROD, E1, "prod-web-1-data", 100, "prod-web-1", "gp3", True, 120),
    Volume(PROD, E1, "prod-api-1-data", 200, "prod-api-1", "io1", True, 200),
    Volume(PROD, E1, "prod-restore-test", 500, None, "gp2", False, 400),
    Volume(PROD, W2, "prod-dr-scratch", 50, None, "gp3", True, 3),
    Volume(STAGING, E1, "stg-web-1-data", 50, "stg-web-1", "gp3", True, 2),
    Volume(STAGING, E1, "stg-orphan-1", 20, None, "gp2", False, 150),
    Volume(STAGING, W2, "stg-orphan-2", 20, None, "gp2", False, 97),
    Volume(DEV, E1, "dev-sandbox-1-data", 30, "dev-sandbox-1", "gp3", False, 5),
    Volume(DEV, E1, "dev-old-root", 8, None, "gp2", False, 700),
    Volume(DEV, W2, "dev-ml-scratch", 2000, None, "st1", True, 58),
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


# ----- the roles' policies (documentation: moto evaluates no IAM permission) -----


def trust_policy(*, principal: str, external_id: str | None = None) -> str:
    """A trust policy letting one AWS principal assume the role, optionally with an ExternalId,
    naming itself (SourceIdentity) and tagging its session, as the member role template does."""
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"AWS": principal},
        "Action": ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"],
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
