"""What every declaration of the catalogue fills in, and the helpers its reads and rows share.

A ``ResourceType`` is everything the agent knows about one kind of AWS resource: its names
(in sentences and in questions), how it is read from one account and region (``read``: one
``Read`` per region, fan-outs for per-item reads included, as data) and how the answer
becomes ``Resource`` rows (``rows``), the states it reports and what the planner's state
words mean for it, and the conditions it can be checked for. The account worker sends every
type's reads for every region as ONE script, so a type never calls AWS itself. Filtering by
state, tag, name and condition happens afterwards, in one place (``matches``), so every
resource type filters the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from opsagent.access import FanOut, Read, ReadResult
from opsagent.graph.catalogue.attributes import Attribute, filter_holds, tags_hold
from opsagent.graph.models import Resource, ResourceQuery
from opsagent.registry import Account

ReadFor = Callable[[str, ResourceQuery], Read]
RowsFrom = Callable[[Account, str, ResourceQuery, ReadResult], list[Resource]]

# Global services are read once per account, from this region; rows that belong to no
# region (IAM roles) say GLOBAL.
GLOBAL_REGION = "us-east-1"
GLOBAL = "global"


@dataclass(frozen=True)
class Condition:
    """Something a resource type can be checked for, beyond its state."""

    name: str  # as a query carries it and rows report it: "unattached"
    concept: str  # what the planner's words mean, shared across types: "unused"
    label: str  # in a summary: "open to the world (0.0.0.0/0)"


@dataclass(frozen=True)
class ResourceType:
    """One resource type, declared once: everything else about it is derived from this."""

    type_id: str  # "ec2:instance": service, then the resource
    singular: str  # in sentences: "EC2 instance"
    plural: str  # "EC2 instances"
    # The nouns people use for it, lower-case, in the singular (the planner also tries each
    # word's singular, so "instances" finds "instance").
    words: tuple[str, ...]
    read: ReadFor  # (region, query) -> the read, fan-outs included
    rows: RowsFrom  # (account, region, query, its result) -> rows
    # Of its words, the service names that, right before another resource noun, decide that
    # noun's type: "RDS servers", "EKS nodes".
    qualifiers: tuple[str, ...] = ()
    is_global: bool = False  # one read per account, not per region
    # Every lifecycle state it reports, lower-case as AWS spells it (rows lower-case what AWS
    # returns), in AWS's order; () for a type without states.
    states: tuple[str, ...] = ()
    # What each of the planner's state concepts means for it, as states it reports:
    # "running" is its up-and-serving state (EC2 running, RDS available, ACTIVE for Lambda,
    # ECS, EKS...). A concept it lacks gets a refusal, not a guess. Order decides which
    # concept carries a filter over to another type in a follow-up.
    state_concepts: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    conditions: tuple[Condition, ...] = ()
    # The type it lives inside ("ecs:service" in "ecs:cluster"); its reads visit every parent.
    parent: str | None = None
    name_is_id: bool = False  # its id is its name: "describe the EKS cluster prod-main"
    # Shapes of its ids ("i-0abc1234"), as regular expressions over the lower-case word.
    id_patterns: tuple[str, ...] = ()
    # Its ARNs: the resource kind after the service ("instance" in
    # arn:aws:ec2:...:instance/i-0abc), "" when the whole resource part is the name (S3);
    # and which part of the resource path after that kind is the id rows carry.
    arn_resource: str | None = None
    arn_name_part: int = -1
    # What its rows report beyond state and tags (in ``details``, by name): what attribute
    # filters, rankings, groupings and totals can use (attributes.py).
    attributes: tuple[Attribute, ...] = ()
    # The time "oldest", "newest", "in the last 7 days" and "older than 90 days" mean.
    age_attribute: str | None = None

    def attribute(self, name: str) -> Attribute | None:
        return next((a for a in self.attributes if a.name == name), None)


# ----- helpers of reads -----


def single_read(service: str, operation: str) -> ReadFor:
    """A type read by one operation with no parameters."""
    return lambda region, q: Read(service=service, operation=operation, region=region)


def needs_tags(q: ResourceQuery) -> bool:
    """Per-item tag reads cost one call per resource: only when a filter or describe needs them."""
    return bool(q.tags or q.tag_keys or q.missing_tags or q.untagged) or q.intent == "describe"


def needs_attributes(q: ResourceQuery, *names: str) -> bool:
    """Attributes that cost a read per resource (S3's public access block): only when asked."""
    return q.intent == "describe" or any(a in names for a in q.asked_attributes())


def fan_out(each: str, *reads: Read, **options: Any) -> FanOut:
    return FanOut(each=each, reads=list(reads), **options)


def children(result: ReadResult, fan: int = 0) -> list[ReadResult]:
    return result.children[fan] if len(result.children) > fan else []


# ----- helpers of rows -----


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


def row(
    account: Account, region: str, resource_type: str, *, tags: Any = None, **fields: Any
) -> Resource:
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


def matches(
    resource: Resource,
    query: ResourceQuery,
    declared: ResourceType | None = None,
    now: datetime | None = None,
) -> bool:
    """Whether a row satisfies the query's filters (all of them); attribute filters need
    the row's type (``declared``) and the time of the question (``now``, "last 7 days")."""
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
    if not tags_hold(resource, query):
        return False
    for wanted in query.filters:
        attribute = declared.attribute(wanted.attribute) if declared else None
        if attribute is None:  # a plan the planners checked never names an unknown one
            return False
        have = resource.details.get(attribute.name)
        if not filter_holds(attribute.kind, have, wanted, now or datetime.now(UTC)):
            return False
    return True
