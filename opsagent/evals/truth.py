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
  association), open-to-world (security group with an ingress rule from 0.0.0.0/0 or ::/0);
- tag_keys: each key is on the resource, with any value; missing_tags: none of them is;
  untagged: the resource has no tags at all (tag keys compared case-insensitively);
- filters [{attribute, op, value}]: every one holds on the row's attribute value
  (``ATTRIBUTE_KINDS`` names each type's attributes and their kinds). A row without a value
  for the attribute matches no filter on it, not even "ne". eq / ne: text compared
  case-insensitively, numbers as numbers, versions part by part, times as instants; a list
  value means any of them (ne: none of them). gt / gte / lt / lte: numbers, versions part
  by part with numbers as numbers ("1.29" < "1.30", "14.9" < "14.10"), times. prefix: text
  starts with it (case-insensitive); a version's leading parts are it ("14" matches "14.9",
  not "140.1"). within_days N: the time is at or after N days before now; older_than_days
  N: before that. on_or_after / before: against an ISO date (its midnight UTC) or time.
  Booleans: eq / ne only.

Attribute values are normalized as the product shows them: times as "YYYY-MM-DDTHH:MM:SSZ"
(UTC, whole seconds), numbers as numbers, booleans as booleans, versions as text.

Ranking (sort_by, descending, limit): the rows of every account together, ordered by the
attribute (descending if asked), rows without a value last; equal values (and every row
when there is no sort_by) in (account id, region, id) order, ascending; then the first
``limit`` of them. group_by, total and a plan's rank do not change which rows are expected.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import boto3
from botocore.exceptions import ClientError

# The lifecycle table is data (which runtimes and versions AWS still supports), not the
# catalogue's row code: ground truth reads the same dates.
from opsagent.graph.catalogue.lifecycle import kubernetes_outdated, runtime_deprecated
from opsagent.registry import Registry

GLOBAL_TYPES = {"s3:bucket", "iam:role"}  # read once per account
HOME_REGION = "us-east-1"  # where global services are read
SESSION_NAME = "opsagent-eval-truth"

# Each type's attributes and how they compare: text, number, bool, time or version.
ATTRIBUTE_KINDS: dict[str, dict[str, str]] = {
    "ec2:instance": {
        "instance_type": "text",
        "instance_family": "text",
        "platform": "text",
        "launch_time": "time",
    },
    "s3:bucket": {"created": "time", "public_access_blocked": "bool", "encryption": "text"},
    "rds:db-instance": {
        "engine": "text",
        "engine_version": "version",
        "class": "text",
        "publicly_accessible": "bool",
        "storage_encrypted": "bool",
        "multi_az": "bool",
        "storage_gb": "number",
        "created": "time",
    },
    "lambda:function": {
        "runtime": "text",
        "runtime_deprecated": "bool",
        "memory_mb": "number",
        "last_modified": "time",
    },
    "eks:cluster": {"version": "version", "version_outdated": "bool", "created": "time"},
    "ec2:volume": {
        "volume_type": "text",
        "size_gb": "number",
        "encrypted": "bool",
        "created": "time",
    },
}

AttributeValue = str | int | float | bool


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
    # (name, value) pairs sorted by name; an attribute without a value is left out.
    attributes: tuple[tuple[str, AttributeValue], ...] = ()

    @property
    def tag_dict(self) -> dict[str, str]:
        return dict(self.tags)

    @property
    def attribute_dict(self) -> dict[str, AttributeValue]:
        return dict(self.attributes)


def _attributes(values: dict[str, Any] | None) -> tuple[tuple[str, AttributeValue], ...]:
    return tuple(sorted((k, v) for k, v in (values or {}).items() if v is not None and v != ""))


# ----- normalizing what boto3 returns -----

_TIME_TEXT = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?",
    re.IGNORECASE,
)


def utc_moment(value: Any) -> datetime | None:
    """A time boto3 or a query gives (a datetime, a date, or ISO text such as Lambda's
    "2026-11-30T08:00:00.000+0000" or "2026-11-30"), as an aware UTC datetime. A date, or
    text without a zone, is UTC (a date: its midnight)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if not isinstance(value, str):
        return None
    match = _TIME_TEXT.fullmatch(value.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    offset = timedelta()
    if zone and zone.upper() != "Z":
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        offset = -offset if zone[0] == "-" else offset
    try:
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=timezone(offset),
        )
    except ValueError:
        return None
    return moment.astimezone(UTC)


def utc_text(value: Any) -> str | None:
    """A time as the product shows it: "2026-11-30T08:00:00Z" (UTC, whole seconds)."""
    moment = utc_moment(value)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment is not None else None


def _family(instance_type: Any) -> str | None:
    """ "m5.large" -> "m5"."""
    text = str(instance_type or "")
    return text.split(".", 1)[0] if "." in text else None


def _ec2_platform(inst: dict[str, Any]) -> str:
    """EC2 reports Platform only for Windows; PlatformDetails ("Linux/UNIX", "Windows with
    SQL Server...") where it reports it."""
    if str(inst.get("Platform") or "").lower() == "windows":
        return "windows"
    return "windows" if "windows" in str(inst.get("PlatformDetails") or "").lower() else "linux"


def _today() -> date:
    return datetime.now(UTC).date()


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
        self,
        accounts: Iterable[str],
        regions: list[str] | None,
        query: dict[str, Any],
        *,
        now: datetime | None = None,
    ) -> list[TruthRow]:
        """The rows one query of a plan must return (its ranking applied over every
        account); ``now`` is the time of the question ("in the last 7 days")."""
        now = now or datetime.now(UTC)
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
            found.extend(r for r in rows if row_matches(r, query, now))
        return ranked(found, query)

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


def row_matches(row: TruthRow, query: dict[str, Any], now: datetime | None = None) -> bool:
    """Whether a row satisfies every filter of a query (a dict of ResourceQuery's fields);
    ``now`` is the time of the question (default: now)."""
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
    if not all(c in row.conditions for c in query.get("conditions") or []):
        return False
    if query.get("untagged") and tags:
        return False
    if any(str(key).lower() not in tags for key in query.get("tag_keys") or []):
        return False
    if any(str(key).lower() in tags for key in query.get("missing_tags") or []):
        return False
    when = now or datetime.now(UTC)
    return all(_holds(row, condition, when) for condition in query.get("filters") or [])


def _field(condition: Any, name: str, default: Any = None) -> Any:
    """A filter as a dict ({attribute, op, value}) or as a model with those attributes."""
    if isinstance(condition, dict):
        return condition.get(name, default)
    return getattr(condition, name, default)


def _holds(row: TruthRow, condition: Any, now: datetime) -> bool:
    attribute = str(_field(condition, "attribute"))
    op = str(_field(condition, "op", "eq"))
    want = _field(condition, "value")
    kind = ATTRIBUTE_KINDS.get(row.resource_type, {}).get(attribute)
    have = row.attribute_dict.get(attribute)
    if kind is None or have is None:
        return False
    wanted = want if isinstance(want, list) else [want]
    if kind == "bool":
        have_bool, want_bool = _boolean(have), _boolean(want)
        if have_bool is None or want_bool is None or op not in ("eq", "ne"):
            return False
        return (have_bool == want_bool) == (op == "eq")
    if op in ("eq", "ne"):
        hit = any(_order(kind, have, w) == 0 for w in wanted)
        return hit == (op == "eq")
    if op == "prefix":
        if kind == "version":
            have_parts = _version_parts(have)
            return any(have_parts[: len(_version_parts(w))] == _version_parts(w) for w in wanted)
        return any(str(have).lower().startswith(str(w).lower()) for w in wanted)
    if op in ("within_days", "older_than_days"):
        moment, days = utc_moment(have), _number(want)
        if moment is None or days is None:
            return False
        cutoff = now - timedelta(days=days)
        return moment >= cutoff if op == "within_days" else moment < cutoff
    if op in ("on_or_after", "before"):
        order = _order("time", have, want)
        if order is None:
            return False
        return order >= 0 if op == "on_or_after" else order < 0
    if op in ("gt", "gte", "lt", "lte"):
        order = _order(kind, have, want)
        if order is None:
            return False
        return {"gt": order > 0, "gte": order >= 0, "lt": order < 0, "lte": order <= 0}[op]
    return False


def _boolean(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    return {"true": True, "yes": True, "false": False, "no": False}.get(str(value).lower())


def _number(value: Any) -> float | None:
    if isinstance(value, bool | list):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _version_parts(value: Any) -> tuple[tuple[int, int, str], ...]:
    """ "14.10" -> ((0, 14, ""), (0, 10, "")): numbers as numbers, and words after them."""
    return tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part)
        for part in re.findall(r"[0-9]+|[a-z]+", str(value).lower())
    )


def _sort_value(kind: str, value: Any) -> Any:
    """What orders one attribute's values (None: the value does not order)."""
    if value is None or value == "" or isinstance(value, list):
        return None
    if kind == "number":
        return _number(value)
    if kind == "time":
        moment = utc_moment(value)
        return moment.timestamp() if moment is not None else None
    if kind == "version":
        return _version_parts(value)
    if kind == "bool":
        flag = _boolean(value)
        return None if flag is None else int(flag)
    return str(value).lower()


def _order(kind: str, have: Any, want: Any) -> int | None:
    """-1, 0 or 1: ``have`` against ``want`` in the attribute's order; None if they don't
    compare."""
    a, b = _sort_value(kind, have), _sort_value(kind, want)
    if a is None or b is None:
        return None
    return (a > b) - (a < b)


def _tie_break(row: TruthRow) -> tuple[str, str, str]:
    return (row.account_id, row.region, row.id)


def ranked(rows: list[TruthRow], query: dict[str, Any]) -> list[TruthRow]:
    """A query's ranking over the rows of every account: ordered by ``sort_by`` (descending
    if asked) with rows without a value last, ties (and everything, without sort_by) in
    (account id, region, id) order; the first ``limit`` of them. Unranked: unchanged."""
    sort_by, limit = query.get("sort_by"), query.get("limit")
    if not sort_by and limit is None:
        return rows
    ordered = sorted(rows, key=_tie_break)
    if sort_by:
        kind = ATTRIBUTE_KINDS.get(str(query["resource_type"]), {}).get(sort_by, "text")

        def value(row: TruthRow) -> Any:
            return _sort_value(kind, row.attribute_dict.get(sort_by))

        with_value = [r for r in ordered if value(r) is not None]
        # A stable sort keeps the tie-break order among equal values, reversed or not.
        with_value.sort(key=value, reverse=bool(query.get("descending")))
        ordered = with_value + [r for r in ordered if value(r) is None]
    return ordered if limit is None else ordered[: int(limit)]


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
    attributes: dict[str, Any] | None = None,
) -> TruthRow:
    return TruthRow(
        account,
        region,
        rtype,
        rid,
        name,
        _lower(state),
        _tags(tags),
        frozenset(conditions),
        _attributes(attributes),
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
                    attributes={
                        "instance_type": inst.get("InstanceType"),
                        "instance_family": _family(inst.get("InstanceType")),
                        "platform": _ec2_platform(inst),
                        "launch_time": utc_text(inst.get("LaunchTime")),
                    },
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
                attributes={
                    "volume_type": vol.get("VolumeType"),
                    "size_gb": vol.get("Size"),
                    "encrypted": vol.get("Encrypted"),
                    "created": utc_text(vol.get("CreateTime")),
                },
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
        rows.append(
            _row(
                account,
                location or "us-east-1",
                "s3:bucket",
                name,
                name=name,
                tags=tags,
                attributes={
                    "created": utc_text(bucket.get("CreationDate")),
                    "public_access_blocked": _public_access_blocked(s3, name),
                    "encryption": _default_encryption(s3, name),
                },
            )
        )
    return rows


_BLOCK_SETTINGS = (
    "BlockPublicAcls",
    "IgnorePublicAcls",
    "BlockPublicPolicy",
    "RestrictPublicBuckets",
)


def _public_access_blocked(s3: Any, bucket: str) -> bool:
    """The bucket's own public access block has all four settings on (the account-level
    block, in S3 Control, is not the bucket's)."""
    try:
        answer = s3.get_public_access_block(Bucket=bucket)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "NoSuchPublicAccessBlockConfiguration":
            raise
        return False
    settings = answer.get("PublicAccessBlockConfiguration") or {}
    return all(settings.get(key) is True for key in _BLOCK_SETTINGS)


def _default_encryption(s3: Any, bucket: str) -> str:
    """The SSE algorithm of the bucket's default encryption rule; "none" without one."""
    try:
        answer = s3.get_bucket_encryption(Bucket=bucket)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ServerSideEncryptionConfigurationNotFoundError":
            raise
        return "none"
    for rule in (answer.get("ServerSideEncryptionConfiguration") or {}).get("Rules") or []:
        algorithm = (rule.get("ApplyServerSideEncryptionByDefault") or {}).get("SSEAlgorithm")
        if algorithm:
            return str(algorithm)
    return "none"


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
                attributes={
                    "engine": db.get("Engine"),
                    "engine_version": db.get("EngineVersion"),
                    "class": db.get("DBInstanceClass"),
                    "publicly_accessible": db.get("PubliclyAccessible"),
                    "storage_encrypted": db.get("StorageEncrypted"),
                    "multi_az": db.get("MultiAZ"),
                    "storage_gb": db.get("AllocatedStorage"),
                    "created": utc_text(db.get("InstanceCreateTime")),
                },
            )
        )
    return rows


@reader("lambda:function")
def _functions(client, account, region):
    lam = client("lambda")
    today = _today()
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
                attributes={
                    "runtime": fn.get("Runtime"),
                    "runtime_deprecated": runtime_deprecated(fn.get("Runtime"), today),
                    "memory_mb": fn.get("MemorySize"),
                    "last_modified": utc_text(fn.get("LastModified")),
                },
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
    today = _today()
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
                attributes={
                    "version": cluster.get("version"),
                    "version_outdated": kubernetes_outdated(cluster.get("version"), today),
                    "created": utc_text(cluster.get("createdAt")),
                },
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
