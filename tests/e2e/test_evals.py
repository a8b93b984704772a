"""The offline eval: its question file, its scoring, and its command's exit status.

The full eval run is not here: `make test` runs `opsagent eval` after pytest.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections import Counter

import pytest

from opsagent.evals.runner import EvalReport, QuestionResult, percentile, short_plan
from opsagent.evals.score import (
    ExpectedAnswer,
    answer_problems,
    answer_score,
    plan_score,
    refusal_score,
)
from opsagent.evals.spec import (
    QuestionFileError,
    alternatives,
    canonical_plan,
    load_questions,
    validate_questions,
)
from opsagent.evals.truth import TruthRow, row_matches
from opsagent.graph.catalogue import CONDITIONS, RESOURCE_TYPES
from opsagent.graph.models import (
    AccountResult,
    Answer,
    Plan,
    Refusal,
    Resource,
    ResourceQuery,
)
from opsagent.registry import load_registry
from tests.conftest import OPSAGENT, ROOT

DEMO_REGISTRY = ROOT / "opsagent" / "sandbox" / "demo-registry.json"
PROD, STAGING, DEV = "222222222222", "333333333333", "444444444444"
WORKLOAD = [PROD, STAGING, DEV]


@pytest.fixture(scope="module")
def questions():
    return load_questions()


# ----- the question file -----


def test_question_file_is_valid_against_the_demo_registry(questions):
    assert len(questions) >= 80
    assert validate_questions(questions, load_registry(DEMO_REGISTRY)) == []
    for q in questions:
        assert q.question.strip(), q.id
        if q.plan is not None:
            plan = canonical_plan(q.plan)
            assert plan["accounts"], q.id
            Plan.model_validate(plan)  # the canonical reading is a plan the agent could make


def test_held_out_set_is_large_enough_and_mixed(questions):
    heldout = [q for q in questions if q.heldout]
    assert len(heldout) >= 20
    assert any(q.plan is not None for q in heldout)
    assert {q.refusal for q in heldout} >= {"unsupported", "read_only", "unknown_account"}
    assert any(q.thread for q in heldout), "held-out follow-ups"


def _normalized(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9.=/-]+", " ", text.lower()).split())


def test_held_out_questions_are_not_in_the_planner_tests(questions):
    planner_tests = "".join(
        _normalized(p.read_text()) for p in sorted((ROOT / "tests").rglob("test_planner*.py"))
    )
    assert planner_tests, "the planner's unit tests were not found"
    used = [
        q.id
        for q in questions
        if q.heldout
        and len(_normalized(q.question)) > 12
        and _normalized(q.question) in planner_tests
    ]
    assert used == [], "held-out questions must stay out of the planner's unit tests"


def test_questions_cover_every_resource_type_condition_and_refusal_kind(questions):
    types, conditions, intents, groupings = set(), set(), set(), set()
    for q in questions:
        for plan in alternatives(q.plan) if q.plan is not None else []:
            for query in plan["queries"]:
                types.update(alternatives(query["resource_type"]))
                for value in alternatives(query.get("conditions", [])):
                    conditions.update(value)
                intents.update(alternatives(query.get("intent", "list")))
            groupings.update(alternatives(plan.get("group_by")))
    assert types == set(RESOURCE_TYPES)
    assert conditions == set(CONDITIONS)
    assert intents == {"list", "count", "describe"}
    assert groupings >= {"account", "region", None}
    assert {q.refusal for q in questions} >= {"unsupported", "read_only", "unknown_account"}
    covers = {c for q in questions for c in q.covers}
    for needed in (
        "product",
        "synonym",
        "account:id",
        "account:alias",
        "account:environment",
        "account:all",
        "account:several",
        "account:exclude",
        "region:code",
        "region:name",
        "region:every",
        "filter:state",
        "filter:tag",
        "filter:name",
        "intent:describe",
        "group:account",
        "group:region",
        "multi-type",
        "followup",
    ):
        assert needed in covers, needed
    threads = Counter(q.thread for q in questions if q.thread)
    assert sum(1 for n in threads.values() if n >= 3) >= 3, "multi-turn follow-up threads"


def test_follow_up_threads_start_with_a_self_contained_question(questions):
    seen: set[str] = set()
    for q in questions:
        if q.thread and q.thread not in seen:
            seen.add(q.thread)
            assert q.plan is not None, f"thread {q.thread} must open with an answerable question"


def test_a_malformed_question_file_is_refused_with_the_reason(tmp_path):
    bad = tmp_path / "questions.json"
    bad.write_text(json.dumps([{"id": "x", "question": "list VMs", "refusal": "maybe"}]))
    with pytest.raises(QuestionFileError, match="refusal must be one of"):
        load_questions(bad)
    bad.write_text(
        json.dumps(
            [
                {
                    "id": "x",
                    "question": "list VMs",
                    "plan": {"accounts": [PROD], "queries": [{"type": "x"}]},
                }
            ]
        )
    )
    with pytest.raises(QuestionFileError, match="resource_type"):
        load_questions(bad)
    bad.write_text(
        json.dumps(
            [
                {
                    "id": "x",
                    "question": "list VMs",
                    "plan": {
                        "accounts": ["999999999999"],
                        "queries": [{"resource_type": "ec2:toaster", "conditions": ["unattached"]}],
                    },
                },
            ]
        )
    )
    problems = validate_questions(load_questions(bad), load_registry(DEMO_REGISTRY))
    assert any("999999999999" in p for p in problems)
    assert any("ec2:toaster" in p for p in problems)


# ----- plan scoring -----


SPEC = {
    "accounts": [PROD, STAGING],
    "queries": [{"resource_type": "ec2:instance", "states": ["running"], "tags": {"team": "web"}}],
    "group_by": "account",
}


def _plan(**changes) -> Plan:
    query = {"resource_type": "ec2:instance", "states": ["running"], "tags": {"team": "web"}}
    query.update(changes.pop("query", {}))
    fields = {
        "accounts": [STAGING, PROD],
        "queries": [ResourceQuery(**query)],
        "group_by": "account",
        "summary": "whatever the planner says",
    }
    fields.update(changes)
    return Plan(**fields)


def test_the_right_plan_scores_one():
    assert plan_score(SPEC, _plan()) == 1
    # Order of accounts, case of tags and states, and the summary do not matter.
    assert plan_score(SPEC, _plan(query={"states": ["Running"], "tags": {"Team": "Web"}})) == 1


@pytest.mark.parametrize(
    "wrong",
    [
        {"accounts": [PROD]},
        {"accounts": WORKLOAD},
        {"regions": ["us-east-1"]},
        {"group_by": None},
        {"group_by": "region"},
        {"query": {"resource_type": "rds:db-instance"}},
        {"query": {"states": []}},
        {"query": {"states": ["stopped"]}},
        {"query": {"tags": {}}},
        {"query": {"tags": {"team": "data"}}},
        {"query": {"intent": "count"}},
        {"query": {"name_contains": "web"}},
        {"query": {"ids": ["i-123"]}},
        {
            "queries": [
                ResourceQuery(
                    resource_type="ec2:instance", states=["running"], tags={"team": "web"}
                ),
                ResourceQuery(resource_type="s3:bucket"),
            ]
        },
        {"freeform": "find out yourself"},
    ],
)
def test_a_wrong_plan_scores_zero(wrong):
    assert plan_score(SPEC, _plan(**wrong)) == 0


def test_a_refusal_or_no_plan_scores_zero_for_a_plan_question():
    assert plan_score(SPEC, None, Refusal(kind="unsupported", message="no")) == 0
    assert plan_score(SPEC, None) == 0


def test_alternatives_and_region_cover():
    spec = {
        "accounts": {"any_of": [WORKLOAD, [PROD]]},
        "regions": {"covers": ["us-east-1", "us-west-2"]},
        "group_by": {"any_of": ["account", None]},
        "queries": [{"resource_type": "ec2:instance", "intent": {"any_of": ["list", "count"]}}],
    }

    def plan(**kw) -> Plan:
        return Plan(
            **{
                "accounts": WORKLOAD,
                "queries": [
                    ResourceQuery(resource_type="ec2:instance", intent=kw.pop("intent", "list"))
                ],
                **kw,
            }
        )

    assert plan_score(spec, plan()) == 1
    assert plan_score(spec, plan(accounts=[PROD], group_by="account", intent="count")) == 1
    assert plan_score(spec, plan(regions=["us-west-2", "us-east-1", "eu-west-1"])) == 1
    assert plan_score(spec, plan(regions=["us-east-1"])) == 0
    assert plan_score(spec, plan(accounts=[STAGING])) == 0
    assert plan_score(spec, plan(group_by="region")) == 0
    assert plan_score(spec, plan(intent="describe")) == 0
    whole = {
        "any_of": [
            {
                "accounts": [PROD],
                "queries": [{"resource_type": "rds:db-instance", "ids": ["db-1"]}],
            },
            {
                "accounts": [PROD],
                "queries": [{"resource_type": "rds:db-instance", "name_contains": "db-1"}],
            },
        ]
    }
    by_id = Plan(
        accounts=[PROD], queries=[ResourceQuery(resource_type="rds:db-instance", ids=["db-1"])]
    )
    by_name = Plan(
        accounts=[PROD],
        queries=[ResourceQuery(resource_type="rds:db-instance", name_contains="DB-1")],
    )
    assert plan_score(whole, by_id) == plan_score(whole, by_name) == 1
    assert (
        plan_score(
            whole, Plan(accounts=[PROD], queries=[ResourceQuery(resource_type="rds:db-instance")])
        )
        == 0
    )
    assert canonical_plan(whole)["queries"][0]["ids"] == ["db-1"]
    assert canonical_plan(spec)["regions"] == ["us-east-1", "us-west-2"]


def test_several_queries_match_in_any_order():
    spec = {
        "accounts": [PROD],
        "queries": [{"resource_type": "ec2:instance"}, {"resource_type": "rds:db-instance"}],
    }
    plan = Plan(
        accounts=[PROD],
        queries=[
            ResourceQuery(resource_type="rds:db-instance"),
            ResourceQuery(resource_type="ec2:instance"),
        ],
    )
    assert plan_score(spec, plan) == 1
    assert plan_score(spec, Plan(accounts=[PROD], queries=plan.queries[:1])) == 0


# ----- answer scoring -----


def _row(account: str, rid: str, rtype: str = "ec2:instance") -> Resource:
    return Resource(
        account_id=account,
        account_alias=account[:4],
        region="us-east-1",
        resource_type=rtype,
        id=rid,
    )


def _answer(rows_by_account: dict[str, list[str]], status: str = "ok") -> Answer:
    results = [
        AccountResult(
            account_id=a,
            alias=a[:4],
            status=status if a == DEV else "ok",
            rows=[_row(a, rid) for rid in ids],
        )
        for a, ids in rows_by_account.items()
    ]
    plan = Plan(
        accounts=list(rows_by_account), queries=[ResourceQuery(resource_type="ec2:instance")]
    )
    return Answer(question="q", text="t", plan=plan, results=results)


EXPECTED = ExpectedAnswer.of(
    [PROD, DEV], [(PROD, "ec2:instance", "i-1"), (PROD, "ec2:instance", "i-2")]
)


def test_the_right_answer_scores_one():
    assert EXPECTED.counts == {PROD: 2, DEV: 0}
    assert answer_score(EXPECTED, _answer({PROD: ["i-2", "i-1"], DEV: []})) == 1


@pytest.mark.parametrize(
    "answer",
    [
        _answer({PROD: ["i-1"], DEV: []}),  # a row missing
        _answer({PROD: ["i-1", "i-2", "i-3"], DEV: []}),  # a row too many
        _answer({PROD: ["i-1", "i-2"]}),  # an account not queried
        _answer({PROD: ["i-1", "i-2"], DEV: [], STAGING: []}),  # an account too many
        _answer({PROD: ["i-1"], DEV: ["i-2"]}),  # the right ids in the wrong account
        _answer({PROD: ["i-1", "i-2"], DEV: []}, status="denied"),  # an account failed
        Answer(question="q", text="no", refusal=Refusal(kind="unsupported", message="no")),
        None,
    ],
)
def test_a_wrong_answer_scores_zero(answer):
    assert answer_score(EXPECTED, answer) == 0
    assert answer_problems(EXPECTED, answer)


# ----- refusal scoring -----


def test_refusal_scoring():
    def refused(kind: str) -> Answer:
        return Answer(question="q", text="m", refusal=Refusal(kind=kind, message="m"))

    assert refusal_score("read_only", refused("read_only")) == 1
    assert refusal_score("read_only", refused("unsupported")) == 0
    assert refusal_score("unknown_account", _answer({PROD: []})) == 0
    assert refusal_score("unsupported", None) == 0


# ----- the eval's own reading of filters (ground truth) -----


def _truth(**kw) -> TruthRow:
    fields = {
        "account_id": PROD,
        "region": "us-east-1",
        "resource_type": "ec2:instance",
        "id": "i-0abc",
        "name": "prod-web-1",
        "state": "running",
        "tags": (("Name", "prod-web-1"), ("team", "web")),
        "conditions": frozenset(),
    }
    fields.update(kw)
    return TruthRow(**fields)


def test_ground_truth_filters():
    row = _truth()
    assert row_matches(row, {"resource_type": "ec2:instance"})
    assert row_matches(row, {"states": ["Running"], "tags": {"TEAM": "Web"}})
    assert not row_matches(row, {"states": ["stopped"]})
    assert not row_matches(row, {"tags": {"team": "data"}})
    assert not row_matches(row, {"tags": {"owner": "web"}})
    assert row_matches(row, {"name_contains": "WEB"})
    assert row_matches(row, {"name_contains": "0abc"})
    assert not row_matches(row, {"name_contains": "api"})
    assert row_matches(row, {"ids": ["prod-web-1"]}) and row_matches(row, {"ids": ["i-0abc"]})
    assert not row_matches(row, {"ids": ["prod-web-2"]})
    assert not row_matches(row, {"conditions": ["unattached"]})
    assert row_matches(_truth(conditions=frozenset({"unattached"})), {"conditions": ["unattached"]})


# ----- the report -----


def _result(
    heldout: bool, *, plan_ok=None, answer_ok=None, refusal_ok=None, latency=10.0
) -> QuestionResult:
    return QuestionResult(
        id="x",
        question="q",
        heldout=heldout,
        thread=None,
        covers=[],
        expected="e",
        got="g",
        latency_ms=latency,
        plan_ok=plan_ok,
        answer_ok=answer_ok,
        refusal_ok=refusal_ok,
    )


def test_report_scores_and_threshold():
    results = [
        _result(False, plan_ok=True, answer_ok=True, latency=5),
        _result(True, plan_ok=True, answer_ok=False, latency=15),
        _result(True, refusal_ok=True, latency=25),
        _result(False, refusal_ok=False, latency=35),
    ]
    report = EvalReport(
        results=results,
        threshold=0.9,
        moto_unchanged=True,
        moto_changes=[],
        planner="rule",
        elapsed_s=1.0,
    )
    everything, heldout = report.scores(), report.scores(heldout_only=True)
    assert everything.plan == (2, 2) and everything.answer == (1, 2)
    assert everything.refusal == (1, 2)
    assert heldout.questions == 2 and heldout.answer == (0, 1) and heldout.refusal == (1, 1)
    assert everything.latency_p50_ms == 20
    assert not report.passed
    assert any("answer accuracy (held-out)" in s for s in report.shortfalls())
    report.threshold = 0.0
    assert report.passed
    report.moto_unchanged = False
    assert not report.passed
    data = report.to_json()
    assert data["scores"]["heldout"]["answer_accuracy"] == 0.0
    assert data["passed"] is False and len(data["results"]) == 4


def test_percentile_and_short_plan():
    assert percentile([], 50) is None
    assert percentile([3.0], 95) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 50) == 3.0
    assert percentile([float(i) for i in range(1, 101)], 95) == pytest.approx(95.05)
    text = short_plan(canonical_plan(SPEC))
    assert "ec2:instance" in text and "by account" in text and PROD in text


# ----- the command -----


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OPSAGENT_"))}


def _eval(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [OPSAGENT, "eval", *args], capture_output=True, text=True, env=_env(), timeout=300, cwd=ROOT
    )


def test_eval_exits_non_zero_below_the_threshold(tmp_path):
    report = tmp_path / "report.json"
    done = _eval("--only", "product-ec2-prod", "--threshold", "1.01", "--json", str(report))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAIL" in done.stdout
    data = json.loads(report.read_text())
    assert data["passed"] is False and data["threshold"] == 1.01
    assert [r["id"] for r in data["results"]] == ["product-ec2-prod"]
    assert data["moto_unchanged"] is True
    assert set(data["scores"]) == {"all", "heldout"}


def test_eval_rejects_a_bad_question_file(tmp_path):
    bad = tmp_path / "questions.json"
    bad.write_text("{not json")
    done = _eval("--questions", str(bad))
    assert done.returncode == 1
    assert "cannot read" in done.stderr and "Traceback" not in done.stderr
