"""Attribute asks said in each resource type's terms: which attribute a concept names for a
type ("encrypted" is ``storage_encrypted`` for RDS, ``encrypted`` for EBS, the default
encryption for S3; "largest" is a volume's size and a database's storage), and the value
in the attribute's kind and unit ("1 GB of memory" is 1024 MB).

An ask a type cannot answer (a runtime of an EBS volume, a size of an EC2 instance, a
number without a unit that says what it measures) is a problem the planner refuses with,
never a filter it drops.
"""

from __future__ import annotations

from dataclasses import dataclass

from opsagent.graph.catalogue import CATALOGUE
from opsagent.graph.catalogue.attributes import Attribute
from opsagent.graph.models import AttributeFilter, FilterOp
from opsagent.graph.planner import attribute_words as words

_SIZE_FACTORS = {  # (said, attribute unit) -> factor
    ("gb", "GiB"): 1.0,
    ("tb", "GiB"): 1024.0,
    ("mb", "GiB"): 1 / 1024,
    ("mb", "MB"): 1.0,
    ("gb", "MB"): 1024.0,
    ("tb", "MB"): 1024.0 * 1024.0,
}
_COMPARING = frozenset({"gt", "gte", "lt", "lte"})
_DAYS = frozenset({"within_days", "older_than_days"})
_DATES = frozenset({"on_or_after", "before"})


@dataclass
class Ask:
    """One condition the question puts on an attribute, before a type settles it."""

    concept: str  # an attribute's word or name, or a stand-in (attribute_words.AGE...)
    op: str
    value: str  # as said: "windows", "100", "true", "2026-10-01"
    unit: str = ""  # "gb", "tb", "mb" for sizes
    text: str = ""  # the words, for refusals
    attached: str | None = None  # the resource type it directly modifies


class AskProblem(ValueError):
    """Why an ask cannot be a filter on a type; the message is for the user."""


def attribute_for(resource_type: str, concept: str) -> Attribute | None:
    """The attribute a concept names for a type, or None when the type has no such thing."""
    declared = CATALOGUE[resource_type]
    numbers = [a for a in declared.attributes if a.kind == "number"]
    if concept == words.AGE or concept in words.AGE_NOUNS:
        named = _named(declared.attributes, concept)
        return named or (
            declared.attribute(declared.age_attribute or "") if declared.age_attribute else None
        )
    if concept == words.SIZE:
        return numbers[0] if numbers else None
    if concept == words.VERSION:
        return next((a for a in declared.attributes if a.kind == "version"), None)
    named = _named(declared.attributes, concept)
    if named is not None:
        return named
    for related in words.RELATED_WORDS.get(concept, ()):
        named = _named(declared.attributes, related)
        if named is not None:
            return named
    return None


def _named(attributes: tuple[Attribute, ...], concept: str) -> Attribute | None:
    return next((a for a in attributes if concept == a.name or concept in a.words), None)


def known_attributes(resource_type: str) -> str:
    """ "instance type, platform, launch time": what a type can be asked about."""
    labels = [a.label for a in CATALOGUE[resource_type].attributes]
    return ", ".join(dict.fromkeys(labels))


def missing(resource_type: str, what: str, doing: str = "filter") -> str:
    """The sentence for a type that has no such attribute."""
    declared = CATALOGUE[resource_type]
    if not declared.attributes:
        return (
            f"{declared.plural} report nothing I can {doing} by beyond state, tags and name, "
            f"so not {what!r}."
        )
    return (
        f"{declared.plural} have no {what!r} I can {doing} by "
        f"(I know their {known_attributes(resource_type)})."
    )


def filter_for(resource_type: str, ask: Ask) -> AttributeFilter:
    """The filter an ask means for a type; AskProblem when it means nothing there."""
    attribute = attribute_for(resource_type, ask.concept)
    said = ask.text or ask.value
    if attribute is None:
        raise AskProblem(missing(resource_type, said))
    op, value = ask.op, ask.value
    plural = CATALOGUE[resource_type].plural
    kind = attribute.kind
    if kind == "bool":
        if value not in ("true", "false") or op not in ("eq", "ne"):
            raise AskProblem(f"'{said}' is not something {plural} are or are not.")
        truth = (value == "true") == (op == "eq")
        return AttributeFilter(attribute=attribute.name, op="eq", value=truth)
    if value in ("true", "false") and kind == "text" and op in ("eq", "ne"):
        # "encrypted buckets": a text attribute whose "none" means without.
        truth = (value == "true") == (op == "eq")
        return AttributeFilter(attribute=attribute.name, op="ne" if truth else "eq", value="none")
    if value in ("true", "false"):
        raise AskProblem(f"I can't tell which {attribute.label} '{said}' means for {plural}.")
    if kind == "time":
        return _time_filter(attribute, op, value, said, plural)
    if op in _DAYS or op in _DATES:
        raise AskProblem(f"'{said}' is a time, and {attribute.label} of {plural} is not.")
    if kind == "number":
        return _number_filter(attribute, ask, plural)
    if ask.unit:
        raise AskProblem(f"{attribute.label} of {plural} is not measured in {ask.unit.upper()}.")
    if kind == "text" and op in _COMPARING:
        raise AskProblem(f"I can't compare {attribute.label} of {plural} as more or less.")
    return AttributeFilter(attribute=attribute.name, op=_op(op), value=value)


def _op(op: str) -> FilterOp:
    assert op in FilterOp.__args__  # type: ignore[attr-defined]
    return op  # type: ignore[return-value]


def _time_filter(
    attribute: Attribute, op: str, value: str, said: str, plural: str
) -> AttributeFilter:
    if op in _DAYS:
        return AttributeFilter(attribute=attribute.name, op=_op(op), value=int(float(value)))
    if op in _DATES:
        return AttributeFilter(attribute=attribute.name, op=_op(op), value=value)
    raise AskProblem(
        f"I can't compare {attribute.label} of {plural} with {said!r}; ask by days "
        "('in the last 30 days', 'older than 90 days') or by date ('since October 1')."
    )


def _number_filter(attribute: Attribute, ask: Ask, plural: str) -> AttributeFilter:
    said = ask.text or ask.value
    if ask.op not in _COMPARING and ask.op not in ("eq", "ne"):
        raise AskProblem(f"I can't filter {attribute.label} of {plural} on {said!r}.")
    try:
        amount = float(ask.value)
    except ValueError as error:
        raise AskProblem(f"{said!r} is not a number of {attribute.unit}.") from error
    if ask.unit:
        factor = _SIZE_FACTORS.get((ask.unit, attribute.unit))
        if factor is None:
            raise AskProblem(
                f"{attribute.label} of {plural} is in {attribute.unit}, not {ask.unit.upper()}."
            )
        amount *= factor
    elif ask.concept in (words.SIZE, words.VERSION, ""):
        # A bare number names no attribute and no unit: "volumes over 100" could be GB or
        # anything else, so the planner asks rather than guesses.
        raise AskProblem(
            f"I can't tell what {said!r} measures; say it with a unit, like "
            f"'{ask.value} {'GB' if attribute.unit == 'GiB' else attribute.unit}'."
        )
    value: int | float = int(amount) if amount == int(amount) else round(amount, 3)
    return AttributeFilter(attribute=attribute.name, op=_op(ask.op), value=value)


def filters_for(resource_type: str, asks: list[Ask]) -> list[AttributeFilter]:
    """The filters of the asks a type has (others are checked by ``ask_problems``); values
    said for one attribute with "or" ("t3.micro or t3.small") become one list."""
    filters: list[AttributeFilter] = []
    for ask in asks:
        if attribute_for(resource_type, ask.concept) is None:
            continue
        made = filter_for(resource_type, ask)
        same = next(
            (
                f
                for f in filters
                if f.attribute == made.attribute and f.op == made.op and made.op == "eq"
            ),
            None,
        )
        if same is not None and isinstance(made.value, str) and not isinstance(same.value, bool):
            values = same.value if isinstance(same.value, list) else [str(same.value)]
            merged = list(dict.fromkeys([*values, made.value]))
            same.value = merged if len(merged) > 1 else merged[0]  # "the c5 fleet - every c5"
        elif made not in filters:
            filters.append(made)
    return _without_implied(filters)


def _without_implied(filters: list[AttributeFilter]) -> list[AttributeFilter]:
    """ "buckets using AES256 default encryption": a value named ("AES256") already says
    "not none" ("default encryption"), so the weaker filter goes."""
    named = {
        f.attribute
        for f in filters
        if f.op == "eq" and isinstance(f.value, str | list) and "none" not in f.value
    }
    return [f for f in filters if not (f.op == "ne" and f.value == "none" and f.attribute in named)]


def ask_problems(types: list[str], asks: list[Ask]) -> list[str]:
    """Why some asks cannot be filters: no type (or not the one they modify) has them, or a
    value makes no sense there."""
    problems: list[str] = []
    for ask in asks:
        if not ask.concept:
            problems.append(
                f"I can't tell what {ask.text!r} measures; say it with a unit, like "
                f"'{ask.value} GB', or name it, like 'memory over {ask.value} MB'."
            )
            continue
        having = [t for t in types if attribute_for(t, ask.concept) is not None]
        target = ask.attached if ask.attached in types else None
        if not having or (target is not None and target not in having):
            problems.append(missing(target or types[0], ask.text or ask.value))
            continue
        for rtype in having:
            try:
                filter_for(rtype, ask)
            except AskProblem as problem:
                problems.append(str(problem))
    return problems


def types_having(concepts: list[str]) -> list[str]:
    """The one resource type that has an attribute of these words ("runtime" is Lambda's
    alone), as a list; [] when none or several do, or a concept is a stand-in."""
    named = [c for c in concepts if c and not c.startswith("@")]
    if not named:
        return []
    found = [
        type_id
        for type_id in CATALOGUE
        if all(attribute_for(type_id, concept) is not None for concept in named)
    ]
    return found if len(found) == 1 else []
