"""The merged answer: one sentence per query with the numbers, plus what went wrong where."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from opsagent.graph.catalogue.phrases import describe_query, names
from opsagent.graph.models import AccountResult, Answer, Plan, Refusal, ResourceQuery

# A count per account is spelled out in the sentence up to this many accounts; past it, the
# accounts with the most are named and the rest summed (the table has every account).
SPELLED_OUT_ACCOUNTS = 20
SHOWN_TOP_ACCOUNTS = 10
# Every answer from the embedded sandbox ends with this, whatever client shows it.
SANDBOX_NOTICE = "(Sandbox: these are made-up demo accounts, not your AWS.)"


def _breakdown(counter: Counter, order: list[str]) -> str:
    return ", ".join(f"{key} {counter.get(key, 0)}" for key in order)


def query_sentence(query: ResourceQuery, plan: Plan, results: list[AccountResult]) -> str:
    answered = [r for r in results if r.status == "ok"]
    # The planner gives each resource type one query, so the type identifies the query's rows.
    rows = [row for r in results for row in r.rows if row.resource_type == query.resource_type]
    total = len(rows)
    what = describe_query(query, total)
    where = (
        f"in {answered[0].alias}"
        if len(results) == 1 and answered
        else f"across {len(answered)} account{'s' if len(answered) != 1 else ''}"
    )
    verb = "There is" if total == 1 else "There are"
    sentence = (
        f"{verb} {total} {what} {where}"
        if query.intent == "count"
        else (f"Found {total} {what} {where}")
    )
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
    return sentence + "."


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
    sentences = [query_sentence(q, plan, ordered) for q in plan.queries]
    sentences += [f"{r.alias}: {r.note}" for r in ordered if r.note]
    sentences += regions_not_enabled(ordered)
    sentences += failure_sentences(ordered)
    age = data_age(ordered)
    if age:
        sentences.append(age)
    return Answer(question=question, text=" ".join(sentences), plan=plan, results=ordered)
