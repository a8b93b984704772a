"""The merged answer's text when many accounts fail: counted, the first few named."""

from __future__ import annotations

from opsagent.graph.answer import NAMED_FAILURES, build_answer
from opsagent.graph.models import AccountResult, Plan, Resource, ResourceQuery


def _result(n: int, status: str, error: str | None = None, rows: int = 0) -> AccountResult:
    account_id = f"{100000000000 + n}"
    return AccountResult(
        account_id=account_id,
        alias=f"acct-{n}",
        status=status,
        error=error,
        rows=[
            Resource(
                account_id=account_id,
                account_alias=f"acct-{n}",
                region="us-east-1",
                resource_type="s3:bucket",
                id=f"bucket-{n}-{i}",
            )
            for i in range(rows)
        ],
    )


def _answer(results: list[AccountResult]):
    plan = Plan(
        accounts=[r.account_id for r in results],
        queries=[ResourceQuery(resource_type="s3:bucket")],
    )
    return build_answer("buckets everywhere", plan, None, results)


def test_a_few_failures_are_each_named():
    results = [
        _result(1, "ok", rows=2),
        _result(2, "timeout", "no answer within 90s"),
        _result(3, "ok", "1 read failed: us-west-2 s3 ListBuckets: AccessDenied: no", rows=1),
    ]
    text = _answer(results).text
    assert "acct-2 (100000000002) could not be queried: timeout: no answer within 90s." in text
    assert "acct-3 (100000000003) answered in part: 1 read failed" in text
    assert "did not answer in full" not in text


def test_many_failures_are_counted_and_only_the_first_few_named():
    results = (
        [_result(n, "ok", rows=1) for n in range(3)]
        + [_result(n, "timeout", "no answer within 90s") for n in range(3, 3 + 700)]
        + [_result(n, "denied", "AssumeRole refused") for n in range(703, 703 + 300)]
        + [_result(n, "ok", "stopped at the page limit", rows=1) for n in range(1003, 1005)]
    )
    answer = _answer(results)
    text = answer.text
    assert "Found 5 S3 buckets across 5 accounts" in text
    assert (
        "1,002 accounts did not answer in full (timeout 700, denied 300, "
        "answered in part 2); the first 5:"
    ) in text
    assert text.count("could not be queried") + text.count("answered in part:") == NAMED_FAILURES
    assert "The other 997 are in the per-account results." in text
    assert len(text) < 2_000  # one paragraph, however many accounts failed
    assert len(answer.to_json()["accounts"]) == len(results)  # nothing is lost


def test_when_nothing_answered_the_failures_are_counted_too():
    results = [_result(n, "error", "the MCP server is down") for n in range(40)]
    text = _answer(results).text
    assert text.startswith("None of the 40 accounts could be queried")
    assert "40 accounts did not answer in full (error 40); the first 5:" in text


def test_regions_not_enabled_are_reported_per_region_and_are_not_failures():
    results = [_result(n, "ok", rows=1) for n in range(1, 9)]
    for result in results[:7]:
        result.regions_not_enabled = ["af-south-1"]
    results[0].regions_not_enabled = ["af-south-1", "ap-east-1"]
    text = _answer(results).text
    assert "af-south-1 is not enabled in acct-1, acct-2, acct-3, acct-4, acct-5 and 2 more" in text
    assert "ap-east-1 is not enabled in acct-1 (" in text
    assert "did not answer" not in text and "could not be queried" not in text


def test_an_answer_from_reused_reads_says_how_old_they_are():
    from datetime import UTC, datetime, timedelta

    results = [_result(1, "ok", rows=1), _result(2, "ok", rows=1)]
    fresh_text = _answer(results).text
    assert "reused" not in fresh_text
    results[1].read_at = datetime.now(UTC) - timedelta(minutes=4)
    results[1].reused = True
    text = _answer(results).text
    assert "Data read 4 min ago, reused from an earlier question" in text
    assert "--fresh" in text


def test_a_count_over_hundreds_of_accounts_names_the_most_and_sums_the_rest():
    results = [_result(n, "ok", rows=1) for n in range(1, 501)]
    results[41] = _result(42, "ok", rows=7)
    results[99] = _result(100, "ok", rows=3)
    text = _answer(results).text
    assert text.startswith(
        "Found 508 S3 buckets across 500 accounts; most in acct-42 7, acct-100 3, "
    )
    assert "and 490 in the other 490 accounts (every account is in the table)." in text
    assert len(text) < 500
    few = _answer(results[:3]).text
    assert few.startswith("Found 3 S3 buckets across 3 accounts: acct-1 1, acct-2 1, acct-3 1.")
