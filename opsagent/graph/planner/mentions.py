"""Resource mentions: the resource nouns of a question, with a service name before a noun
merged into it ("RDS servers"), ambiguous nouns settled by the question's other words or the
previous turn ("clusters" with "kubernetes" nearby), and the ids that follow or precede
them ("describe instance i-0abc", "the prod-main cluster")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from opsagent.graph.catalogue import CATALOGUE
from opsagent.graph.models import Intent, Plan
from opsagent.graph.planner.items import Item, Kind
from opsagent.graph.planner.scan_state import identifier_like
from opsagent.graph.planner.tokens import Token
from opsagent.graph.planner.vocabulary import FAMILY_WORDS

if TYPE_CHECKING:
    from opsagent.graph.planner.reading import Reading

_RESOURCE_NOUNS = (Kind.RESOURCE, Kind.AMBIGUOUS)


@dataclass
class Mention:
    """A resource noun of the question, and the resource types it may name."""

    candidates: tuple[str, ...]  # one when the type is known; () once it is settled otherwise
    word: str
    item: int  # index of the item
    last: int = -1  # index of its last item ("RDS servers" is two); item when one

    def __post_init__(self) -> None:
        if self.last < 0:
            self.last = self.item


def family(resource_type: str) -> str:
    """ "ecs" for "ecs:cluster": the service a resource type belongs to."""
    return resource_type.split(":")[0]


def find_mentions(
    items: list[Item], used: set[int], reading: Reading, tokens: list[Token], previous: Plan | None
) -> list[Mention]:
    """Resource nouns, with qualifiers merged ("RDS servers") and ambiguity resolved.
    (parents.py then settles nouns that only place others: "node groups of the clusters".)"""
    mentions: list[Mention] = []
    index = 0
    while index < len(items):
        item = items[index]
        if item.kind not in _RESOURCE_NOUNS or id(item) in used:
            index += 1
            continue
        candidates = (item.value,) if item.kind is Kind.RESOURCE else item.extra
        following = items[index + 1] if index + 1 < len(items) else None
        if (
            item.kind is Kind.RESOURCE
            and "qualifier" in item.extra
            and following is not None
            and following.kind in _RESOURCE_NOUNS
            and following.start == item.end
            and "qualifier" not in following.extra
        ):
            # A service name before a noun decides the noun: "RDS servers", "EKS nodes".
            if following.kind is Kind.AMBIGUOUS:
                picked = tuple(c for c in following.extra if family(c) == family(item.value))
                candidates = picked or (item.value,)
            used.add(id(following))
            used.add(id(item))
            mentions.append(Mention(candidates, f"{item.text} {following.text}", index, index + 1))
            index += 2
            continue
        used.add(id(item))
        mentions.append(Mention(candidates, item.text, index))
        index += 1
    _settle_ambiguous(items, mentions, reading, tokens, previous)
    return mentions


def _settle_ambiguous(
    items: list[Item],
    mentions: list[Mention],
    reading: Reading,
    tokens: list[Token],
    previous: Plan | None,
) -> None:
    """Families the question (or the previous turn) talks about decide ambiguous nouns;
    a noun they do not decide is a problem that asks which was meant."""
    hinted = {FAMILY_WORDS[token.norm] for token in tokens if token.norm in FAMILY_WORDS}
    hinted |= {FAMILY_WORDS[token.base] for token in tokens if token.base in FAMILY_WORDS}
    known = {
        family(mention.candidates[0])
        for mention in mentions
        if items[mention.item].kind is Kind.RESOURCE
    }
    earlier = {family(q.resource_type) for q in previous.queries} if previous else set()
    for mention in mentions:
        item = items[mention.item]
        if mention.candidates == (item.value,) and item.kind is not Kind.AMBIGUOUS:
            continue
        for families in (hinted | known, earlier):
            picked = tuple(c for c in mention.candidates if family(c) in families)
            if len(picked) == 1:
                mention.candidates = picked
                break
        if (
            len(mention.candidates) != 1
            or item.kind is Kind.AMBIGUOUS
            and not ({family(c) for c in mention.candidates} & (hinted | known | earlier))
        ):
            options = [CATALOGUE[c].plural for c in item.extra]
            reading.problems.append(
                f"'{mention.word}' could mean {' or '.join(options)}; say which."
                if len(options) > 1
                else f"Do you mean {options[0]}? Say so, to be sure."
            )
            mention.candidates = ()


def ids_near_mentions(
    items: list[Item],
    used: set[int],
    mentions: list[Mention],
    reading: Reading,
    intent: Intent | None,
) -> None:
    """ "describe instance i-0abc", "the EKS cluster prod-main", "the prod-main cluster" """
    for mention in mentions:
        if len(mention.candidates) != 1:
            continue
        resource_type = mention.candidates[0]
        name_is_id = CATALOGUE[resource_type].name_is_id

        def takes(
            item: Item, resource_type: str = resource_type, name_is_id: bool = name_is_id
        ) -> bool:
            if item.kind is Kind.ID:
                return not item.extra or item.extra[0] == resource_type
            if item.kind not in (Kind.UNKNOWN, Kind.VALUE):
                return False
            if identifier_like(item.text) or item.kind is Kind.VALUE:
                return True
            return intent == "describe" and name_is_id

        index = mention.item + 1
        while index < len(items) and id(items[index]) not in used:
            item = items[index]
            if takes(item):
                reading.ids.append(
                    (item.text if item.kind is not Kind.ID else item.value, resource_type)
                )
                used.add(id(item))
                index += 1
                continue
            if (
                item.kind in (Kind.FILLER, Kind.BOUNDARY)
                and item.text.lower() in {"and", ",", "or"}
                and index + 1 < len(items)
                and takes(items[index + 1])
                and index > mention.item + 1
            ):
                index += 1
                continue
            break
        before = mention.item - 1
        if (
            intent == "describe"
            and before >= 0
            and id(items[before]) not in used
            and items[before].kind in (Kind.UNKNOWN, Kind.VALUE)
            and (identifier_like(items[before].text) or name_is_id)
        ):
            reading.ids.append((items[before].text, resource_type))
            used.add(id(items[before]))


def adjacent_mention(items: list[Item], index: int, mention_at: dict[int, Mention]) -> str | None:
    """The resource type a modifier at index directly precedes ("running EC2 instances")."""
    mention = mention_at.get(index + 1)
    if (
        mention is not None
        and len(mention.candidates) == 1
        and items[index + 1].start == items[index].end
    ):
        return mention.candidates[0]
    return None
