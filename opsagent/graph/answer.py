"""The merged answer: one sentence per query with the numbers, plus what went wrong where."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from opsagent.graph.aggregates import (
    apply_rankings,
    counts_by,
    group_weights,
    in_order,
    leaders,
    summed,
)
from opsagent.graph.catalogue import CATALOGUE
from opsagent.graph.catalogue.attributes import Attribute
from opsagent.graph.catalogue.phrases import attribute_label, describe_query, names, ranking_word
from opsagent.graph.models import AccountResult, Answer, Plan, Refusal, Resource, ResourceQuery

# A count per account is spelled out in the sentence up to this many accounts; past it, the
# accounts with the most are named and the rest summed (the table has every account).
SPELLED_OUT_ACCOUNTS = 20
SHOWN_TOP_ACCOUNTS = 10
# Every answer from the embedded sandbox ends with this, whatever client shows it.
SANDBOX_NOTICE = "(Sandbox: these are made-up demo accounts, not your AWS.)"


# Rows a ranked answer ("the 5 largest volumes") names in its sentence; the table has all.
NAMED_RANKED_ROWS = 10
# Values a breakdown by attribute names before "and N more".
NAMED_GROUPS = 12


def _breakdown(counter: Counter, order: list[str]) -> str:
    return ", ".join(f"{key} {counter.get(key, 0)}" for key in order)


def _attribute(query: ResourceQuery, name: str) -> Attribute | None:
    declared = CATALOGUE.get(query.resource_type)
    return declared.attribute(name) if declared else None


def _amount(value: float, attribute: Attribute | None) -> str:
    shown = f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
    return f"{shown} {attribute.unit}" if attribute is not None and attribute.unit else shown


def _by_value(query: ResourceQuery, rows: list[Resource], name: str) -> str:
    """'by runtime: python3.8 2, nodejs16.x 1' (most first; past NAMED_GROUPS, 'and N more')."""
    counts = counts_by(rows, name)
    order = in_order(counts)
    shown = _breakdown(counts, order[:NAMED_GROUPS])
    more = len(order) - NAMED_GROUPS
    return f"by {attribute_label(query.resource_type, name)}: {shown}" + (
        f" and {more} more" if more > 0 else ""
    )


def _explaining_attributes(query: ResourceQuery) -> list[str]:
    """The attributes whose values say why rows matched, when a filter does not fix them
    ("deprecated runtime" -> runtime; "version under 1.30" -> version; "m5.large" -> none)."""
    names = []
    for wanted in query.filters:
        attribute = _attribute(query, wanted.attribute)
        if attribute is None:
            continue
        if attribute.about:
            names.append(attribute.about)
        elif attribute.kind in ("text", "version") and (
            wanted.op != "eq" or (isinstance(wanted.value, list) and len(wanted.value) > 1)
        ):
            names.append(attribute.name)
    return [n for n in dict.fromkeys(names) if n != query.group_by]


def _ranked_rows(query: ResourceQuery, rows: list[Resource]) -> str:
    """'vol-0abc (Production, us-east-1, 2,000 GiB), ...' in the answer's order."""
    assert query.sort_by is not None
    attribute = _attribute(query, query.sort_by)
    shown = []
    for row in rows[:NAMED_RANKED_ROWS]:
        value = row.details.get(query.sort_by)
        said = (
            _amount(float(value), attribute)
            if attribute is not None and attribute.kind == "number" and value is not None
            else str(value if value is not None else "no value")
        )
        shown.append(f"{row.name or row.id} ({row.account_alias}, {row.region}, {said})")
    more = len(rows) - NAMED_RANKED_ROWS
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def _leaders_sentence(plan: Plan, query: ResourceQuery, groups: dict[str, float]) -> str:
    """'Staging has the most stopped EC2 instances (3).' / '... have the fewest (0 each).'"""
    assert plan.rank is not None
    found = leaders(groups, plan.rank)
    if found is None:
        return ""
    _, plural = names(query.resource_type)
    who = " and ".join(found.names) if len(found.names) <= 3 else f"{len(found.names)} groups"
    verb = "has" if len(found.names) == 1 else "have"
    each = "" if len(found.names) == 1 else " each"
    if query.total:
        amount = _amount(found.count, _attribute(query, query.total))
        label = attribute_label(query.resource_type, query.total)
        most = "largest" if plan.rank == "most" else "smallest"
        return f"{who} {verb} the {most} total {label} of {plural} ({amount}{each}). "
    what = describe_query(query, 2, shape=False)
    return f"{who} {verb} the {plan.rank} {what} ({found.count:g}{each}). "


def _details_sentences(plan: Plan, query: ResourceQuery, rows: list[Resource]) -> list[str]:
    """What the question asked beyond the count: its ranking, groups, totals and the values
    that explain a filter."""
    extra = []
    if query.sort_by and query.limit is not None and rows:
        label = attribute_label(query.resource_type, query.sort_by)
        extra.append(f"In order of {label}: {_ranked_rows(query, rows)}.")
    parts = [_by_value(query, rows, name) for name in _explaining_attributes(query)] if rows else []
    if query.group_by and rows:
        parts.insert(0, _by_value(query, rows, query.group_by))
    extra += [part[0].upper() + part[1:] + "." for part in parts]
    if query.total:
        attribute = _attribute(query, query.total)
        label = attribute_label(query.resource_type, query.total)
        whole = _amount(summed(query, rows), attribute)
        sentence = f"Total {label}: {whole}"
        if plan.group_by in ("account", "region"):
            keyed = (
                (lambda r: r.account_alias) if plan.group_by == "account" else (lambda r: r.region)
            )
            keys = list(dict.fromkeys(keyed(r) for r in rows))
            per = ", ".join(
                f"{key} {_amount(summed(query, [r for r in rows if keyed(r) == key]), attribute)}"
                for key in keys
            )
            sentence += f" ({per})" if per else ""
        extra.append(sentence + ".")
    return extra


def query_sentence(
    query: ResourceQuery,
    plan: Plan,
    results: list[AccountResult],
    in_rank_order: list[Resource] | None = None,
) -> str:
    answered = [r for r in results if r.status == "ok"]
    # The planner gives each resource type one query, so the type identifies the query's rows.
    merged = (
        in_rank_order if in_rank_order is not None else [row for r in results for row in r.rows]
    )
    rows = [row for row in merged if row.resource_type == query.resource_type]
    total = len(rows)
    what = describe_query(query, total, shape=False)
    where = (
        f"in {answered[0].alias}"
        if len(results) == 1 and answered
        else f"across {len(answered)} account{'s' if len(answered) != 1 else ''}"
    )
    verb = "There is" if total == 1 else "There are"
    if query.sort_by and query.limit is not None:  # "The 5 largest EBS volumes across..."
        sentence = f"The {total} {ranking_word(query)} {what} {where}"
    elif query.intent == "count":
        sentence = f"{verb} {total} {what} {where}"
    else:
        sentence = f"Found {total} {what} {where}"
    lead = ""
    if plan.rank is not None:
        lead = _leaders_sentence(plan, query, group_weights(plan, query, rows, answered))
    if plan.group_by == "region":
        by_region = Counter(row.region for row in rows)
        sentence += ": " + _breakdown(by_region, sorted(by_region)) if by_region else ""
    elif len(results) > 1:
        by_account = Counter(row.account_alias for row in rows)
        aliases = [r.alias for r in answered]
        if len(aliases) <= SPELLED_OUT_ACCOUNTS:
            sentence += ": " + _breakdown(by_account, aliases)
        else:  # 500 accounts make a table, not a sentence: the most first, the rest counted
            # sorted() is stable: among equal counts, the plan's order stays.
            shown = sorted(aliases, key=lambda a: -by_account.get(a, 0))[:SHOWN_TOP_ACCOUNTS]
            rest = len(aliases) - len(shown)
            rest_total = total - sum(by_account.get(a, 0) for a in shown)
            sentence += (
                f"; most in {_breakdown(by_account, shown)}, and {rest_total:,} in the other "
                f"{rest:,} accounts (every account is in the table)"
            )
    elif rows:
        by_region = Counter(row.region for row in rows)
        if len(by_region) > 1:
            sentence += ": " + _breakdown(by_region, sorted(by_region))
    return " ".join([lead + sentence + ".", *_details_sentences(plan, query, rows)])


# Accounts named one by one in the answer's text; past this, the rest are counted. Every
# account's status and error stay in the answer's per-account results either way.
NAMED_FAILURES = 5


def failure_sentences(results: list[AccountResult]) -> list[str]:
    """What went wrong where: accounts that failed, and accounts that answered in part (some
    reads failed or stopped at the page limit; their other rows are in the answer). Past
    NAMED_FAILURES accounts, a count by status comes first and only the first few are
    named, so 5,000 failing accounts make one paragraph, not 5,000 sentences."""
    troubled = [r for r in results if r.status != "ok" or r.error]
    named = [
        f"{r.alias} ({r.account_id}) could not be queried: {r.status}: {r.error}."
        if r.status != "ok"
        else f"{r.alias} ({r.account_id}) answered in part: {r.error}."
        for r in troubled[:NAMED_FAILURES]
    ]
    if len(troubled) <= NAMED_FAILURES:
        return named
    counts = Counter("answered in part" if r.status == "ok" else r.status for r in troubled)
    summary = ", ".join(f"{status} {n:,}" for status, n in counts.most_common())
    return [
        f"{len(troubled):,} accounts did not answer in full ({summary}); the first "
        f"{NAMED_FAILURES}:",
        *named,
        f"The other {len(troubled) - NAMED_FAILURES:,} are in the per-account results.",
    ]


def regions_not_enabled(results: list[AccountResult]) -> list[str]:
    """'af-south-1 is not enabled in prod, dev.' per region: an opt-in region an account has
    not turned on holds nothing of it; that is a fact about the account, not a failure."""
    by_region: dict[str, list[str]] = {}
    for result in results:
        for region in result.regions_not_enabled:
            by_region.setdefault(region, []).append(result.alias)
    sentences = []
    for region, aliases in sorted(by_region.items()):
        shown = ", ".join(aliases[:NAMED_FAILURES])
        more = len(aliases) - NAMED_FAILURES
        sentences.append(
            f"{region} is not enabled in {shown}"
            + (f" and {more:,} more" if more > 0 else "")
            + " (an opt-in region; nothing was read there)."
        )
    return sentences


def data_age(results: list[AccountResult], now: datetime | None = None) -> str | None:
    """'Data read 2 min ago, reused from an earlier question; ask for fresh data to read
    again.' when any account's answer reused earlier reads (OPSAGENT_DATA_MAX_AGE)."""
    reused = [r.read_at for r in results if r.reused and r.read_at is not None]
    if not reused:
        return None
    seconds = max(0, int(((now or datetime.now(UTC)) - min(reused)).total_seconds()))
    age = f"{seconds} s" if seconds < 120 else f"{seconds // 60} min"
    return (
        f"Data read {age} ago, reused from an earlier question; ask for fresh data "
        '(--fresh, or "fresh": true) to read again.'
    )


def nothing_answered(plan: Plan, results: list[AccountResult]) -> str:
    """'None of the 3 accounts could be queried, so I have no answer about S3 buckets.'"""
    kinds = " or ".join(dict.fromkeys(names(q.resource_type)[1] for q in plan.queries))
    tried = len(results) or len(plan.accounts)
    which = (
        "The account could not be queried"
        if tried == 1
        else (f"None of the {tried} accounts could be queried")
    )
    return f"{which}, so I have no answer about {kinds}."


def build_answer(
    question: str,
    plan: Plan | None,
    refusal: Refusal | None,
    results: list[AccountResult],
    *,
    sandbox: bool = False,
) -> Answer:
    """The Answer; from the embedded sandbox (``sandbox``), its text says so too."""
    answer = _answer(question, plan, refusal, results)
    if sandbox:
        answer.sandbox = True
        if refusal is None:
            answer.text += " " + SANDBOX_NOTICE
    return answer


def _answer(
    question: str, plan: Plan | None, refusal: Refusal | None, results: list[AccountResult]
) -> Answer:
    if refusal is not None:
        return Answer(question=question, text=refusal.message, refusal=refusal)
    assert plan is not None
    by_id = {r.account_id: r for r in results}
    ordered = [by_id[a] for a in plan.accounts if a in by_id]
    if not any(r.status == "ok" for r in ordered):
        # Nothing answered: no count to give, not even zero.
        return Answer(
            question=question,
            text=" ".join([nothing_answered(plan, ordered), *failure_sentences(ordered)]),
            plan=plan,
            results=ordered,
        )
    if any(q.limit is not None for q in plan.queries):  # a ranking trims the rows it keeps
        ordered = [result.model_copy(deep=True) for result in ordered]
    in_rank_order = apply_rankings(plan, ordered)
    sentences = [query_sentence(q, plan, ordered, in_rank_order) for q in plan.queries]
    sentences += [f"{r.alias}: {r.note}" for r in ordered if r.note]
    sentences += regions_not_enabled(ordered)
    sentences += failure_sentences(ordered)
    age = data_age(ordered)
    if age:
        sentences.append(age)
    return Answer(
        question=question,
        text=" ".join(sentences),
        plan=plan,
        results=ordered,
        ranked_rows=in_rank_order,
    )
