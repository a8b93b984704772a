"""Ground truth: what the sandbox's AWS holds, read straight from it with boto3.

This is deliberately independent of the agent's own resource code (graph/catalogue/,
access/, the MCP path): it assumes each account's role from the central credentials with
plain boto3, lists every resource type with the AWS SDK, and applies a query's filters
with its own reading of what they mean. An expected answer computed here is what AWS
holds, not what the agent would compute.

Filter semantics (the product's, stated once here):
- states: the resource's lifecycle state (lower case) is one of them;
- tags: every key=value is on the resource (case-insensitive);
- name_contains: the text is in the resource's name or id (case-insensitive);
- ids: the resource's id or name is one of them;
- conditions: unattached (EBS volume with no attachment), unassociated (Elastic IP with no
  association), open-to-world (security group with an ingress rule from 0.0.0.0/0 or ::/0).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

from opsagent.registry import Registry

GLOBAL_TYPES = {"s3:bucket", "iam:role"}  # read once per account
HOME_REGION = "us-east-1"  # where global services are read
SESSION_NAME = "opsagent-eval-truth"


@dataclass(frozen=True)
class TruthRow:
    account_id: str
    region: str
    resource_type: str
    id: str
    name: str | None
    state: str | None
    tags: tuple[tuple[str, str], ...]
    conditions: frozenset[str]

    @property
    def tag_dict(self) -> dict[str, str]:
        return dict(self.tags)


def _tags(tags: Any) -> tuple[tuple[str, str], ...]:
    if isinstance(tags, dict):
        pairs = [(str(k), str(v)) for k, v in tags.items()]
    else:
        pairs = [
            (str(t.get("Key", t.get("key"))), str(t.get("Value", t.get("value", ""))))
            for t in tags or []
            if t.get("Key", t.get("key")) is not None
        ]
    return tuple(sorted(pairs))


def _lower(value: Any) -> str | None:
    return str(value).lower() if value else None


Reader = Callable[[Any, str, str], list[TruthRow]]  # (client factory, account, region)


class GroundTruth:
    """Every resource of every account, read with boto3 from the sandbox's endpoint."""

    def __init__(
        self,
        registry: Registry,
        *,
        endpoint_url: str | None,
        access_key: str,
        secret_key: str,
        token: str | None = None,
    ):
        self.registry = registry
        self.endpoint_url = endpoint_url
        self.central = boto3.Session(
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            aws_session_token=token,
            region_name=HOME_REGION,
        )
        self._sessions: dict[str, boto3.Session] = {}
        self._clients: dict[tuple[str, str, str], Any] = {}
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str, str], list[TruthRow]] = {}

    @classmethod
    def for_sandbox(cls, sandbox: Any, registry: Registry) -> GroundTruth:
        creds = sandbox.central_credentials
        return cls(
            registry,
            endpoint_url=sandbox.aws_endpoint,
            access_key=creds.access_key,
            secret_key=creds.secret_key,
            token=creds.token,
        )

    # ----- reaching an account -----

    def session(self, account_id: str) -> boto3.Session:
        with self._lock:
            if account_id not in self._sessions:
                account = self.registry.get(account_id)
                sts = self.central.client("sts", endpoint_url=self.endpoint_url)
                params: dict[str, Any] = {
                    "RoleArn": account.role_arn,
                    "RoleSessionName": SESSION_NAME,
                }
                if account.external_id:
                    params["ExternalId"] = account.external_id
                creds = sts.assume_role(**params)["Credentials"]
                self._sessions[account_id] = boto3.Session(
                    aws_access_key_id=creds["AccessKeyId"],
                    aws_secret_access_key=creds["SecretAccessKey"],
                    aws_session_token=creds["SessionToken"],
                )
            return self._sessions[account_id]

    def client(self, account_id: str, service: str, region: str) -> Any:
        session = self.session(account_id)
        with self._lock:
            key = (account_id, service, region)
            if key not in self._clients:
                self._clients[key] = session.client(
                    service, region_name=region, endpoint_url=self.endpoint_url
                )
            return self._clients[key]

    # ----- reading -----

    def read(
        self, account_id: str, region: str, resource_type: str, *, fresh: bool = False
    ) -> list[TruthRow]:
        """Every resource of one type in one account and region (global types: the region
        is ignored and every resource is returned once)."""
        if resource_type in GLOBAL_TYPES:
            region = HOME_REGION
        key = (account_id, region, resource_type)
        if fresh or key not in self._cache:
            rows = READERS[resource_type](
                lambda service, r=region: self.client(account_id, service, r),
                account_id,
                region,
            )
            if fresh:
                return rows
            self._cache[key] = rows
        return self._cache[key]

    def rows(
        self, accounts: Iterable[str], regions: list[str] | None, query: dict[str, Any]
    ) -> list[TruthRow]:
        """The rows one query of a plan must return."""
        rtype = query["resource_type"]
        found: list[TruthRow] = []
        for account_id in accounts:
            account_regions = regions or self.registry.get(account_id).regions
            if rtype in GLOBAL_TYPES:
                rows = self.read(account_id, HOME_REGION, rtype)
                if regions and rtype == "s3:bucket":
                    rows = [r for r in rows if r.region in regions]
            else:
                rows = [
                    r for region in account_regions for r in self.read(account_id, region, rtype)
                ]
            found.extend(r for r in rows if row_matches(r, query))
        return found

    def snapshot(self, resource_types: Iterable[str], *, workers: int = 16) -> frozenset:
        """The full state of every registry account and region, read fresh: for checking
        that nothing changed."""
        jobs: list[tuple[str, str, str]] = []
        for account in self.registry.all_accounts:
            for rtype in resource_types:
                regions = [HOME_REGION] if rtype in GLOBAL_TYPES else account.regions
                jobs.extend((account.id, region, rtype) for region in regions)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(lambda job: self._snapshot_one(*job), jobs))
        return frozenset(item for rows in results for item in rows)

    def _snapshot_one(self, account_id: str, region: str, rtype: str) -> list[tuple]:
        try:
            rows = self.read(account_id, region, rtype, fresh=True)
        except ClientError as exc:  # e.g. a role the central identity may not assume
            return [(account_id, region, rtype, "error", exc.response["Error"]["Code"])]
        return [
            (
                r.account_id,
                r.region,
                r.resource_type,
                r.id,
                r.state,
                r.tags,
                tuple(sorted(r.conditions)),
            )
            for r in rows
        ]


def row_matches(row: TruthRow, query: dict[str, Any]) -> bool:
    states = {str(s).lower() for s in query.get("states") or []}
    if states and (row.state or "") not in states:
        return False
    tags = {k.lower(): v.lower() for k, v in row.tags}
    for key, value in (query.get("tags") or {}).items():
        if tags.get(str(key).lower()) != str(value).lower():
            return False
    needle = (query.get("name_contains") or "").lower()
    if needle and needle not in (row.name or "").lower() and needle not in row.id.lower():
        return False
    ids = {str(i).lower() for i in query.get("ids") or []}
    if ids and row.id.lower() not in ids and (row.name or "").lower() not in ids:
        return False
    return all(c in row.conditions for c in query.get("conditions") or [])


# ----- one reader per resource type: (client factory, account, region) -> rows -----

READERS: dict[str, Reader] = {}


def reader(resource_type: str):
    def register(fn: Reader) -> Reader:
        READERS[resource_type] = fn
        return fn

    return register


def _pages(client: Any, operation: str, key: str, **params: Any) -> list[Any]:
    if client.can_paginate(operation):
        return [
            item
            for page in client.get_paginator(operation).paginate(**params)
            for item in page.get(key, [])
        ]
    return list(getattr(client, operation)(**params).get(key, []))


def _row(
    account: str,
    region: str,
    rtype: str,
    rid: str,
    *,
    name: str | None = None,
    state: Any = None,
    tags: Any = None,
    conditions: Iterable[str] = (),
) -> TruthRow:
    return TruthRow(
        account, region, rtype, rid, name, _lower(state), _tags(tags), frozenset(conditions)
    )


@reader("ec2:instance")
def _ec2_instances(client, account, region):
    rows = []
    for reservation in _pages(client("ec2"), "describe_instances", "Reservations"):
        for inst in reservation["Instances"]:
            tags = _tags(inst.get("Tags"))
            rows.append(
                _row(
                    account,
                    region,
                    "ec2:instance",
                    inst["InstanceId"],
                    name=dict(tags).get("Name"),
                    state=inst["State"]["Name"],
                    tags=inst.get("Tags"),
                )
            )
    return rows


@reader("ec2:volume")
def _volumes(client, account, region):
    rows = []
    for vol in _pages(client("ec2"), "describe_volumes", "Volumes"):
        attached = [
            a
            for a in vol.get("Attachments", [])
            if a.get("State", "attached") in ("attaching", "attached")
        ]
        rows.append(
            _row(
                account,
                region,
                "ec2:volume",
                vol["VolumeId"],
                name=dict(_tags(vol.get("Tags"))).get("Name"),
                state=vol.get("State"),
                tags=vol.get("Tags"),
                conditions=[] if attached else ["unattached"],
            )
        )
    return rows


@reader("ec2:elastic-ip")
def _elastic_ips(client, account, region):
    rows = []
    for addr in client("ec2").describe_addresses().get("Addresses", []):
        associated = any(addr.get(k) for k in ("AssociationId", "InstanceId", "NetworkInterfaceId"))
        rows.append(
            _row(
                account,
                region,
                "ec2:elastic-ip",
                addr.get("AllocationId") or addr["PublicIp"],
                name=dict(_tags(addr.get("Tags"))).get("Name"),
                state="associated" if associated else "unassociated",
                tags=addr.get("Tags"),
                conditions=[] if associated else ["unassociated"],
            )
        )
    return rows


@reader("ec2:vpc")
def _vpcs(client, account, region):
    return [
        _row(
            account,
            region,
            "ec2:vpc",
            vpc["VpcId"],
            name=dict(_tags(vpc.get("Tags"))).get("Name"),
            state=vpc.get("State"),
            tags=vpc.get("Tags"),
        )
        for vpc in _pages(client("ec2"), "describe_vpcs", "Vpcs")
    ]


def _open_to_world(group: dict[str, Any]) -> bool:
    for permission in group.get("IpPermissions", []):
        if any(r.get("CidrIp") == "0.0.0.0/0" for r in permission.get("IpRanges", [])):
            return True
        if any(r.get("CidrIpv6") == "::/0" for r in permission.get("Ipv6Ranges", [])):
            return True
    return False


@reader("ec2:security-group")
def _security_groups(client, account, region):
    return [
        _row(
            account,
            region,
            "ec2:security-group",
            sg["GroupId"],
            name=sg.get("GroupName"),
            tags=sg.get("Tags"),
            conditions=["open-to-world"] if _open_to_world(sg) else [],
        )
        for sg in _pages(client("ec2"), "describe_security_groups", "SecurityGroups")
    ]


@reader("s3:bucket")
def _buckets(client, account, region):
    s3 = client("s3")
    rows = []
    for bucket in s3.list_buckets().get("Buckets", []):
        name = bucket["Name"]
        location = s3.get_bucket_location(Bucket=name).get("LocationConstraint")
        try:
            tags = s3.get_bucket_tagging(Bucket=name).get("TagSet", [])
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "NoSuchTagSet":
                raise
            tags = []
        rows.append(_row(account, location or "us-east-1", "s3:bucket", name, name=name, tags=tags))
    return rows


@reader("rds:db-instance")
def _rds(client, account, region):
    rds = client("rds")
    rows = []
    for db in _pages(rds, "describe_db_instances", "DBInstances"):
        tags = rds.list_tags_for_resource(ResourceName=db["DBInstanceArn"]).get("TagList", [])
        rows.append(
            _row(
                account,
                region,
                "rds:db-instance",
                db["DBInstanceIdentifier"],
                name=db["DBInstanceIdentifier"],
                state=db.get("DBInstanceStatus"),
                tags=tags,
            )
        )
    return rows


@reader("lambda:function")
def _functions(client, account, region):
    lam = client("lambda")
    rows = []
    for fn in _pages(lam, "list_functions", "Functions"):
        tags = lam.list_tags(Resource=fn["FunctionArn"]).get("Tags", {})
        rows.append(
            _row(
                account,
                region,
                "lambda:function",
                fn["FunctionName"],
                name=fn["FunctionName"],
                state=fn.get("State") or "active",
                tags=tags,
            )
        )
    return rows


@reader("dynamodb:table")
def _tables(client, account, region):
    ddb = client("dynamodb")
    rows = []
    for name in _pages(ddb, "list_tables", "TableNames"):
        table = ddb.describe_table(TableName=name)["Table"]
        tags = ddb.list_tags_of_resource(ResourceArn=table["TableArn"]).get("Tags", [])
        rows.append(
            _row(
                account,
                region,
                "dynamodb:table",
                name,
                name=name,
                state=table.get("TableStatus"),
                tags=tags,
            )
        )
    return rows


def _ecs_cluster_arns(ecs: Any) -> list[str]:
    return _pages(ecs, "list_clusters", "clusterArns")


@reader("ecs:cluster")
def _ecs_clusters(client, account, region):
    ecs = client("ecs")
    arns = _ecs_cluster_arns(ecs)
    if not arns:
        return []
    clusters = ecs.describe_clusters(clusters=arns, include=["TAGS"]).get("clusters", [])
    return [
        _row(
            account,
            region,
            "ecs:cluster",
            c["clusterName"],
            name=c["clusterName"],
            state=c.get("status"),
            tags=c.get("tags"),
        )
        for c in clusters
    ]


@reader("ecs:service")
def _ecs_services(client, account, region):
    ecs = client("ecs")
    rows = []
    for cluster in _ecs_cluster_arns(ecs):
        arns = _pages(ecs, "list_services", "serviceArns", cluster=cluster)
        for start in range(0, len(arns), 10):  # describe_services takes ten at a time
            services = ecs.describe_services(
                cluster=cluster, services=arns[start : start + 10], include=["TAGS"]
            ).get("services", [])
            rows.extend(
                _row(
                    account,
                    region,
                    "ecs:service",
                    s["serviceName"],
                    name=s["serviceName"],
                    state=s.get("status"),
                    tags=s.get("tags"),
                )
                for s in services
            )
    return rows


@reader("eks:cluster")
def _eks_clusters(client, account, region):
    eks = client("eks")
    rows = []
    for name in _pages(eks, "list_clusters", "clusters"):
        cluster = eks.describe_cluster(name=name)["cluster"]
        rows.append(
            _row(
                account,
                region,
                "eks:cluster",
                name,
                name=name,
                state=cluster.get("status"),
                tags=cluster.get("tags"),
            )
        )
    return rows


@reader("eks:nodegroup")
def _eks_nodegroups(client, account, region):
    eks = client("eks")
    rows = []
    for cluster in _pages(eks, "list_clusters", "clusters"):
        for name in _pages(eks, "list_nodegroups", "nodegroups", clusterName=cluster):
            group = eks.describe_nodegroup(clusterName=cluster, nodegroupName=name)["nodegroup"]
            rows.append(
                _row(
                    account,
                    region,
                    "eks:nodegroup",
                    name,
                    name=name,
                    state=group.get("status"),
                    tags=group.get("tags"),
                )
            )
    return rows


@reader("cloudformation:stack")
def _stacks(client, account, region):
    return [
        _row(
            account,
            region,
            "cloudformation:stack",
            s["StackName"],
            name=s["StackName"],
            state=s.get("StackStatus"),
            tags=s.get("Tags"),
        )
        for s in _pages(client("cloudformation"), "describe_stacks", "Stacks")
    ]


@reader("iam:role")
def _roles(client, account, region):
    iam = client("iam")
    rows = []
    for role in _pages(iam, "list_roles", "Roles"):
        tags = _pages(iam, "list_role_tags", "Tags", RoleName=role["RoleName"])
        rows.append(
            _row(account, "global", "iam:role", role["RoleName"], name=role["RoleName"], tags=tags)
        )
    return rows
