"""The audit record of a question however its run ends, and the one JSON log stream."""

from __future__ import annotations

import json
import logging
import logging.config

import pytest

from opsagent.graph.models import AccountResult, Answer, Plan, ResourceQuery
from opsagent.service.logs import log_config, question_audit

PLAN = Plan(accounts=["222222222222"], queries=[ResourceQuery(resource_type="s3:bucket")])
ANSWER = Answer(
    question="q",
    text="t",
    plan=PLAN,
    results=[AccountResult(account_id="222222222222", alias="production", status="ok", reads=1)],
)


def _record(caplog: pytest.LogCaptureFixture) -> dict:
    [record] = [json.loads(r.getMessage()) for r in caplog.records if r.name == "opsagent.audit"]
    return record


def _audit(**kwargs):
    return question_audit(
        "q", user="u", groups=("g",), thread_id="t", visible_accounts=None, **kwargs
    )


def test_a_reader_that_stops_once_it_has_the_answer_leaves_an_answered_record(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="opsagent.audit")
    with pytest.raises(GeneratorExit), _audit() as audited:
        audited["answer"] = ANSWER
        raise GeneratorExit  # what closing the stream after its last item raises
    record = _record(caplog)
    assert record["outcome"] == "answered"
    assert record["accounts"]["222222222222"]["reads"] == 1


def test_a_run_cancelled_before_its_answer_says_so_with_the_accounts_it_planned(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="opsagent.audit")
    with pytest.raises(GeneratorExit), _audit() as audited:
        audited["asked"] = ["222222222222", "333333333333"]
        raise GeneratorExit
    record = _record(caplog)
    assert record["outcome"] == "cancelled"
    assert (
        record["accounts_asked"]
        == record["accounts_allowed"]
        == [
            "222222222222",
            "333333333333",
        ]
    )


def test_every_record_is_one_json_object_with_its_fields_at_the_top() -> None:
    config = log_config("off", "service")
    formatter = logging.config.DictConfigurator(config).configure_formatter(  # type: ignore[attr-defined]
        config["formatters"]["json"]
    )
    plain = logging.LogRecord("uvicorn.error", logging.INFO, "", 0, "Started", None, None)
    event = logging.LogRecord(
        "opsagent.service",
        logging.INFO,
        "",
        0,
        json.dumps({"event": "answered", "n": 3}),
        None,
        None,
    )
    assert json.loads(formatter.format(plain))["event"] == "Started"
    rendered = json.loads(formatter.format(event))
    assert rendered["event"] == "answered" and rendered["n"] == 3
    assert rendered["level"] == "info" and rendered["logger"] == "opsagent.service"
