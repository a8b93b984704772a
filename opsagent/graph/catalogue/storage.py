"""Storage and databases: S3 buckets, RDS instances, EBS volumes and DynamoDB tables."""

from __future__ import annotations

from opsagent.access import Read, ReadResult
from opsagent.graph.catalogue.attributes import Attribute, iso_time
from opsagent.graph.catalogue.common import (
    Condition,
    ResourceType,
    children,
    fan_out,
    needs_attributes,
    needs_tags,
    row,
    single_read,
)
from opsagent.graph.models import ResourceQuery
from opsagent.registry import Account

# ----- S3 buckets -----


# Per-bucket reads beyond the list, each one call per bucket, made only when asked:
# (fan-out name, operation, the error S3 answers when the bucket has none of it).
_S3_TAGS = ("tags", "GetBucketTagging", "NoSuchTagSet")
# GetPublicAccessBlock: the bucket's own block settings; a bucket without any answers
# NoSuchPublicAccessBlockConfiguration (the account-level block is another API, in S3
# Control). https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetPublicAccessBlock.html
_S3_PUBLIC = ("public", "GetPublicAccessBlock", "NoSuchPublicAccessBlockConfiguration")
# GetBucketEncryption: every bucket has SSE-S3 by default since 2023-01-05; a bucket
# without a configuration answers ServerSideEncryptionConfigurationNotFoundError.
# https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketEncryption.html
_S3_ENCRYPTION = (
    "encryption",
    "GetBucketEncryption",
    "ServerSideEncryptionConfigurationNotFoundError",
)


def _s3_fans(q: ResourceQuery) -> list[tuple[str, str, str]]:
    fans = [_S3_TAGS] if needs_tags(q) else []
    if needs_attributes(q, "public_access_blocked"):
        fans.append(_S3_PUBLIC)
    if needs_attributes(q, "encryption"):
        fans.append(_S3_ENCRYPTION)
    return fans


def _s3_read(region: str, q: ResourceQuery) -> Read:
    # ListBuckets names each bucket's region on current S3; GetBucketLocation only where
    # it does not (a null LocationConstraint means us-east-1, as S3 has always said).
    location = Read(
        service="s3", operation="GetBucketLocation", region=region, bind={"Bucket": "item.Name"}
    )
    fans = [fan_out("Buckets", location, unless="BucketRegion")]
    for _, operation, missing in _s3_fans(q):
        fans.append(
            fan_out(
                "Buckets",
                Read(
                    service="s3",
                    operation=operation,
                    region=region,
                    bind={"Bucket": "item.Name"},
                    expected_errors=(missing,),
                ),
            )
        )
    return Read(service="s3", operation="ListBuckets", region=region, then=fans)


def _public_access_blocked(answer: dict | None) -> bool:
    settings = (answer or {}).get("PublicAccessBlockConfiguration") or {}
    keys = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
    return all(settings.get(k) is True for k in keys)


def _encryption(answer: dict | None) -> str:
    rules = ((answer or {}).get("ServerSideEncryptionConfiguration") or {}).get("Rules") or []
    for rule in rules:
        algorithm = (rule.get("ApplyServerSideEncryptionByDefault") or {}).get("SSEAlgorithm")
        if algorithm:
            return str(algorithm)
    return "none"


def s3_buckets(account: Account, region: str, q: ResourceQuery, found: ReadResult):
    located = {
        c.params.get("Bucket"): (c.result or {}).get("LocationConstraint") or "us-east-1"
        for c in children(found, 0)
        if c.ok
    }
    per_bucket: dict[str, dict] = {}
    for fan, (name, _, missing) in enumerate(_s3_fans(q), start=1):
        per_bucket[name] = {
            c.params.get("Bucket"): c.result
            for c in children(found, fan)
            if c.ok or (c.error is not None and c.error.code == missing)
        }
    tags = {b: (r or {}).get("TagSet") for b, r in per_bucket.get("tags", {}).items()}
    rows = []
    for bucket in found.data.get("Buckets", []):
        name = bucket["Name"]
        bucket_region = bucket.get("BucketRegion") or located.get(name) or "unknown"
        rows.append(
            row(
                account,
                bucket_region,
                "s3:bucket",
                id=name,
                name=name,
                state=None,
                tags=tags.get(name),
                details={
                    "created": iso_time(bucket.get("CreationDate")),
                    **(
                        {
                            "public_access_blocked": _public_access_blocked(
                                per_bucket["public"][name]
                            )
                        }
                        if name in per_bucket.get("public", {})
                        else {}
                    ),
                    **(
                        {"encryption": _encryption(per_bucket["encryption"][name])}
                        if name in per_bucket.get("encryption", {})
                        else {}
                    ),
                },
            )
        )
    return rows


S3_BUCKET = ResourceType(
    type_id="s3:bucket",
    singular="S3 bucket",
    plural="S3 buckets",
    words=(
        "bucket",
        "s3",
        "s3 bucket",
        "storage bucket",
        "s3 storage bucket",
        "object store",
        "object storage",
        "object storage bucket",
        "amazon s3",
        "aws s3",
        "s3 storage",
        "bkt",
        "s3 bkt",
    ),
    qualifiers=("s3", "amazon s3", "aws s3"),
    read=_s3_read,
    rows=s3_buckets,
    is_global=True,
    name_is_id=True,
    arn_resource="",
    attributes=(
        Attribute(
            "created", "created", "time", ("created", "creation date", "age"), verb="created"
        ),
        Attribute(
            "public_access_blocked",
            "public access blocked",
            "bool",
            ("public access block", "block public access"),
            true_phrase="with public access blocked",
            false_phrase="without a public access block",
        ),
        Attribute("encryption", "default encryption", "text", ("encryption", "default encryption")),
    ),
    age_attribute="created",
)

# ----- RDS instances -----


def rds_instances(account: Account, region: str, q: ResourceQuery, found: ReadResult):
    return [
        row(
            account,
            region,
            "rds:db-instance",
            id=db["DBInstanceIdentifier"],
            name=db["DBInstanceIdentifier"],
            state=(db.get("DBInstanceStatus") or "").lower() or None,
            tags=db.get("TagList"),
            details={
                "engine": db.get("Engine"),
                "engine_version": db.get("EngineVersion"),
                "class": db.get("DBInstanceClass"),
                "multi_az": db.get("MultiAZ"),
                "publicly_accessible": db.get("PubliclyAccessible"),
                "storage_encrypted": db.get("StorageEncrypted"),
                "storage_gb": db.get("AllocatedStorage"),
                "created": iso_time(db.get("InstanceCreateTime")),
            },
        )
        for db in found.data.get("DBInstances", [])
    ]


RDS_INSTANCE = ResourceType(
    type_id="rds:db-instance",
    singular="RDS instance",
    plural="RDS instances",
    words=(
        "database",
        "db",
        "db instance",
        "database instance",
        "rds",
        "rds instance",
        "rds database",
        "rds db",
        "rds db instance",
        "rds database instance",
        "relational database",
        "database server",
        "db server",
        "amazon rds",
        "aws rds",
        *(
            f"{engine}{head}"
            for engine in (
                "postgres",
                "postgresql",
                "mysql",
                "mariadb",
                "aurora",
                "oracle",
                "sql server",
                "mssql",
                "rds postgres",
                "rds mysql",
                "rds aurora",
            )
            for head in ("", " instance", " database", " db", " db instance", " server")
        ),
    ),
    qualifiers=(
        "rds",
        "amazon rds",
        "aws rds",
        "postgres",
        "postgresql",
        "mysql",
        "mariadb",
        "aurora",
        "oracle",
        "mssql",
    ),
    read=single_read("rds", "DescribeDBInstances"),
    rows=rds_instances,
    states=(
        "available",
        "backing-up",
        "configuring-enhanced-monitoring",
        "configuring-iam-database-auth",
        "configuring-log-exports",
        "converting-to-vpc",
        "creating",
        "delete-precheck",
        "deleting",
        "failed",
        "inaccessible-encryption-credentials",
        "inaccessible-encryption-credentials-recoverable",
        "incompatible-network",
        "incompatible-option-group",
        "incompatible-parameters",
        "incompatible-restore",
        "insufficient-capacity",
        "maintenance",
        "modifying",
        "moving-to-vpc",
        "rebooting",
        "resetting-master-credentials",
        "renaming",
        "restore-error",
        "starting",
        "stopped",
        "stopping",
        "storage-full",
        "storage-optimization",
        "upgrading",
    ),
    state_concepts={
        "running": ("available",),
        "available": ("available",),
        "stopped": ("stopped",),
        "starting": ("starting",),
        "stopping": ("stopping",),
        "creating": ("creating",),
        "pending": ("creating",),
        "deleting": ("deleting",),
        "terminating": ("deleting",),
        "updating": ("modifying",),
        "failed": ("failed",),
        "rebooting": ("rebooting",),
        "backing-up": ("backing-up",),
        "maintenance": ("maintenance",),
        "storage-full": ("storage-full",),
        "upgrading": ("upgrading",),
    },
    name_is_id=True,
    arn_resource="db",
    attributes=(
        Attribute("engine", "engine", "text", ("engine", "database engine")),
        Attribute("engine_version", "engine version", "version", ("version", "engine version")),
        Attribute("class", "instance class", "text", ("class", "instance class", "size", "type")),
        Attribute(
            "publicly_accessible",
            "publicly accessible",
            "bool",
            ("public", "publicly accessible", "internet-facing"),
        ),
        Attribute(
            "storage_encrypted",
            "storage encrypted",
            "bool",
            ("encrypted", "encryption"),
            true_phrase="with encrypted storage",
            false_phrase="with unencrypted storage",
        ),
        Attribute(
            "multi_az",
            "Multi-AZ",
            "bool",
            ("multi-az", "multi az", "single-az"),
            false_phrase="that are single-AZ",
        ),
        Attribute(
            "storage_gb", "storage", "number", ("storage", "allocated storage", "size"), "GiB"
        ),
        Attribute(
            "created", "created", "time", ("created", "creation time", "age"), verb="created"
        ),
    ),
    age_attribute="created",
)

# ----- EBS volumes -----


def ebs_volumes(account: Account, region: str, q: ResourceQuery, found: ReadResult):
    rows = []
    for vol in found.data.get("Volumes", []):
        attachments = [a.get("InstanceId") for a in vol.get("Attachments", [])]
        rows.append(
            row(
                account,
                region,
                "ec2:volume",
                id=vol["VolumeId"],
                state=vol.get("State"),
                tags=vol.get("Tags"),
                details={
                    "size_gb": vol.get("Size"),
                    "volume_type": vol.get("VolumeType"),
                    "encrypted": vol.get("Encrypted"),
                    "created": iso_time(vol.get("CreateTime")),
                    "attached_to": attachments,
                    "conditions": {"unattached": not attachments},
                },
            )
        )
    return rows


EBS_VOLUME = ResourceType(
    type_id="ec2:volume",
    singular="EBS volume",
    plural="EBS volumes",
    words=(
        "volume",
        "ebs",
        "ebs volume",
        "disk",
        "ebs disk",
        "block storage",
        "block storage volume",
        "storage volume",
        "block volume",
        "ec2 volume",
        "hard drive",
        "hard disk",
        "ebs storage",
        "vol",
        "ebs vol",
    ),
    qualifiers=("ebs",),
    read=single_read("ec2", "DescribeVolumes"),
    rows=ebs_volumes,
    states=("creating", "available", "in-use", "deleting", "deleted", "error"),
    state_concepts={
        "available": ("available",),
        "in-use": ("in-use",),
        "creating": ("creating",),
        "deleting": ("deleting",),
        "deleted": ("deleted",),
        "failed": ("error",),
    },
    conditions=(Condition("unattached", concept="unused", label="unattached"),),
    id_patterns=(r"^vol-[0-9a-f]{4,17}$",),
    arn_resource="volume",
    attributes=(
        Attribute("volume_type", "volume type", "text", ("type", "volume type")),
        Attribute("size_gb", "size", "number", ("size", "capacity", "storage"), unit="GiB"),
        Attribute(
            "encrypted",
            "encrypted",
            "bool",
            ("encrypted", "encryption"),
            false_phrase="that are unencrypted",
        ),
        Attribute(
            "created", "created", "time", ("created", "creation time", "age"), verb="created"
        ),
    ),
    age_attribute="created",
)

# ----- DynamoDB tables -----


def _dynamodb_read(region: str, q: ResourceQuery) -> Read:
    tags = Read(
        service="dynamodb",
        operation="ListTagsOfResource",
        region=region,
        bind={"ResourceArn": "item.TableArn"},
    )
    describe = Read(
        service="dynamodb",
        operation="DescribeTable",
        region=region,
        bind={"TableName": "item"},
        then=[fan_out("Table", tags)] if needs_tags(q) else [],
    )
    return Read(
        service="dynamodb",
        operation="ListTables",
        region=region,
        then=[fan_out("TableNames", describe)],
    )


def dynamodb_tables(account: Account, region: str, q: ResourceQuery, found: ReadResult):
    rows = []
    for described in children(found):
        table = (described.result or {}).get("Table")
        if not table:  # a table deleted between the two reads, or one we may not describe
            continue
        tags = next((t.result or {} for t in children(described)), {}).get("Tags")
        name = table.get("TableName") or described.params.get("TableName")
        rows.append(
            row(
                account,
                region,
                "dynamodb:table",
                id=name,
                name=name,
                tags=tags,
                state=(table.get("TableStatus") or "").lower() or None,
                details={
                    "items": table.get("ItemCount"),
                    "billing": (table.get("BillingModeSummary") or {}).get("BillingMode"),
                },
            )
        )
    return rows


DYNAMODB_TABLE = ResourceType(
    type_id="dynamodb:table",
    singular="DynamoDB table",
    plural="DynamoDB tables",
    words=(
        "dynamodb",
        "dynamodb table",
        "dynamo",
        "dynamo table",
        "ddb",
        "ddb table",
        "table",
        "nosql table",
        "dynamodb database",
        "dynamo database",
        "dynamo db",
        "dynamo db table",
    ),
    qualifiers=("dynamodb", "dynamo", "ddb"),
    read=_dynamodb_read,
    rows=dynamodb_tables,
    states=(
        "creating",
        "updating",
        "deleting",
        "active",
        "inaccessible_encryption_credentials",
        "archiving",
        "archived",
    ),
    state_concepts={
        "running": ("active",),
        "creating": ("creating",),
        "updating": ("updating",),
        "deleting": ("deleting",),
        "archived": ("archived",),
    },
    name_is_id=True,
    arn_resource="table",
)
