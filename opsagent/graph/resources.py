"""How each resource type is read from one account and region, and normalized to rows.

Each kind says which reads it needs (``read``: one ``Read`` per region, with fan-outs for
per-item reads, as data) and how the answer becomes ``Resource`` rows (``rows``). The
account worker sends every kind's reads for every region as ONE script, so a kind never
calls AWS itself. Filtering by state, tag, name and condition happens afterwards, in one
place (``matches``), so every resource type filters the same way. The set of reads the
kinds make is the guard's allow-list for the catalogue (``CATALOGUE_READS``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opsagent.access import FanOut, Read, ReadResult
from opsagent.graph.state import RESOURCE_TYPES, Resource, ResourceQuery
from opsagent.registry import Account

ReadFor = Callable[[str, ResourceQuery], Read]
RowsFrom = Callable[[Account, str, ResourceQuery, ReadResult], list[Resource]]

# Global services are read once per account, from this region; rows that belong to no
# region (IAM roles) say GLOBAL.
GLOBAL_REGION = "us-east-1"
GLOBAL = "global"


@dataclass(frozen=True)
class ResourceKind:
    read: ReadFor  # (region, query) -> the read, fan-outs included
    rows: RowsFrom  # (account, region, query, its result) -> rows
    is_global: bool = False  # one read per account, not per region


KINDS: dict[str, ResourceKind] = {}


def kind(resource_type: str, read: ReadFor, *, is_global: bool = False):
    def register(rows: RowsFrom) -> RowsFrom:
        KINDS[resource_type] = ResourceKind(read=read, rows=rows, is_global=is_global)
        return rows

    return register


def _needs_tags(q: ResourceQuery) -> bool:
    """Per-item tag reads cost one call per resource: only when a filter or describe needs them."""
    return bool(q.tags) or q.intent == "describe"


def _each(each: str, *reads: Read, **options: Any) -> FanOut:
    return FanOut(each=each, reads=list(reads), **options)


def _children(result: ReadResult, fan: int = 0) -> list[ReadResult]:
    return result.children[fan] if len(result.children) > fan else []


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


def _ec2(operation: str) -> ReadFor:
    return lambda region, q: Read(service="ec2", operation=operation, region=region)


@kind("ec2:instance", _ec2("DescribeInstances"))
def ec2_instances(account: Account, region: str, q: ResourceQuery, found: ReadResult):
    return [
        row(account, region, "ec2:instance", id=inst["InstanceId"],
            state=inst.get("State", {}).get("Name"), tags=inst.get("Tags"),
            details={
                "instance_type": inst.get("InstanceType"),
                "availability_zone": inst.get("Placement", {}).get("AvailabilityZone"),
                "private_ip": inst.get("PrivateIpAddress"),
                "launch_time": inst.get("LaunchTime"),
                "image_id": inst.get("ImageId"),
            })
        for reservation in found.result.get("Reservations", [])
        for inst in reservation.get("Instances", [])
    ]


def _lambda_read(region: str, q: ResourceQuery) -> Read:
    # ListFunctions carries no tags: ListTags per function, only when they are needed.
    tags = Read(service="lambda", operation="ListTags", region=region,
                bind={"Resource": "item.FunctionArn"})
    return Read(service="lambda", operation="ListFunctions", region=region,
                then=[_each("Functions", tags)] if _needs_tags(q) else [])


@kind("lambda:function", _lambda_read)
def lambda_functions(account: Account, region: str, q: ResourceQuery, found: ReadResult):
    tags = {t.params.get("Resource"): (t.result or {}).get("Tags") for t in _children(found)}
    return [
        row(account, region, "lambda:function",
            id=fn["FunctionName"], name=fn["FunctionName"],
            state=(fn.get("State") or "active").lower(), tags=tags.get(fn.get("FunctionArn")),
            details={"runtime": fn.get("Runtime"), "memory_mb": fn.get("MemorySize"),
                     "last_modified": fn.get("LastModified"), "arn": fn.get("FunctionArn")})
        for fn in found.result.get("Functions", [])
    ]


# ----- storage and databases -----


def _s3_read(region: str, q: ResourceQuery) -> Read:
    # ListBuckets names each bucket's region on current S3; GetBucketLocation only where
    # it does not (a null LocationConstraint means us-east-1, as S3 has always said).
    location = Read(service="s3", operation="GetBucketLocation", region=region,
                    bind={"Bucket": "item.Name"})
    fans = [_each("Buckets", location, unless="BucketRegion")]
    if _needs_tags(q):  # NoSuchTagSet is how S3 says "no tags"
        fans.append(_each("Buckets", Read(service="s3", operation="GetBucketTagging",
                                          region=region, bind={"Bucket": "item.Name"},
                                          expected_errors=("NoSuchTagSet",))))
    return Read(service="s3", operation="ListBuckets", region=region, then=fans)


@kind("s3:bucket", _s3_read, is_global=True)
def s3_buckets(account: Account, region: str, q: ResourceQuery, found: ReadResult):
    located = {c.params.get("Bucket"): (c.result or {}).get("LocationConstraint") or "us-east-1"
               for c in _children(found, 0) if c.ok}
    tags = {c.params.get("Bucket"): (c.result or {}).get("TagSet") for c in _children(found, 1)}
    rows = []
    for bucket in found.result.get("Buckets", []):
        name = bucket["Name"]
        bucket_region = bucket.get("BucketRegion") or located.get(name) or "unknown"
        rows.append(row(account, bucket_region, "s3:bucket", id=name, name=name, state=None,
                        tags=tags.get(name), details={"created": bucket.get("CreationDate")}))
    return rows


@kind("rds:db-instance",
      lambda region, q: Read(service="rds", operation="DescribeDBInstances", region=region))
def rds_instances(account: Account, region: str, q: ResourceQuery, found: ReadResult):
    return [
        row(account, region, "rds:db-instance",
            id=db["DBInstanceIdentifier"], name=db["DBInstanceIdentifier"],
            state=(db.get("DBInstanceStatus") or "").lower() or None,
            tags=db.get("TagList"),
            details={"engine": db.get("Engine"), "engine_version": db.get("EngineVersion"),
                     "class": db.get("DBInstanceClass"), "multi_az": db.get("MultiAZ"),
                     "storage_gb": db.get("AllocatedStorage")})
        for db in found.result.get("DBInstances", [])
    ]


@kind("ec2:volume", _ec2("DescribeVolumes"))
def ebs_volumes(account: Account, region: str, q: ResourceQuery, found: ReadResult):
    rows = []
    for vol in found.result.get("Volumes", []):
        attachments = [a.get("InstanceId") for a in vol.get("Attachments", [])]
        rows.append(row(
            account, region, "ec2:volume", id=vol["VolumeId"],
            state=vol.get("State"), tags=vol.get("Tags"),
            details={"size_gb": vol.get("Size"), "volume_type": vol.get("VolumeType"),
                     "attached_to": attachments,
                     "conditions": {"unattached": not attachments}},
        ))
    return rows


def _dynamodb_read(region: str, q: ResourceQuery) -> Read:
    tags = Read(service="dynamodb", operation="ListTagsOfResource", region=region,
                bind={"ResourceArn": "item.TableArn"})
    describe = Read(service="dynamodb", operation="DescribeTable", region=region,
                    bind={"TableName": "item"},
                    then=[_each("Table", tags)] if _needs_tags(q) else [])
    return Read(service="dynamodb", operation="ListTables", region=region,
                then=[_each("TableNames", describe)])


@kind("dynamodb:table", _dynamodb_read)
def dynamodb_tables(account: Account, region: str, q: ResourceQuery, found: ReadResult):
    rows = []
    for described in _children(found):
        table = (described.result or {}).get("Table")
        if not table:  # a table deleted between the two reads, or one we may not describe
            continue
        tags = next((t.result or {} for t in _children(described)), {}).get("Tags")
        name = table.get("TableName") or described.params.get("TableName")
        rows.append(row(account, region, "dynamodb:table", id=name, name=name, tags=tags,
                        state=(table.get("TableStatus") or "").lower() or None,
                        details={"items": table.get("ItemCount"),
                                 "billing": (table.get("BillingModeSummary") or {})
                                 .get("BillingMode")}))
    return rows


# ----- containers -----


def _ecs_clusters_read(region: str, q: ResourceQuery) -> Read:
    describe = Read(service="ecs", operation="DescribeClusters", region=region,
                    params={"include": ["TAGS"]}, bind={"clusters": "item"})
    return Read(service="ecs", operation="ListClusters", region=region,
                then=[_each("clusterArns", describe, batch=100)])  # DescribeClusters: ≤100


@kind("ecs:cluster", _ecs_clusters_read)
def ecs_clusters(account: Account, region: str, q: ResourceQuery, found: ReadResult):
    return [
        row(account, region, "ecs:cluster", id=c["clusterName"], name=c["clusterName"],
            state=(c.get("status") or "").lower() or None, tags=c.get("tags"),
            details={"services": c.get("activeServicesCount"),
                     "running_tasks": c.get("runningTasksCount"), "arn": c.get("clusterArn")})
        for batch in _children(found)
        for c in (batch.result or {}).get("clusters", [])
    ]


def _ecs_services_read(region: str, q: ResourceQuery) -> Read:
    describe = Read(service="ecs", operation="DescribeServices", region=region,
                    params={"include": ["TAGS"]},
                    bind={"cluster": "parent.cluster", "services": "item"})
    services = Read(service="ecs", operation="ListServices", region=region,
                    bind={"cluster": "item"},
                    then=[_each("serviceArns", describe, batch=10)])  # DescribeServices: ≤10
    return Read(service="ecs", operation="ListClusters", region=region,
                then=[_each("clusterArns", services)])


@kind("ecs:service", _ecs_services_read)
def ecs_services(account: Account, region: str, q: ResourceQuery, found: ReadResult):
    rows = []
    for listed in _children(found):
        cluster = str(listed.params.get("cluster", "")).rsplit("/", 1)[-1]
        for batch in _children(listed):
            for s in (batch.result or {}).get("services", []):
                rows.append(row(
                    account, region, "ecs:service", id=s["serviceName"], name=s["serviceName"],
                    state=(s.get("status") or "").lower() or None, tags=s.get("tags"),
                    details={"cluster": cluster, "desired": s.get("desiredCount"),
                             "running": s.get("runningCount"),
                             "launch_type": s.get("launchType")}))
    return rows


def _eks_clusters_read(region: str, q: ResourceQuery) -> Read:
    describe = Read(service="eks", operation="DescribeCluster", region=region,
                    bind={"name": "item"})
    return Read(service="eks", operation="ListClusters", region=region,
                then=[_each("clusters", describe)])


@kind("eks:cluster", _eks_clusters_read)
def eks_clusters(account: Account, region: str, q: ResourceQuery, found: ReadResult):
    rows = []
    for described in _children(found):
        c = (described.result or {}).get("cluster")
        if not c:
            continue
        name = c.get("name") or described.params.get("name")
        rows.append(row(account, region, "eks:cluster", id=name, name=name,
                        state=(c.get("status") or "").lower() or None, tags=c.get("tags"),
                        details={"version": c.get("version"), "endpoint": c.get("endpoint"),
                                 "platform_version": c.get("platformVersion"),
                                 "created": c.get("createdAt"), "arn": c.get("arn")}))
    return rows


def _eks_nodegroups_read(region: str, q: ResourceQuery) -> Read:
    describe = Read(service="eks", operation="DescribeNodegroup", region=region,
                    bind={"clusterName": "parent.clusterName", "nodegroupName": "item"})
    nodegroups = Read(service="eks", operation="ListNodegroups", region=region,
                      bind={"clusterName": "item"}, then=[_each("nodegroups", describe)])
    return Read(service="eks", operation="ListClusters", region=region,
                then=[_each("clusters", nodegroups)])


@kind("eks:nodegroup", _eks_nodegroups_read)
def eks_nodegroups(account: Account, region: str, q: ResourceQuery, found: ReadResult):
    rows = []
    for listed in _children(found):
        for described in _children(listed):
            ng = (described.result or {}).get("nodegroup")
            if not ng:
                continue
            scaling = ng.get("scalingConfig") or {}
            name = ng.get("nodegroupName") or described.params.get("nodegroupName")
            rows.append(row(account, region, "eks:nodegroup", id=name, name=name,
                            state=(ng.get("status") or "").lower() or None, tags=ng.get("tags"),
                            details={"cluster": described.params.get("clusterName"),
                                     "instance_types": ng.get("instanceTypes"),
                                     "desired": scaling.get("desiredSize"),
                                     "min": scaling.get("minSize"),
                                     "max": scaling.get("maxSize")}))
    return rows


# ----- network -----


@kind("ec2:elastic-ip", _ec2("DescribeAddresses"))
def elastic_ips(account: Account, region: str, q: ResourceQuery, found: ReadResult):
    rows = []
    for addr in found.result.get("Addresses", []):
        associated = bool(addr.get("AssociationId") or addr.get("InstanceId"))
        rows.append(row(
            account, region, "ec2:elastic-ip", id=addr.get("AllocationId") or addr["PublicIp"],
            state="associated" if associated else "unassociated", tags=addr.get("Tags"),
            details={"public_ip": addr.get("PublicIp"), "instance": addr.get("InstanceId"),
                     "conditions": {"unassociated": not associated}},
        ))
    return rows


@kind("ec2:vpc", _ec2("DescribeVpcs"))
def vpcs(account: Account, region: str, q: ResourceQuery, found: ReadResult):
    return [
        row(account, region, "ec2:vpc", id=vpc["VpcId"], state=vpc.get("State"),
            tags=vpc.get("Tags"),
            details={"cidr": vpc.get("CidrBlock"), "default": vpc.get("IsDefault")})
        for vpc in found.result.get("Vpcs", [])
    ]


def _open_to_world(group: dict) -> bool:
    for perm in group.get("IpPermissions", []):
        if any(r.get("CidrIp") == "0.0.0.0/0" for r in perm.get("IpRanges", [])):
            return True
        if any(r.get("CidrIpv6") == "::/0" for r in perm.get("Ipv6Ranges", [])):
            return True
    return False


@kind("ec2:security-group", _ec2("DescribeSecurityGroups"))
def security_groups(account: Account, region: str, q: ResourceQuery, found: ReadResult):
    rows = []
    for sg in found.result.get("SecurityGroups", []):
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


@kind("cloudformation:stack",
      lambda region, q: Read(service="cloudformation", operation="DescribeStacks", region=region))
def cloudformation_stacks(account: Account, region: str, q: ResourceQuery, found: ReadResult):
    return [
        row(account, region, "cloudformation:stack", id=s["StackName"], name=s["StackName"],
            state=(s.get("StackStatus") or "").lower() or None, tags=s.get("Tags"),
            details={"created": s.get("CreationTime"), "description": s.get("Description")})
        for s in found.result.get("Stacks", [])
    ]


@kind("iam:role", lambda region, q: Read(service="iam", operation="ListRoles", region=region),
      is_global=True)
def iam_roles(account: Account, region: str, q: ResourceQuery, found: ReadResult):
    return [
        row(account, GLOBAL, "iam:role", id=r["RoleName"], name=r["RoleName"], state=None,
            tags=r.get("Tags"),
            details={"arn": r.get("Arn"), "path": r.get("Path"), "created": r.get("CreateDate")})
        for r in found.result.get("Roles", [])
    ]


def _every_read() -> frozenset[tuple[str, str]]:
    """(service, operation) of every read any kind can make, with tags and describe on."""
    reads = set()
    for resource_type, resource_kind in KINDS.items():
        widest = ResourceQuery(resource_type=resource_type, intent="describe", tags={"k": "v"})
        reads |= {(r.service, r.operation) for r in resource_kind.read(GLOBAL_REGION,
                                                                       widest).walk()}
    return frozenset(reads)


# The guard's allow-list for the catalogue: these reads and no others.
CATALOGUE_READS = _every_read()
assert set(KINDS) == set(RESOURCE_TYPES), "every resource type needs a kind, and no more"
