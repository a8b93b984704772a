"""Containers: ECS clusters and services, EKS clusters and node groups."""

from __future__ import annotations

from datetime import UTC, datetime

from opsagent.access import Read, ReadResult
from opsagent.graph.catalogue.attributes import Attribute, iso_time
from opsagent.graph.catalogue.common import ResourceType, children, fan_out, row
from opsagent.graph.catalogue.lifecycle import kubernetes_outdated
from opsagent.graph.models import ResourceQuery
from opsagent.registry import Account

# ----- ECS clusters -----


def _ecs_clusters_read(region: str, q: ResourceQuery) -> Read:
    describe = Read(
        service="ecs",
        operation="DescribeClusters",
        region=region,
        params={"include": ["TAGS"]},
        bind={"clusters": "item"},
    )
    return Read(
        service="ecs",
        operation="ListClusters",
        region=region,
        then=[fan_out("clusterArns", describe, batch=100)],
    )  # DescribeClusters: ≤100


def ecs_clusters(account: Account, region: str, q: ResourceQuery, found: ReadResult):
    return [
        row(
            account,
            region,
            "ecs:cluster",
            id=c["clusterName"],
            name=c["clusterName"],
            state=(c.get("status") or "").lower() or None,
            tags=c.get("tags"),
            details={
                "services": c.get("activeServicesCount"),
                "running_tasks": c.get("runningTasksCount"),
                "arn": c.get("clusterArn"),
            },
        )
        for batch in children(found)
        for c in (batch.result or {}).get("clusters", [])
    ]


ECS_CLUSTER = ResourceType(
    type_id="ecs:cluster",
    singular="ECS cluster",
    plural="ECS clusters",
    words=(
        "ecs cluster",
        "ecs",
        "container cluster",
        "fargate cluster",
        "docker cluster",
        "ecs fargate cluster",
        "amazon ecs",
        "aws ecs",
        "elastic container service",
    ),
    qualifiers=("ecs", "amazon ecs", "aws ecs"),
    read=_ecs_clusters_read,
    rows=ecs_clusters,
    states=("active", "provisioning", "deprovisioning", "failed", "inactive"),
    state_concepts={
        "running": ("active",),
        "creating": ("provisioning",),
        "deleting": ("deprovisioning",),
        "failed": ("failed",),
        "inactive": ("inactive",),
    },
    name_is_id=True,
    arn_resource="cluster",
)

# ----- ECS services -----


def _ecs_services_read(region: str, q: ResourceQuery) -> Read:
    describe = Read(
        service="ecs",
        operation="DescribeServices",
        region=region,
        params={"include": ["TAGS"]},
        bind={"cluster": "parent.cluster", "services": "item"},
    )
    services = Read(
        service="ecs",
        operation="ListServices",
        region=region,
        bind={"cluster": "item"},
        then=[fan_out("serviceArns", describe, batch=10)],
    )  # DescribeServices: ≤10
    return Read(
        service="ecs",
        operation="ListClusters",
        region=region,
        then=[fan_out("clusterArns", services)],
    )


def ecs_services(account: Account, region: str, q: ResourceQuery, found: ReadResult):
    rows = []
    for listed in children(found):
        cluster = str(listed.params.get("cluster", "")).rsplit("/", 1)[-1]
        for batch in children(listed):
            for s in (batch.result or {}).get("services", []):
                rows.append(
                    row(
                        account,
                        region,
                        "ecs:service",
                        id=s["serviceName"],
                        name=s["serviceName"],
                        state=(s.get("status") or "").lower() or None,
                        tags=s.get("tags"),
                        details={
                            "cluster": cluster,
                            "desired": s.get("desiredCount"),
                            "running": s.get("runningCount"),
                            "launch_type": s.get("launchType"),
                        },
                    )
                )
    return rows


ECS_SERVICE = ResourceType(
    type_id="ecs:service",
    singular="ECS service",
    plural="ECS services",
    words=("ecs service", "container service", "fargate service", "ecs fargate service"),
    read=_ecs_services_read,
    rows=ecs_services,
    states=("active", "draining", "inactive"),
    state_concepts={
        "running": ("active",),
        "draining": ("draining",),
        "inactive": ("inactive",),
    },
    parent="ecs:cluster",
    name_is_id=True,
    arn_resource="service",
    arn_name_part=1,  # service/<cluster>/<name>
)

# ----- EKS clusters -----


def _eks_clusters_read(region: str, q: ResourceQuery) -> Read:
    describe = Read(
        service="eks", operation="DescribeCluster", region=region, bind={"name": "item"}
    )
    return Read(
        service="eks", operation="ListClusters", region=region, then=[fan_out("clusters", describe)]
    )


def eks_clusters(account: Account, region: str, q: ResourceQuery, found: ReadResult):
    rows = []
    today = datetime.now(UTC).date()
    for described in children(found):
        c = (described.result or {}).get("cluster")
        if not c:
            continue
        name = c.get("name") or described.params.get("name")
        rows.append(
            row(
                account,
                region,
                "eks:cluster",
                id=name,
                name=name,
                state=(c.get("status") or "").lower() or None,
                tags=c.get("tags"),
                details={
                    "version": c.get("version"),
                    "version_outdated": kubernetes_outdated(c.get("version"), today),
                    "endpoint": c.get("endpoint"),
                    "platform_version": c.get("platformVersion"),
                    "created": iso_time(c.get("createdAt")),
                    "arn": c.get("arn"),
                },
            )
        )
    return rows


EKS_CLUSTER = ResourceType(
    type_id="eks:cluster",
    singular="EKS cluster",
    plural="EKS clusters",
    words=(
        "eks cluster",
        "eks",
        "kubernetes cluster",
        "k8s cluster",
        "kubernetes",
        "k8s",
        "kube cluster",
        "eks kubernetes cluster",
        "amazon eks",
        "aws eks",
        "elastic kubernetes service",
    ),
    qualifiers=("eks", "k8s", "kubernetes", "amazon eks", "aws eks"),
    read=_eks_clusters_read,
    rows=eks_clusters,
    states=("creating", "active", "deleting", "failed", "updating", "pending"),
    state_concepts={
        "running": ("active",),
        "creating": ("creating",),
        "pending": ("pending",),
        "deleting": ("deleting",),
        "failed": ("failed",),
        "updating": ("updating",),
    },
    name_is_id=True,
    arn_resource="cluster",
    attributes=(
        Attribute(
            "version",
            "Kubernetes version",
            "version",
            ("version", "kubernetes version", "k8s version"),
        ),
        Attribute(
            "version_outdated",
            "outdated Kubernetes version",
            "bool",
            ("outdated", "outdated version", "end of support"),
            true_phrase="on an outdated Kubernetes version",
            false_phrase="on a supported Kubernetes version",
            about="version",
        ),
        Attribute(
            "created", "created", "time", ("created", "creation time", "age"), verb="created"
        ),
    ),
    age_attribute="created",
)

# ----- EKS node groups -----


def _eks_nodegroups_read(region: str, q: ResourceQuery) -> Read:
    describe = Read(
        service="eks",
        operation="DescribeNodegroup",
        region=region,
        bind={"clusterName": "parent.clusterName", "nodegroupName": "item"},
    )
    nodegroups = Read(
        service="eks",
        operation="ListNodegroups",
        region=region,
        bind={"clusterName": "item"},
        then=[fan_out("nodegroups", describe)],
    )
    return Read(
        service="eks",
        operation="ListClusters",
        region=region,
        then=[fan_out("clusters", nodegroups)],
    )


def eks_nodegroups(account: Account, region: str, q: ResourceQuery, found: ReadResult):
    rows = []
    for listed in children(found):
        for described in children(listed):
            ng = (described.result or {}).get("nodegroup")
            if not ng:
                continue
            scaling = ng.get("scalingConfig") or {}
            name = ng.get("nodegroupName") or described.params.get("nodegroupName")
            rows.append(
                row(
                    account,
                    region,
                    "eks:nodegroup",
                    id=name,
                    name=name,
                    state=(ng.get("status") or "").lower() or None,
                    tags=ng.get("tags"),
                    details={
                        "cluster": described.params.get("clusterName"),
                        "instance_types": ng.get("instanceTypes"),
                        "desired": scaling.get("desiredSize"),
                        "min": scaling.get("minSize"),
                        "max": scaling.get("maxSize"),
                    },
                )
            )
    return rows


EKS_NODEGROUP = ResourceType(
    type_id="eks:nodegroup",
    singular="EKS node group",
    plural="EKS node groups",
    words=(
        "node group",
        "nodegroup",
        "eks node group",
        "eks nodegroup",
        "worker node group",
        "worker group",
        "kubernetes node group",
        "k8s node group",
        "managed node group",
        "eks managed node group",
        "eks worker node group",
        "worker nodegroup",
        "node pool",
    ),
    read=_eks_nodegroups_read,
    rows=eks_nodegroups,
    states=(
        "creating",
        "active",
        "updating",
        "deleting",
        "create_failed",
        "delete_failed",
        "degraded",
    ),
    state_concepts={
        "running": ("active",),
        "creating": ("creating",),
        "updating": ("updating",),
        "deleting": ("deleting",),
        "failed": ("create_failed", "delete_failed"),
        "degraded": ("degraded",),
    },
    parent="eks:cluster",
    name_is_id=True,
    arn_resource="nodegroup",
    arn_name_part=1,  # nodegroup/<cluster>/<name>/<uuid>
)
