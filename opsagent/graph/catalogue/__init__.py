"""The resource catalogue: every resource type the agent can answer about, each declared once.

A type is one ``ResourceType`` in the module of its family (``compute``, ``storage``,
``containers``, ``network``, ``management``): its names, the words people use for it, how
it is read and turned into rows, its states and what the planner's state words mean for
it, its conditions. ``CATALOGUE`` lists them in the order answers and refusals name them;
every other table about resource types is derived from it, here (``RESOURCE_TYPES``,
``CONDITIONS``, ``TYPE_STATES``, ``CATALOGUE_READS``) or in the planner's vocabulary (its
resource words, state and condition concepts, id shapes, ARN kinds). To add a type, declare
it in its family and list it below; ``tests/unit/test_catalogue.py`` checks nothing is left out.
"""

from __future__ import annotations

from opsagent.graph.catalogue.common import (
    GLOBAL,
    GLOBAL_REGION,
    Condition,
    ResourceType,
    matches,
    row,
    tag_dict,
)
from opsagent.graph.catalogue.compute import EC2_INSTANCE, LAMBDA_FUNCTION
from opsagent.graph.catalogue.containers import ECS_CLUSTER, ECS_SERVICE, EKS_CLUSTER, EKS_NODEGROUP
from opsagent.graph.catalogue.management import CLOUDFORMATION_STACK, IAM_ROLE
from opsagent.graph.catalogue.network import ELASTIC_IP, SECURITY_GROUP, VPC
from opsagent.graph.catalogue.storage import DYNAMODB_TABLE, EBS_VOLUME, RDS_INSTANCE, S3_BUCKET
from opsagent.graph.models import Resource, ResourceQuery

# type id -> its declaration, in the order answers, refusals and the model's prompt list them.
CATALOGUE: dict[str, ResourceType] = {
    declared.type_id: declared
    for declared in (
        EC2_INSTANCE,
        S3_BUCKET,
        RDS_INSTANCE,
        LAMBDA_FUNCTION,
        ECS_CLUSTER,
        EKS_CLUSTER,
        ECS_SERVICE,
        EKS_NODEGROUP,
        EBS_VOLUME,
        ELASTIC_IP,
        DYNAMODB_TABLE,
        VPC,
        SECURITY_GROUP,
        CLOUDFORMATION_STACK,
        IAM_ROLE,
    )
}

# ----- derived -----

# type -> (singular, plural), the words used in sentences.
RESOURCE_TYPES: dict[str, tuple[str, str]] = {
    type_id: (declared.singular, declared.plural) for type_id, declared in CATALOGUE.items()
}
# condition a query may carry -> the resource type that understands it.
CONDITIONS: dict[str, str] = {
    condition.name: type_id
    for type_id, declared in CATALOGUE.items()
    for condition in declared.conditions
}
# type -> every lifecycle state it reports; types without states are absent.
TYPE_STATES: dict[str, tuple[str, ...]] = {
    type_id: declared.states for type_id, declared in CATALOGUE.items() if declared.states
}


def _every_read() -> frozenset[tuple[str, str]]:
    """(service, operation) of every read any type can make, with tags and describe on."""
    reads = set()
    for type_id, declared in CATALOGUE.items():
        widest = ResourceQuery(resource_type=type_id, intent="describe", tags={"k": "v"})
        reads |= {(r.service, r.operation) for r in declared.read(GLOBAL_REGION, widest).walk()}
    return frozenset(reads)


# The guard's allow-list for the catalogue: these reads and no others.
CATALOGUE_READS = _every_read()


def shown_details(row: Resource, queries: list[ResourceQuery]) -> dict:
    """What of a row's details an answer shows: everything for a type a query describes;
    else the attributes its queries asked about, each after the one that explains it
    (runtime before "deprecated runtime"); else nothing, so lists and counts stay compact."""
    same_type = [q for q in queries if q.resource_type == row.resource_type]
    if any(q.intent == "describe" for q in same_type):
        return row.details
    declared = CATALOGUE.get(row.resource_type)
    shown: list[str] = []
    for query in same_type:
        for name in query.asked_attributes():
            attribute = declared.attribute(name) if declared else None
            if attribute is not None and attribute.about:
                shown.append(attribute.about)
            shown.append(name)
    return {name: row.details.get(name) for name in dict.fromkeys(shown)}


__all__ = [
    "CATALOGUE",
    "CATALOGUE_READS",
    "CONDITIONS",
    "GLOBAL",
    "GLOBAL_REGION",
    "RESOURCE_TYPES",
    "TYPE_STATES",
    "Condition",
    "ResourceType",
    "matches",
    "row",
    "shown_details",
    "tag_dict",
]
