"""Compute: EC2 instances and Lambda functions."""

from __future__ import annotations

from datetime import UTC, datetime

from opsagent.access import Read, ReadResult
from opsagent.graph.catalogue.attributes import Attribute, instance_family, iso_time
from opsagent.graph.catalogue.common import (
    ResourceType,
    children,
    fan_out,
    needs_tags,
    row,
    single_read,
)
from opsagent.graph.catalogue.lifecycle import runtime_deprecated
from opsagent.graph.models import ResourceQuery
from opsagent.registry import Account

# ----- EC2 instances -----


def _platform(inst: dict) -> str:
    """EC2 names only Windows in Platform; PlatformDetails says "Linux/UNIX" and the rest."""
    if str(inst.get("Platform") or "").lower() == "windows":
        return "windows"
    details = str(inst.get("PlatformDetails") or "").lower()
    return "windows" if "windows" in details else "linux"


def ec2_instances(account: Account, region: str, q: ResourceQuery, found: ReadResult):
    return [
        row(
            account,
            region,
            "ec2:instance",
            id=inst["InstanceId"],
            state=inst.get("State", {}).get("Name"),
            tags=inst.get("Tags"),
            details={
                "instance_type": inst.get("InstanceType"),
                "instance_family": instance_family(inst.get("InstanceType")),
                "platform": _platform(inst),
                "availability_zone": inst.get("Placement", {}).get("AvailabilityZone"),
                "private_ip": inst.get("PrivateIpAddress"),
                "launch_time": iso_time(inst.get("LaunchTime")),
                "image_id": inst.get("ImageId"),
            },
        )
        for reservation in found.data.get("Reservations", [])
        for inst in reservation.get("Instances", [])
    ]


EC2_INSTANCE = ResourceType(
    type_id="ec2:instance",
    singular="EC2 instance",
    plural="EC2 instances",
    words=(
        "instance",
        "ec2",
        "ec2 instance",
        "vm",
        "virtual machine",
        "virtual server",
        "server",
        "box",
        "host",
        "machine",
        "compute instance",
        "ec2 compute",
        "ec2 node",
        "ec2 vm",
        "ec2 server",
        "ec2 box",
        "ec2 host",
        "ec2 machine",
        "compute",
        "amazon ec2",
        "aws ec2",
        "elastic compute cloud",
        "inst",
        "ec2 inst",
    ),
    qualifiers=("ec2", "amazon ec2", "aws ec2"),
    read=single_read("ec2", "DescribeInstances"),
    rows=ec2_instances,
    states=("pending", "running", "shutting-down", "terminated", "stopping", "stopped"),
    state_concepts={
        "running": ("running",),
        "stopped": ("stopped",),
        "pending": ("pending",),
        "starting": ("pending",),
        "stopping": ("stopping",),
        "terminated": ("terminated",),
        "deleted": ("terminated",),
        "terminating": ("shutting-down",),
        "deleting": ("shutting-down",),
        "creating": ("pending",),
    },
    id_patterns=(r"^i-[0-9a-f]{4,17}$",),
    arn_resource="instance",
    attributes=(
        Attribute("instance_type", "instance type", "text", ("type", "instance type", "size")),
        Attribute("instance_family", "instance family", "text", ("family", "instance family")),
        Attribute("platform", "platform", "text", ("platform", "os", "operating system")),
        Attribute(
            "launch_time",
            "launch time",
            "time",
            ("launch time", "launched", "age", "created"),
            verb="launched",
        ),
    ),
    age_attribute="launch_time",
)

# ----- Lambda functions -----


def _lambda_read(region: str, q: ResourceQuery) -> Read:
    # ListFunctions carries no tags: ListTags per function, only when they are needed.
    tags = Read(
        service="lambda", operation="ListTags", region=region, bind={"Resource": "item.FunctionArn"}
    )
    return Read(
        service="lambda",
        operation="ListFunctions",
        region=region,
        then=[fan_out("Functions", tags)] if needs_tags(q) else [],
    )


def lambda_functions(account: Account, region: str, q: ResourceQuery, found: ReadResult):
    tags = {t.params.get("Resource"): (t.result or {}).get("Tags") for t in children(found)}
    today = datetime.now(UTC).date()
    return [
        row(
            account,
            region,
            "lambda:function",
            id=fn["FunctionName"],
            name=fn["FunctionName"],
            state=(fn.get("State") or "active").lower(),
            tags=tags.get(fn.get("FunctionArn")),
            details={
                "runtime": fn.get("Runtime"),
                "runtime_deprecated": runtime_deprecated(fn.get("Runtime"), today),
                "memory_mb": fn.get("MemorySize"),
                "last_modified": iso_time(fn.get("LastModified")),
                "arn": fn.get("FunctionArn"),
            },
        )
        for fn in found.data.get("Functions", [])
    ]


LAMBDA_FUNCTION = ResourceType(
    type_id="lambda:function",
    singular="Lambda function",
    plural="Lambda functions",
    words=(
        "function",
        "lambda",
        "lambda function",
        "serverless function",
        "aws lambda",
        "lambda fn",
        "serverless",
        "amazon lambda",
        "fn",
        "func",
        "lambda func",
    ),
    qualifiers=("lambda", "serverless", "aws lambda", "amazon lambda"),
    read=_lambda_read,
    rows=lambda_functions,
    states=("pending", "active", "inactive", "failed"),
    state_concepts={
        "running": ("active",),
        "pending": ("pending",),
        "creating": ("pending",),
        "inactive": ("inactive",),
        "failed": ("failed",),
    },
    name_is_id=True,
    arn_resource="function",
    attributes=(
        Attribute("runtime", "runtime", "text", ("runtime", "language")),
        Attribute(
            "runtime_deprecated",
            "deprecated runtime",
            "bool",
            ("deprecated", "deprecated runtime"),
            true_phrase="on a deprecated runtime",
            false_phrase="on a supported runtime",
            about="runtime",
        ),
        Attribute("memory_mb", "memory", "number", ("memory", "memory size", "ram"), unit="MB"),
        Attribute(
            "last_modified",
            "last modified",
            "time",
            ("last modified", "modified", "updated"),
            verb="last modified",
        ),
    ),
    age_attribute="last_modified",
)
