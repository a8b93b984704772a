"""The offline eval: every canned question through the real agent on the embedded sandbox.

One sandbox for the whole run; each question goes through `open_agent`'s graph exactly as
`opsagent ask` sends it (follow-ups share a conversation thread). For each question:

- plan accuracy: the agent's plan is the expected plan (questions that expect a plan);
- answer accuracy: the answer's rows (account, resource type, id) and per-account counts
  are exactly those the ground truth gives for the expected plan, every account ok;
- refusal accuracy: a question that must be refused is refused with the expected kind and
  no account is queried; for a request to change something, moto's state is read before
  and after and must not have changed.

The run fails (non-zero exit) when any accuracy, over all questions or over the held-out
set, is below the threshold, or when anything in moto changed during the run.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from opsagent.evals.score import (
    ExpectedAnswer,
    answer_problems,
    plan_problems,
    refusal_problems,
)
from opsagent.evals.spec import (
    EvalQuestion,
    canonical_plan,
    load_questions,
    validate_questions,
)
from opsagent.evals.truth import GroundTruth
from opsagent.graph.catalogue import RESOURCE_TYPES
from opsagent.graph.models import Answer, Plan
from opsagent.service.settings import Settings

# Every accuracy (plan, answer, refusal; all questions and held-out) must reach this.
DEFAULT_THRESHOLD = 0.9
METRICS = ("plan", "answer", "refusal")


@dataclass
class QuestionResult:
    id: str
    question: str
    heldout: bool
    thread: str | None
    covers: list[str]
    expected: str  # the expected plan or refusal, in short
    got: str  # what the agent did, in short
    latency_ms: float
    plan_ok: bool | None = None  # None: the question expects no plan
    answer_ok: bool | None = None
    refusal_ok: bool | None = None
    expected_rows: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


@dataclass
class Scores:
    questions: int
    plan: tuple[int, int]  # (right, of)
    answer: tuple[int, int]
    refusal: tuple[int, int]
    latency_p50_ms: float | None
    latency_p95_ms: float | None

    def accuracy(self, metric: str) -> float | None:
        right, total = getattr(self, metric)
        return right / total if total else None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"questions": self.questions}
        for metric in METRICS:
            right, total = getattr(self, metric)
            data[f"{metric}_accuracy"] = self.accuracy(metric)
            data[f"{metric}_right"] = right
            data[f"{metric}_total"] = total
        data["latency_p50_ms"] = self.latency_p50_ms
        data["latency_p95_ms"] = self.latency_p95_ms
        return data


@dataclass
class EvalReport:
    results: list[QuestionResult]
    threshold: float
    moto_unchanged: bool
    moto_changes: list[str]
    planner: str
    elapsed_s: float

    def scores(self, heldout_only: bool = False) -> Scores:
        chosen = [r for r in self.results if r.heldout or not heldout_only]

        def tally(attr: str) -> tuple[int, int]:
            marks = [getattr(r, attr) for r in chosen if getattr(r, attr) is not None]
            return sum(marks), len(marks)

        latencies = [r.latency_ms for r in chosen]
        return Scores(
            questions=len(chosen),
            plan=tally("plan_ok"),
            answer=tally("answer_ok"),
            refusal=tally("refusal_ok"),
            latency_p50_ms=percentile(latencies, 50),
            latency_p95_ms=percentile(latencies, 95),
        )

    def shortfalls(self) -> list[str]:
        """Why the run fails: each accuracy below the threshold, and any change in moto."""
        found = []
        for label, scores in (("all", self.scores()), ("held-out", self.scores(True))):
            for metric in METRICS:
                value = scores.accuracy(metric)
                if value is not None and value < self.threshold:
                    found.append(f"{metric} accuracy ({label}) {value:.3f} < {self.threshold}")
        if not self.moto_unchanged:
            found.append("moto's state changed during the run")
        return found

    @property
    def passed(self) -> bool:
        return not self.shortfalls()

    def to_json(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "passed": self.passed,
            "shortfalls": self.shortfalls(),
            "planner": self.planner,
            "elapsed_s": round(self.elapsed_s, 2),
            "moto_unchanged": self.moto_unchanged,
            "moto_changes": self.moto_changes,
            "scores": {"all": self.scores().as_dict(), "heldout": self.scores(True).as_dict()},
            "results": [asdict(r) | {"passed": r.passed} for r in self.results],
        }


def percentile(values: list[float], pct: float) -> float | None:
    """The pct-th percentile, interpolated between the closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


# ----- short descriptions of plans, for the report -----


def _short_query(q: dict[str, Any]) -> str:
    bits = [f"{q.get('intent', 'list')} {q['resource_type']}"]
    for key in ("states", "conditions", "ids"):
        if q.get(key):
            bits.append(f"{key}={','.join(map(str, q[key]))}")
    if q.get("tags"):
        bits.append("tags=" + ",".join(f"{k}={v}" for k, v in q["tags"].items()))
    if q.get("name_contains"):
        bits.append(f"name~{q['name_contains']}")
    return " ".join(bits)


def short_plan(plan: dict[str, Any]) -> str:
    text = "; ".join(_short_query(q) for q in plan["queries"])
    text += " @ " + ",".join(plan["accounts"])
    if plan.get("regions"):
        text += " in " + ",".join(plan["regions"])
    if plan.get("group_by"):
        text += f" by {plan['group_by']}"
    return text


def _got(answer: Answer | None) -> str:
    if answer is None:
        return "no answer"
    if answer.refusal is not None:
        return f"refusal {answer.refusal.kind}"
    if answer.plan is None:
        return "no plan"
    return short_plan(answer.plan.model_dump())


# ----- the run -----


def expected_answer(truth: GroundTruth, plan_spec: Any) -> ExpectedAnswer:
    plan = canonical_plan(plan_spec)
    keys = [
        (row.account_id, row.resource_type, row.id)
        for query in plan["queries"]
        for row in truth.rows(plan["accounts"], plan["regions"], query)
    ]
    return ExpectedAnswer.of(plan["accounts"], keys)


def _diff(before: frozenset, after: frozenset) -> list[str]:
    gone = [f"gone: {item[:4]}" for item in sorted(before - after, key=str)]
    new = [f"new or changed: {item[:5]}" for item in sorted(after - before, key=str)]
    return (gone + new)[:20]


async def _score_one(
    agent: Any, truth: GroundTruth, q: EvalQuestion, thread_id: str, baseline: frozenset
) -> tuple[QuestionResult, list[str]]:
    visible = set(q.visible_accounts) if q.visible_accounts is not None else None
    config = agent.config(thread_id=thread_id, visible_accounts=visible)
    answer: Answer | None = None
    crash: str | None = None
    started = time.perf_counter()
    try:
        state = await agent.graph.ainvoke({"question": q.question}, config, context=config.context)
        answer = state.get("answer")
    except Exception as exc:  # the eval reports a crash as a failure, and goes on
        crash = f"the agent raised {type(exc).__name__}: {exc}"
    latency_ms = (time.perf_counter() - started) * 1000
    result = QuestionResult(
        id=q.id,
        question=q.question,
        heldout=q.heldout,
        thread=q.thread,
        covers=list(q.covers),
        expected=f"refusal {q.refusal}" if q.refusal else short_plan(canonical_plan(q.plan)),
        got=crash or _got(answer),
        latency_ms=round(latency_ms, 1),
    )
    changes: list[str] = []
    if crash:
        result.problems.append(crash)
    if q.refusal is not None:
        problems = refusal_problems(q.refusal, answer)
        if q.refusal == "read_only":
            after = await asyncio.to_thread(truth.snapshot, RESOURCE_TYPES)
            changes = _diff(baseline, after)
            if changes:
                problems.append("moto changed: " + "; ".join(changes[:5]))
        result.refusal_ok = not problems
        result.problems.extend(problems)
    else:
        plan: Plan | None = answer.plan if answer else None
        problems = plan_problems(q.plan, plan, answer.refusal if answer else None)
        result.plan_ok = not problems
        result.problems.extend(f"plan: {p}" for p in problems)
        # A plan that is one of the accepted readings is answered as that reading; otherwise
        # the right answer is the canonical reading's.
        reading = plan.model_dump() if plan is not None and result.plan_ok else q.plan
        expected = await asyncio.to_thread(expected_answer, truth, reading)
        result.expected_rows = sum(expected.rows.values())
        problems = answer_problems(expected, answer)
        result.answer_ok = not problems
        result.problems.extend(
            f"answer: {p}" for p in problems if not (p.startswith("refused") and not result.plan_ok)
        )
    return result, changes


async def run_eval(
    questions: list[EvalQuestion],
    *,
    settings: Settings | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    progress: Callable[[QuestionResult], None] | None = None,
) -> EvalReport:
    from langgraph.checkpoint.memory import InMemorySaver

    from opsagent.service.checkpoints import serializer
    from opsagent.service.runtime import ConfigurationError, open_agent

    settings = settings or Settings(registry=None, mcp_endpoint=None)
    if not settings.uses_sandbox:
        raise ConfigurationError(
            "the eval runs on the embedded sandbox only: unset "
            "OPSAGENT_REGISTRY and OPSAGENT_MCP_ENDPOINT"
        )
    started = time.perf_counter()
    # Our serializer revives the state models without LangGraph's unregistered-type warning.
    async with open_agent(settings, checkpointer=InMemorySaver(serde=serializer())) as agent:
        problems = validate_questions(questions, agent.registry)
        if problems:
            raise ConfigurationError("invalid eval questions: " + "; ".join(problems))
        truth = GroundTruth.for_sandbox(agent.sandbox, agent.registry)
        baseline = await asyncio.to_thread(truth.snapshot, RESOURCE_TYPES)
        run_id = uuid.uuid4().hex[:8]
        results: list[QuestionResult] = []
        all_changes: list[str] = []
        for q in questions:
            thread_id = f"eval-{run_id}-{q.thread or q.id}"
            result, changes = await _score_one(agent, truth, q, thread_id, baseline)
            all_changes.extend(changes)
            results.append(result)
            if progress is not None:
                progress(result)
        final = await asyncio.to_thread(truth.snapshot, RESOURCE_TYPES)
        all_changes.extend(_diff(baseline, final))
        planner = f"model {settings.model}" if settings.model else "rule"
    return EvalReport(
        results=results,
        threshold=threshold,
        moto_unchanged=not all_changes,
        moto_changes=sorted(set(all_changes)),
        planner=planner,
        elapsed_s=time.perf_counter() - started,
    )


# ----- the report on a terminal -----


def _pct(scores: Scores, metric: str) -> str:
    right, total = getattr(scores, metric)
    if not total:
        return "—"
    return f"{right / total:.1%} ({right}/{total})"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}"


def render_report(report: EvalReport, console: Console) -> None:
    everything, heldout = report.scores(), report.scores(heldout_only=True)
    table = Table(title=f"opsagent eval ({report.planner} planner, threshold {report.threshold:g})")
    table.add_column("")
    table.add_column("all", justify="right")
    table.add_column("held-out", justify="right")
    table.add_row("questions", str(everything.questions), str(heldout.questions))
    for metric in METRICS:
        table.add_row(f"{metric} accuracy", _pct(everything, metric), _pct(heldout, metric))
    table.add_row("latency p50 (ms)", _ms(everything.latency_p50_ms), _ms(heldout.latency_p50_ms))
    table.add_row("latency p95 (ms)", _ms(everything.latency_p95_ms), _ms(heldout.latency_p95_ms))
    table.add_row("moto unchanged", "yes" if report.moto_unchanged else "NO", "")
    console.print(table)

    failures = [r for r in report.results if not r.passed]
    if failures:
        listing = Table(title=f"{len(failures)} failing question(s)", show_lines=True)
        for column in ("id", "question", "expected", "got", "problems"):
            listing.add_column(column, overflow="fold")
        for r in failures:
            listing.add_row(
                r.id + (" (H)" if r.heldout else ""),
                r.question,
                r.expected,
                r.got,
                "\n".join(r.problems),
            )
        console.print(listing)
    empty = [r.id for r in report.results if r.expected_rows == 0]
    if empty:
        console.print(f"[dim]expected answer has no rows: {', '.join(empty)}[/dim]")
    for change in report.moto_changes:
        console.print(f"[red]moto changed:[/red] {change}")
    shortfalls = report.shortfalls()
    if shortfalls:
        console.print("[red]FAIL[/red]: " + "; ".join(shortfalls))
    else:
        console.print(f"[green]PASS[/green] in {report.elapsed_s:.1f}s")


def write_report(report: EvalReport, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_json(), indent=2, default=str) + "\n")


async def eval_command(
    *,
    json_file: Path | None,
    threshold: float,
    questions_file: Path | None,
    only: str | None,
    console: Console,
    progress_console: Console,
) -> int:
    """`opsagent eval`: run, print, optionally write the JSON report; 0 pass, 1 fail."""
    questions = load_questions(questions_file)
    if only:
        wanted = {q.thread for q in questions if only in q.id and q.thread}
        questions = [q for q in questions if only in q.id or (q.thread and q.thread in wanted)]
        if not questions:
            progress_console.print(f"[red]error:[/red] no question id contains {only!r}")
            return 1

    def progress(result: QuestionResult) -> None:
        mark = "✓" if result.passed else "✗"
        progress_console.print(f"[dim]{mark} {result.id} {result.latency_ms:.0f} ms[/dim]")

    report = await run_eval(questions, threshold=threshold, progress=progress)
    render_report(report, console)
    if json_file is not None:
        await asyncio.to_thread(write_report, report, json_file)
    return 0 if report.passed else 1
