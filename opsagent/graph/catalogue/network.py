"""Network: Elastic IPs, VPCs and security groups."""

from __future__ import annotations

from opsagent.access import ReadResult
from opsagent.graph.catalogue.common import Condition, ResourceType, row, single_read
from opsagent.graph.models import ResourceQuery
from opsagent.registry import Account

# ----- Elastic IPs -----


def elastic_ips(account: Account, region: str, q: ResourceQuery, found: ReadResult):
    rows = []
    for addr in found.data.get("Addresses", []):
        associated = bool(addr.get("AssociationId") or addr.get("InstanceId"))
        rows.append(
            row(
                account,
                region,
                "ec2:elastic-ip",
                id=addr.get("AllocationId") or addr["PublicIp"],
                state="associated" if associated else "unassociated",
                tags=addr.get("Tags"),
                details={
                    "public_ip": addr.get("PublicIp"),
                    "instance": addr.get("InstanceId"),
                    "conditions": {"unassociated": not associated},
                },
            )
        )
    return rows


ELASTIC_IP = ResourceType(
    type_id="ec2:elastic-ip",
    singular="Elastic IP",
    plural="Elastic IPs",
    words=(
        "elastic ip",
        "eip",
        "elastic ip address",
        "static ip",
        "static ip address",
        "ip",
        "ip address",
        "public ip",
        "public ip address",
        "elastic address",
        "eip address",
    ),
    read=single_read("ec2", "DescribeAddresses"),
    rows=elastic_ips,
    states=("associated", "unassociated"),
    state_concepts={"in-use": ("associated",)},
    conditions=(Condition("unassociated", concept="unused", label="unassociated"),),
    # An allocation id, or the address itself.
    id_patterns=(r"^eipalloc-[0-9a-f]{4,17}$", r"^\d{1,3}(\.\d{1,3}){3}$"),
    arn_resource="elastic-ip",
)

# ----- VPCs -----


def vpcs(account: Account, region: str, q: ResourceQuery, found: ReadResult):
    return [
        row(
            account,
            region,
            "ec2:vpc",
            id=vpc["VpcId"],
            state=vpc.get("State"),
            tags=vpc.get("Tags"),
            details={"cidr": vpc.get("CidrBlock"), "default": vpc.get("IsDefault")},
        )
        for vpc in found.data.get("Vpcs", [])
    ]


VPC = ResourceType(
    type_id="ec2:vpc",
    singular="VPC",
    plural="VPCs",
    words=(
        "vpc",
        "network",
        "virtual private cloud",
        "virtual network",
        "private network",
        "ec2 vpc",
    ),
    read=single_read("ec2", "DescribeVpcs"),
    rows=vpcs,
    states=("pending", "available"),
    state_concepts={"available": ("available",), "pending": ("pending",)},
    id_patterns=(r"^vpc-[0-9a-f]{4,17}$",),
    arn_resource="vpc",
)

# ----- security groups -----


def _open_to_world(group: dict) -> bool:
    for perm in group.get("IpPermissions", []):
        if any(r.get("CidrIp") == "0.0.0.0/0" for r in perm.get("IpRanges", [])):
            return True
        if any(r.get("CidrIpv6") == "::/0" for r in perm.get("Ipv6Ranges", [])):
            return True
    return False


def security_groups(account: Account, region: str, q: ResourceQuery, found: ReadResult):
    rows = []
    for sg in found.data.get("SecurityGroups", []):
        open_ports = sorted(
            {
                f"{p.get('IpProtocol')}:{p.get('FromPort', 'all')}"
                for p in sg.get("IpPermissions", [])
                if any(r.get("CidrIp") == "0.0.0.0/0" for r in p.get("IpRanges", []))
            }
        )
        rows.append(
            row(
                account,
                region,
                "ec2:security-group",
                id=sg["GroupId"],
                name=sg.get("GroupName"),
                state=None,
                tags=sg.get("Tags"),
                details={
                    "vpc": sg.get("VpcId"),
                    "description": sg.get("Description"),
                    "open_to_world": open_ports,
                    "conditions": {"open-to-world": _open_to_world(sg)},
                },
            )
        )
    return rows


SECURITY_GROUP = ResourceType(
    type_id="ec2:security-group",
    singular="security group",
    plural="security groups",
    words=(
        "security group",
        "sg",
        "firewall rule",
        "firewall",
        "ec2 security group",
        "vpc security group",
        "security group rule",
        "secgroup",
        "sec group",
        "security-group",
    ),
    read=single_read("ec2", "DescribeSecurityGroups"),
    rows=security_groups,
    conditions=(
        Condition("open-to-world", concept="open-to-world", label="open to the world (0.0.0.0/0)"),
    ),
    id_patterns=(r"^sg-[0-9a-f]{4,17}$",),
    arn_resource="security-group",
)
