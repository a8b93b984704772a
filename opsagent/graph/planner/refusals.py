"""What the rule planner says when it cannot plan a question: why, what it understood, and
questions that would work, in the registry's own words."""

from __future__ import annotations

from opsagent.graph.catalogue import CATALOGUE
from opsagent.graph.models import Refusal
from opsagent.graph.planner.reading import Reading
from opsagent.registry import Registry

RDS = "rds:db-instance"


def supported_sentence() -> str:
    return (
        "I can answer about " + ", ".join(declared.plural for declared in CATALOGUE.values()) + "."
    )


def example_questions(registry: Registry, resource_type: str | None = None) -> list[str]:
    """Questions the rule planner answers, in this registry's words (for refusals and docs)."""
    first = registry.workload_accounts[0]
    named = CATALOGUE.get(resource_type) if resource_type else None
    label = named.plural if named is not None else None
    counted = CATALOGUE.get(resource_type or RDS)
    running = counted is not None and "running" in counted.state_concepts
    return [
        f"List {label or 'EC2 instances'} in {first.alias}",
        f"How many {label or 'RDS instances'} are {'running' if running else 'there'}"
        " in each account?",
        "Show me S3 buckets across all accounts",
        f"Describe EKS clusters in account {first.id}",
    ]


def unsupported(reading: Reading, registry: Registry, reasons: list[str]) -> Refusal:
    """The refusal of a question that cannot be planned, for these reasons."""
    examples = example_questions(registry, reading.types[0] if reading.types else None)
    parts = ["I couldn't plan that question.", *reasons]
    understood = _understood(reading, registry)
    if understood:
        parts.append(understood)
    parts.append("Questions I can answer look like: " + "; ".join(f'"{q}"' for q in examples) + ".")
    return Refusal(kind="unsupported", message=" ".join(parts))


def unknown_accounts(reading: Reading, registry: Registry) -> Refusal:
    """The refusal of a question naming accounts the registry does not know."""
    unknown = list(dict.fromkeys(reading.unknown_accounts))
    names = ", ".join(repr(a) for a in unknown)
    hints = "".join(
        f" Did you mean {reading.account_hints[a]} for {a!r}?"
        for a in unknown
        if a in reading.account_hints
    )
    return Refusal(
        kind="unknown_account",
        message=(
            f"I don't know the account{'s' if len(unknown) > 1 else ''} {names}.{hints} "
            f"Known accounts: {'; '.join(registry.known_names())}."
        ),
    )


def _understood(reading: Reading, registry: Registry) -> str:
    parts: list[str] = []
    if reading.intent:
        parts.append({"list": "a list", "count": "a count", "describe": "details"}[reading.intent])
    parts += [CATALOGUE[rtype].plural for rtype in reading.types]
    by_id = {a.id: a for a in registry.all_accounts}
    if reading.all_accounts:
        parts.append("all accounts")
    parts += [by_id[a].alias for a in dict.fromkeys(reading.named_accounts) if a in by_id]
    parts += list(dict.fromkeys(reading.regions))
    parts += [filter_.text for filter_ in reading.states + reading.conditions]
    parts += [f"{k}={v}" for k, v in reading.tags.items()]
    return f"I understood: {', '.join(parts)}." if parts else ""
