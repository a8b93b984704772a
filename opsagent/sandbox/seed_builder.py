"""Build one account's rows in moto, with that account's own credentials (``AccountBuilder``)."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Iterable
from typing import Protocol, TypeVar

import botocore.session
from botocore.client import BaseClient
from botocore.config import Config
from botocore.credentials import Credentials

from opsagent.sandbox.seed_data import (
    BUCKETS,
    DB_INSTANCES,
    DB_SETTINGS,
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
    INSTANCES,
    IO1_IOPS,
    SECURITY_GROUPS,
    STACKS,
    VOLUMES,
    VPCS,
)


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


class _AccountRow(Protocol):
    @property
    def account(self) -> str: ...


_Row = TypeVar("_Row", bound=_AccountRow)


# Public AMI ids are the same in every account of a region: looked up once per region
# (and platform).
_PUBLIC_IMAGES: dict[str, str] = {}
_WINDOWS_IMAGES: dict[str, str] = {}


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
        self.volume_ids: dict[str, str] = {}
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

    @staticmethod
    def windows_image(ec2: BaseClient, region: str) -> str:
        """One of moto's public Windows AMIs (Platform "windows"), the same one every run."""
        if region not in _WINDOWS_IMAGES:
            images = ec2.describe_images(
                Owners=["amazon"], Filters=[{"Name": "platform", "Values": ["windows"]}]
            )["Images"]
            _WINDOWS_IMAGES[region] = sorted(image["ImageId"] for image in images)[0]
        return _WINDOWS_IMAGES[region]

    def instances(self) -> None:
        rows = _rows(INSTANCES, self.account)
        for row in rows:
            ec2 = self.client("ec2", row.region)
            image = (
                self.windows_image(ec2, row.region)
                if row.platform == "windows"
                else self._image_id(row.region)
            )
            tags = row.tags()
            instance = ec2.run_instances(
                ImageId=image,
                InstanceType=row.instance_type,
                MinCount=1,
                MaxCount=1,
                **(
                    {"TagSpecifications": [{"ResourceType": "instance", "Tags": _tags(**tags)}]}
                    if tags
                    else {}
                ),
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
                VolumeType=row.volume_type,
                Encrypted=row.encrypted,
                **({"Iops": IO1_IOPS} if row.volume_type == "io1" else {}),
                TagSpecifications=[{"ResourceType": "volume", "Tags": self.tags(row.name)}],
            )["VolumeId"]
            self.volume_ids[row.name] = volume_id
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
            if row.public_access_block:
                s3.put_public_access_block(
                    Bucket=row.name,
                    PublicAccessBlockConfiguration={
                        "BlockPublicAcls": True,
                        "IgnorePublicAcls": True,
                        "BlockPublicPolicy": True,
                        "RestrictPublicBuckets": True,
                    },
                )
            if row.encryption is not None:
                s3.put_bucket_encryption(
                    Bucket=row.name,
                    ServerSideEncryptionConfiguration={
                        "Rules": [
                            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": row.encryption}}
                        ]
                    },
                )

    def db_instances(self) -> None:
        rows = _rows(DB_INSTANCES, self.account)
        for row in rows:
            settings = DB_SETTINGS[row.identifier]
            self.client("rds", row.region).create_db_instance(
                DBInstanceIdentifier=row.identifier,
                DBInstanceClass=row.instance_class,
                Engine=row.engine,
                EngineVersion=settings.engine_version,
                AllocatedStorage=settings.storage_gb,
                PubliclyAccessible=settings.public,
                StorageEncrypted=settings.encrypted,
                MultiAZ=settings.multi_az,
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
