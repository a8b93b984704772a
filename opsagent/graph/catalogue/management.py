"""Management and identity: CloudFormation stacks and IAM roles."""

from __future__ import annotations

from opsagent.access import ReadResult
from opsagent.graph.catalogue.common import GLOBAL, ResourceType, row, single_read
from opsagent.graph.models import ResourceQuery
from opsagent.registry import Account

# ----- CloudFormation stacks -----


def cloudformation_stacks(account: Account, region: str, q: ResourceQuery, found: ReadResult):
    return [
        row(
            account,
            region,
            "cloudformation:stack",
            id=s["StackName"],
            name=s["StackName"],
            state=(s.get("StackStatus") or "").lower() or None,
            tags=s.get("Tags"),
            details={"created": s.get("CreationTime"), "description": s.get("Description")},
        )
        for s in found.data.get("Stacks", [])
    ]


_STACK_STATES = (
    "create_in_progress",
    "create_failed",
    "create_complete",
    "rollback_in_progress",
    "rollback_failed",
    "rollback_complete",
    "delete_in_progress",
    "delete_failed",
    "delete_complete",
    "update_in_progress",
    "update_complete_cleanup_in_progress",
    "update_complete",
    "update_failed",
    "update_rollback_in_progress",
    "update_rollback_failed",
    "update_rollback_complete_cleanup_in_progress",
    "update_rollback_complete",
    "review_in_progress",
    "import_in_progress",
    "import_complete",
    "import_rollback_in_progress",
    "import_rollback_failed",
    "import_rollback_complete",
)

CLOUDFORMATION_STACK = ResourceType(
    type_id="cloudformation:stack",
    singular="CloudFormation stack",
    plural="CloudFormation stacks",
    words=(
        "stack",
        "cloudformation",
        "cloudformation stack",
        "cfn",
        "cfn stack",
        "cf stack",
        "cloud formation stack",
        "cloud formation",
        "aws cloudformation",
    ),
    qualifiers=("cloudformation", "cfn"),
    read=single_read("cloudformation", "DescribeStacks"),
    rows=cloudformation_stacks,
    states=_STACK_STATES,
    state_concepts={
        "complete": ("create_complete", "update_complete", "import_complete"),
        "failed": tuple(s for s in _STACK_STATES if s.endswith("_failed")),
        "in-progress": tuple(s for s in _STACK_STATES if s.endswith("_in_progress")),
        "creating": ("create_in_progress",),
        "updating": ("update_in_progress",),
        "deleting": ("delete_in_progress",),
        "deleted": ("delete_complete",),
        "rolled-back": (
            "rollback_complete",
            "update_rollback_complete",
            "import_rollback_complete",
        ),
    },
    name_is_id=True,
    arn_resource="stack",
    arn_name_part=0,  # stack/<name>/<uuid>
)

# ----- IAM roles -----


def iam_roles(account: Account, region: str, q: ResourceQuery, found: ReadResult):
    return [
        row(
            account,
            GLOBAL,
            "iam:role",
            id=r["RoleName"],
            name=r["RoleName"],
            state=None,
            tags=r.get("Tags"),
            details={"arn": r.get("Arn"), "path": r.get("Path"), "created": r.get("CreateDate")},
        )
        for r in found.data.get("Roles", [])
    ]


IAM_ROLE = ResourceType(
    type_id="iam:role",
    singular="IAM role",
    plural="IAM roles",
    words=("role", "iam role", "aws role", "iam service role", "service role"),
    read=single_read("iam", "ListRoles"),
    rows=iam_roles,
    is_global=True,
    name_is_id=True,
    arn_resource="role",
)
