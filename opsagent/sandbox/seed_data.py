"""The demo organization's data: its accounts, regions and roles, and one table per resource kind.

Everything the sandbox holds is written in these tables, one row per resource, so the counts
can be read off the page (``opsagent.sandbox.seed`` creates them in moto).
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
