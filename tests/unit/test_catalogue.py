"""The resource catalogue: each resource type declared once, every other table derived from
it, nothing the planner knows left without a declared type, every read guard-clean."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from opsagent.access import ReadResult, check_read
from opsagent.graph import worker
from opsagent.graph.catalogue import (
    CATALOGUE,
    CATALOGUE_READS,
    CONDITIONS,
    RESOURCE_TYPES,
    TYPE_STATES,
    ResourceType,
    compute,
    containers,
    management,
    network,
    storage,
)
from opsagent.graph.catalogue.phrases import describe_query
from opsagent.graph.models import ResourceQuery
from opsagent.graph.planner import vocabulary
from opsagent.graph.planner.items import Kind
from opsagent.graph.planner.phrase_index import STATIC, Node
from opsagent.registry import Account

FAMILIES = (compute, storage, containers, network, management)
TYPES = list(CATALOGUE)
REGIONS = ("us-east-1", "us-west-2", "eu-central-1")


def _queries(type_id: str) -> list[ResourceQuery]:
    """The shapes of query that change what a type reads: plain, describe, tag filters."""
    return [
        ResourceQuery(resource_type=type_id),
        ResourceQuery(resource_type=type_id, intent="count"),
        ResourceQuery(resource_type=type_id, intent="describe"),
        ResourceQuery(resource_type=type_id, tags={"team": "payments"}),
    ]


# ----- each type declared once, completely -----


def test_every_declared_type_is_in_the_catalogue_once():
    declared = [
        value
        for family in FAMILIES
        for value in vars(family).values()
        if isinstance(value, ResourceType)
    ]
    assert sorted(t.type_id for t in declared) == sorted(CATALOGUE)
    assert len({t.type_id for t in declared}) == len(declared)
    for type_id, resource_type in CATALOGUE.items():
        assert resource_type.type_id == type_id


@pytest.mark.parametrize("type_id", TYPES)
def test_every_type_has_names_words_a_read_and_rows(type_id):
    declared = CATALOGUE[type_id]
    service, _, resource = type_id.partition(":")
    assert service and resource
    assert declared.singular and declared.plural and declared.singular != declared.plural
    assert declared.words, "the planner needs at least one noun for it"
    assert all(word == word.lower().strip() and "  " not in word for word in declared.words)
    assert set(declared.qualifiers) <= set(declared.words)
    assert callable(declared.read) and callable(declared.rows)
    account = Account(
        id="222222222222",
        name="Production",
        alias="production",
        environment="production",
        regions=["us-east-1"],
        role_arn="arn:aws:iam::222222222222:role/OpsAgentReadOnly",
    )
    for query in _queries(type_id):
        read = declared.read("us-east-1", query)
        assert read.region == "us-east-1"
        # Nothing found is no rows, not an error.
        assert declared.rows(account, "us-east-1", query, ReadResult(result={})) == []


@pytest.mark.parametrize("type_id", TYPES)
def test_states_and_conditions_are_the_types_own(type_id):
    declared = CATALOGUE[type_id]
    assert len(set(declared.states)) == len(declared.states)
    for concept, states in declared.state_concepts.items():
        assert concept in vocabulary.STATE_WORDS, f"no words say {concept!r}"
        assert states and set(states) <= set(declared.states), (type_id, concept)
    for condition in declared.conditions:
        assert condition.concept in vocabulary.CONDITION_WORDS, condition
        assert condition.name and condition.label
    if declared.parent is not None:
        assert declared.parent in CATALOGUE and declared.parent != type_id


def test_no_noun_names_two_types():
    owners: dict[str, str] = {}
    for type_id, declared in CATALOGUE.items():
        for word in declared.words:
            assert owners.setdefault(word, type_id) == type_id, (word, owners[word], type_id)


# ----- everything the planner knows belongs to a declared type -----


def test_every_state_the_planner_knows_belongs_to_a_declared_type():
    used = {concept for declared in CATALOGUE.values() for concept in declared.state_concepts}
    assert set(vocabulary.STATE_WORDS) == used
    # Any other state phrase is a state in AWS's own spelling ("shutting-down") of some type.
    every_state = {state for declared in CATALOGUE.values() for state in declared.states}
    for node in _all_nodes():
        state = node.meanings.get(Kind.STATE)
        if state is not None:
            assert state.value in vocabulary.STATE_WORDS or state.value in every_state, state


def test_every_condition_the_planner_knows_belongs_to_a_declared_type():
    assert set(vocabulary.CONDITION_WORDS) == set(vocabulary.CONDITIONS_BY_CONCEPT)
    for concept, by_type in vocabulary.CONDITIONS_BY_CONCEPT.items():
        for type_id, condition in by_type.items():
            assert CONDITIONS[condition] == type_id, (concept, condition)


def test_every_type_the_planner_names_is_declared():
    for candidates in vocabulary.AMBIGUOUS_WORDS.values():
        assert set(candidates) <= set(CATALOGUE)
    assert set(vocabulary.ARN_TYPES.values()) == set(CATALOGUE)  # every type has its ARN
    assert {type_id for _, type_id in vocabulary.ID_SHAPES} <= set(CATALOGUE)
    assert {
        meaning.value
        for node in _all_nodes()
        for kind, meaning in node.meanings.items()
        if kind is Kind.RESOURCE
    } == set(CATALOGUE)


def _all_nodes() -> Iterator[Node]:
    stack = [STATIC.root]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(node.children.values())


# ----- derived tables cover exactly the declared types -----


def test_derived_tables_cover_exactly_the_declared_types():
    assert list(RESOURCE_TYPES) == list(CATALOGUE)
    assert all(RESOURCE_TYPES[t] == (d.singular, d.plural) for t, d in CATALOGUE.items())
    assert set(CONDITIONS) == {c.name for d in CATALOGUE.values() for c in d.conditions}
    assert set(CONDITIONS.values()) <= set(CATALOGUE)
    assert set(TYPE_STATES) == {t for t, d in CATALOGUE.items() if d.states}
    assert worker.CATALOGUE is CATALOGUE  # the account worker reads every type, and no other
    assert set(CATALOGUE_READS) == {
        (r.service, r.operation)
        for t, d in CATALOGUE.items()
        for q in _queries(t)
        for r in d.read("us-east-1", q).walk()
    }


# ----- every read passes the guard with the catalogue's allow-list -----


@pytest.mark.parametrize("type_id", TYPES)
def test_every_read_passes_the_guard_with_the_catalogue_allow_list(type_id):
    declared = CATALOGUE[type_id]
    for region in REGIONS:
        for query in _queries(type_id):
            assert check_read(declared.read(region, query), allowed=CATALOGUE_READS) is None


# ----- one phrase for a query -----


def test_a_query_is_said_one_way():
    volumes = ResourceQuery(
        resource_type="ec2:volume", conditions=["unattached"], tags={"team": "payments"}
    )
    assert describe_query(volumes, 2) == "EBS volumes that are unattached tagged team=payments"
    running = ResourceQuery(resource_type="ec2:instance", states=["running"], name_contains="web")
    assert describe_query(running, 1) == "running EC2 instance whose name contains 'web'"
    cluster = ResourceQuery(resource_type="eks:cluster", ids=["prod-main"])
    assert describe_query(cluster) == "EKS cluster prod-main"
    stopped = ResourceQuery(resource_type="rds:db-instance", states=["stopped", "stopping"])
    assert describe_query(stopped) == "RDS instances with state stopped or stopping"
