"""How each resource type is read from one account and region, and normalized to rows.

Each fetcher issues read-only AWS CLI commands through the account's MCP session (the
`call` it is given, which passes the read-only guard) and turns the AWS JSON into
`Resource` rows. Filtering by state, tag, name and condition happens afterwards, in one
place (`matches`), so every resource type filters the same way.
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from opsagent.access import AwsCommandError
from opsagent.graph.state import Resource, ResourceQuery
from opsagent.registry import Account

# Runs one CLI command in the account and returns the parsed AWS response.
CallAws = Callable[[str], Awaitable[dict[str, Any]]]
Fetcher = Callable[[CallAws, Account, str, ResourceQuery], Awaitable[list[Resource]]]

# Global services are read once per account, from this region; rows that belong to no
# region (IAM roles) say GLOBAL.
GLOBAL_REGION = "us-east-1"
GLOBAL = "global"


@dataclass(frozen=True)
class ResourceKind:
    fetch: Fetcher
    is_global: bool = False  # one call per account, not per region


KINDS: dict[str, ResourceKind] = {}


def kind(resource_type: str, *, is_global: bool = False):
    def register(fetch: Fetcher) -> Fetcher:
        KINDS[resource_type] = ResourceKind(fetch=fetch, is_global=is_global)
        return fetch

    return register


def command(*parts: str, region: str) -> str:
    return " ".join(["aws", *(shlex.quote(p) for p in parts), "--region", region])


def tag_dict(tags: Any) -> dict[str, str]:
    """AWS spells tags three ways: [{Key, Value}], [{key, value}] and {k: v}."""
    if isinstance(tags, dict):
        return {str(k): str(v) for k, v in tags.items()}
    result: dict[str, str] = {}
    for tag in tags or []:
        key = tag.get("Key", tag.get("key"))
        if key is not None:
            result[str(key)] = str(tag.get("Value", tag.get("value", "")))
    return result


def row(account: Account, region: str, resource_type: str, *, tags: Any = None,
        **fields: Any) -> Resource:
    """A normalized row; tags in any AWS spelling, and the Name tag as the default name."""
    tags = tag_dict(tags)
    fields.setdefault("name", tags.get("Name"))
    return Resource(
        account_id=account.id,
        account_alias=account.alias,
        region=region,
        resource_type=resource_type,
        tags=tags,
        **fields,
    )


def matches(resource: Resource, query: ResourceQuery) -> bool:
    """Whether a row satisfies the query's filters (all of them)."""
    if query.states and (resource.state or "").lower() not in {s.lower() for s in query.states}:
        return False
    for key, value in query.tags.items():
        found = {k.lower(): v for k, v in resource.tags.items()}.get(key.lower())
        if found is None or found.lower() != value.lower():
            return False
    if query.name_contains:
        needle = query.name_contains.lower()
        if needle not in (resource.name or "").lower() and needle not in resource.id.lower():
            return False
    if query.ids and resource.id not in query.ids and (resource.name or "") not in query.ids:
        return False
    for condition in query.conditions:
        if not resource.details.get("conditions", {}).get(condition, False):
            return False
    return True


# ----- compute -----


@kind("ec2:instance")
async def ec2_instances(call: CallAws, account: Account, region: str, q: ResourceQuery):
    data = await call(command("ec2", "describe-instances", region=region))
    rows = []
    for reservation in data.get("Reservations", []):
        for inst in reservation.get("Instances", []):
            rows.append(row(
                account, region, "ec2:instance", id=inst["InstanceId"],
                state=inst.get("State", {}).get("Name"), tags=inst.get("Tags"),
                details={
                    "instance_type": inst.get("InstanceType"),
                    "availability_zone": inst.get("Placement", {}).get("AvailabilityZone"),
                    "private_ip": inst.get("PrivateIpAddress"),
                    "launch_time": inst.get("LaunchTime"),
                    "image_id": inst.get("ImageId"),
                },
            ))
    return rows


@kind("lambda:function")
async def lambda_functions(call: CallAws, account: Account, region: str, q: ResourceQuery):
    data = await call(command("lambda", "list-functions", region=region))
    functions = data.get("Functions", [])

    async def tags_of(fn: dict) -> dict[str, str]:
        # list-functions carries no tags; fetch them only when a filter or describe needs them.
        if not (q.tags or q.intent == "describe"):
            return {}
        found = await call(command("lambda", "list-tags", "--resource", fn["FunctionArn"],
                                   region=region))
        return tag_dict(found.get("Tags"))

    all_tags = await asyncio.gather(*(tags_of(fn) for fn in functions))
    return [
        row(account, region, "lambda:function",
            id=fn["FunctionName"], name=fn["FunctionName"],
            state=(fn.get("State") or "active").lower(), tags=tags,
            details={"runtime": fn.get("Runtime"), "memory_mb": fn.get("MemorySize"),
                     "last_modified": fn.get("LastModified"), "arn": fn.get("FunctionArn")})
        for fn, tags in zip(functions, all_tags, strict=True)
    ]


# ----- storage and databases -----


@kind("s3:bucket", is_global=True)
async def s3_buckets(call: CallAws, account: Account, region: str, q: ResourceQuery):
    data = await call(command("s3api", "list-buckets", region=region))

    async def one(bucket: dict) -> Resource:
        name = bucket["Name"]
        bucket_region = bucket.get("BucketRegion")
        if not bucket_region:
            location = await call(command("s3api", "get-bucket-location", "--bucket", name,
                                          region=region))
            # A null LocationConstraint means us-east-1, as S3 has always said.
            bucket_region = location.get("LocationConstraint") or "us-east-1"
        tags: dict[str, str] = {}
        if q.tags or q.intent == "describe":
            try:
                tags = tag_dict((await call(command("s3api", "get-bucket-tagging", "--bucket",
                                                    name, region=region))).get("TagSet"))
            except AwsCommandError as exc:  # NoSuchTagSet is how S3 says "no tags"
                if exc.error_code != "NoSuchTagSet":
                    raise
        return row(account, bucket_region, "s3:bucket", id=name, name=name, state=None,
                   tags=tags, details={"created": bucket.get("CreationDate")})

    return list(await asyncio.gather(*(one(b) for b in data.get("Buckets", []))))


@kind("rds:db-instance")
async def rds_instances(call: CallAws, account: Account, region: str, q: ResourceQuery):
    data = await call(command("rds", "describe-db-instances", region=region))
    return [
        row(account, region, "rds:db-instance",
            id=db["DBInstanceIdentifier"], name=db["DBInstanceIdentifier"],
            state=(db.get("DBInstanceStatus") or "").lower() or None,
            tags=db.get("TagList"),
            details={"engine": db.get("Engine"), "engine_version": db.get("EngineVersion"),
                     "class": db.get("DBInstanceClass"), "multi_az": db.get("MultiAZ"),
                     "storage_gb": db.get("AllocatedStorage")})
        for db in data.get("DBInstances", [])
    ]


@kind("ec2:volume")
async def ebs_volumes(call: CallAws, account: Account, region: str, q: ResourceQuery):
    data = await call(command("ec2", "describe-volumes", region=region))
    rows = []
    for vol in data.get("Volumes", []):
        attachments = [a.get("InstanceId") for a in vol.get("Attachments", [])]
        rows.append(row(
            account, region, "ec2:volume", id=vol["VolumeId"],
            state=vol.get("State"), tags=vol.get("Tags"),
            details={"size_gb": vol.get("Size"), "volume_type": vol.get("VolumeType"),
                     "attached_to": attachments,
                     "conditions": {"unattached": not attachments}},
        ))
    return rows


@kind("dynamodb:table")
async def dynamodb_tables(call: CallAws, account: Account, region: str, q: ResourceQuery):
    names = (await call(command("dynamodb", "list-tables", region=region))).get("TableNames", [])

    async def one(name: str) -> Resource:
        table = (await call(command("dynamodb", "describe-table", "--table-name", name,
                                    region=region))).get("Table", {})
        tags: dict[str, str] = {}
        if q.tags or q.intent == "describe":
            tags = tag_dict((await call(command(
                "dynamodb", "list-tags-of-resource", "--resource-arn", table["TableArn"],
                region=region))).get("Tags"))
        return row(account, region, "dynamodb:table", id=name, name=name, tags=tags,
                   state=(table.get("TableStatus") or "").lower() or None,
                   details={"items": table.get("ItemCount"),
                            "billing": table.get("BillingModeSummary", {}).get("BillingMode")})

    return list(await asyncio.gather(*(one(n) for n in names)))


# ----- containers -----


async def _ecs_cluster_arns(call: CallAws, region: str) -> list[str]:
    return (await call(command("ecs", "list-clusters", region=region))).get("clusterArns", [])


@kind("ecs:cluster")
async def ecs_clusters(call: CallAws, account: Account, region: str, q: ResourceQuery):
    arns = await _ecs_cluster_arns(call, region)
    if not arns:
        return []
    data = await call(command("ecs", "describe-clusters", "--clusters", *arns, "--include",
                              "TAGS", region=region))
    return [
        row(account, region, "ecs:cluster", id=c["clusterName"], name=c["clusterName"],
            state=(c.get("status") or "").lower() or None, tags=c.get("tags"),
            details={"services": c.get("activeServicesCount"),
                     "running_tasks": c.get("runningTasksCount"), "arn": c.get("clusterArn")})
        for c in data.get("clusters", [])
    ]


@kind("ecs:service")
async def ecs_services(call: CallAws, account: Account, region: str, q: ResourceQuery):
    async def in_cluster(cluster_arn: str) -> list[Resource]:
        arns = (await call(command("ecs", "list-services", "--cluster", cluster_arn,
                                   region=region))).get("serviceArns", [])
        if not arns:
            return []
        data = await call(command("ecs", "describe-services", "--cluster", cluster_arn,
                                  "--services", *arns, "--include", "TAGS", region=region))
        cluster = cluster_arn.rsplit("/", 1)[-1]
        return [
            row(account, region, "ecs:service", id=s["serviceName"], name=s["serviceName"],
                state=(s.get("status") or "").lower() or None, tags=s.get("tags"),
                details={"cluster": cluster, "desired": s.get("desiredCount"),
                         "running": s.get("runningCount"), "launch_type": s.get("launchType")})
            for s in data.get("services", [])
        ]

    groups = await asyncio.gather(*(in_cluster(a) for a in await _ecs_cluster_arns(call, region)))
    return [r for group in groups for r in group]


async def _eks_cluster_names(call: CallAws, region: str) -> list[str]:
    return (await call(command("eks", "list-clusters", region=region))).get("clusters", [])


@kind("eks:cluster")
async def eks_clusters(call: CallAws, account: Account, region: str, q: ResourceQuery):
    async def one(name: str) -> Resource:
        c = (await call(command("eks", "describe-cluster", "--name", name,
                                region=region))).get("cluster", {})
        return row(account, region, "eks:cluster", id=name, name=name,
                   state=(c.get("status") or "").lower() or None, tags=c.get("tags"),
                   details={"version": c.get("version"), "endpoint": c.get("endpoint"),
                            "platform_version": c.get("platformVersion"),
                            "created": c.get("createdAt"), "arn": c.get("arn")})

    return list(await asyncio.gather(*(one(n) for n in await _eks_cluster_names(call, region))))


@kind("eks:nodegroup")
async def eks_nodegroups(call: CallAws, account: Account, region: str, q: ResourceQuery):
    async def in_cluster(cluster: str) -> list[Resource]:
        names = (await call(command("eks", "list-nodegroups", "--cluster-name", cluster,
                                    region=region))).get("nodegroups", [])

        async def one(name: str) -> Resource:
            ng = (await call(command("eks", "describe-nodegroup", "--cluster-name", cluster,
                                     "--nodegroup-name", name, region=region))).get("nodegroup", {})
            scaling = ng.get("scalingConfig", {})
            return row(account, region, "eks:nodegroup", id=name, name=name,
                       state=(ng.get("status") or "").lower() or None,
                       tags=ng.get("tags"),
                       details={"cluster": cluster, "instance_types": ng.get("instanceTypes"),
                                "desired": scaling.get("desiredSize"),
                                "min": scaling.get("minSize"), "max": scaling.get("maxSize")})

        return list(await asyncio.gather(*(one(n) for n in names)))

    groups = await asyncio.gather(*(in_cluster(c) for c in await _eks_cluster_names(call, region)))
    return [r for group in groups for r in group]


# ----- network -----


@kind("ec2:elastic-ip")
async def elastic_ips(call: CallAws, account: Account, region: str, q: ResourceQuery):
    data = await call(command("ec2", "describe-addresses", region=region))
    rows = []
    for addr in data.get("Addresses", []):
        associated = bool(addr.get("AssociationId") or addr.get("InstanceId"))
        rows.append(row(
            account, region, "ec2:elastic-ip", id=addr.get("AllocationId") or addr["PublicIp"],
            state="associated" if associated else "unassociated", tags=addr.get("Tags"),
            details={"public_ip": addr.get("PublicIp"), "instance": addr.get("InstanceId"),
                     "conditions": {"unassociated": not associated}},
        ))
    return rows


@kind("ec2:vpc")
async def vpcs(call: CallAws, account: Account, region: str, q: ResourceQuery):
    data = await call(command("ec2", "describe-vpcs", region=region))
    rows = []
    for vpc in data.get("Vpcs", []):
        rows.append(row(account, region, "ec2:vpc", id=vpc["VpcId"],
                        state=vpc.get("State"), tags=vpc.get("Tags"),
                        details={"cidr": vpc.get("CidrBlock"), "default": vpc.get("IsDefault")}))
    return rows


def _open_to_world(group: dict) -> bool:
    for perm in group.get("IpPermissions", []):
        if any(r.get("CidrIp") == "0.0.0.0/0" for r in perm.get("IpRanges", [])):
            return True
        if any(r.get("CidrIpv6") == "::/0" for r in perm.get("Ipv6Ranges", [])):
            return True
    return False


@kind("ec2:security-group")
async def security_groups(call: CallAws, account: Account, region: str, q: ResourceQuery):
    data = await call(command("ec2", "describe-security-groups", region=region))
    rows = []
    for sg in data.get("SecurityGroups", []):
        open_ports = sorted({
            f"{p.get('IpProtocol')}:{p.get('FromPort', 'all')}"
            for p in sg.get("IpPermissions", [])
            if any(r.get("CidrIp") == "0.0.0.0/0" for r in p.get("IpRanges", []))
        })
        rows.append(row(
            account, region, "ec2:security-group", id=sg["GroupId"], name=sg.get("GroupName"),
            state=None, tags=sg.get("Tags"),
            details={"vpc": sg.get("VpcId"), "description": sg.get("Description"),
                     "open_to_world": open_ports,
                     "conditions": {"open-to-world": _open_to_world(sg)}},
        ))
    return rows


# ----- management and identity -----


@kind("cloudformation:stack")
async def cloudformation_stacks(call: CallAws, account: Account, region: str, q: ResourceQuery):
    data = await call(command("cloudformation", "describe-stacks", region=region))
    return [
        row(account, region, "cloudformation:stack", id=s["StackName"], name=s["StackName"],
            state=(s.get("StackStatus") or "").lower() or None, tags=s.get("Tags"),
            details={"created": s.get("CreationTime"), "description": s.get("Description")})
        for s in data.get("Stacks", [])
    ]


@kind("iam:role", is_global=True)
async def iam_roles(call: CallAws, account: Account, region: str, q: ResourceQuery):
    data = await call(command("iam", "list-roles", region=region))
    return [
        row(account, GLOBAL, "iam:role", id=r["RoleName"], name=r["RoleName"], state=None,
            tags=r.get("Tags"),
            details={"arn": r.get("Arn"), "path": r.get("Path"), "created": r.get("CreateDate")})
        for r in data.get("Roles", [])
    ]
