"""What the agent writes down: the service's log (one JSON stream) and the audit trail.

Two streams, each JSON lines:

* the log (stderr): every logger's records, ours, uvicorn's, the sandbox's, each as one JSON
  object with ``time``, ``level``, ``logger`` and ``event``; a record whose message is
  already a JSON object (our events) is that object, not a string inside one;
* the audit trail (``opsagent.audit``): one record per question (``question``: who, their
  groups, the question, the accounts asked and allowed, reads made per account, outcome,
  duration) and one per script sent to an account (``aws.script``, ``sts.assume_role``),
  to ``OPSAGENT_AUDIT_LOG``: stdout (the service's default), stderr, a file, or off (the
  CLI's default, so `opsagent ask` prints only its answer and progress).

Rendering is structlog's ``ProcessorFormatter`` over the standard library's records, so any
library's logging ends up in the same stream without knowing about it.
"""

from __future__ import annotations

import json
import logging
import logging.config
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import structlog

from opsagent.access.audit import audit, audit_logger
from opsagent.graph.models import Answer

AUDIT_LOGGER = audit_logger.name
STREAMS = {"stdout": "ext://sys.stdout", "stderr": "ext://sys.stderr"}
EntryPoint = Literal["service", "cli"]


def _json_message(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """A record logged as a JSON object (our events, the audit records) becomes that object."""
    event_dict.pop("color_message", None)  # uvicorn's terminal colours of the same text
    fields = event_dict.pop("audit", None)
    if not isinstance(fields, dict):
        message = event_dict.get("event")
        if isinstance(message, str) and message.startswith("{"):
            try:
                fields = json.loads(message)
            except ValueError:
                fields = None
    if isinstance(fields, dict):
        del event_dict["event"]
        event_dict.update(fields)
    return event_dict


def _formatter() -> dict[str, Any]:
    return {
        "()": structlog.stdlib.ProcessorFormatter,
        "foreign_pre_chain": [
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
            structlog.stdlib.ExtraAdder(),
            _json_message,
        ],
        "processors": [
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(default=str),
        ],
    }


def audit_handler(sink: str) -> dict[str, Any]:
    """The handler of the audit trail for OPSAGENT_AUDIT_LOG's value."""
    if sink == "off":
        return {"class": "logging.NullHandler"}
    if sink in STREAMS:
        return {"class": "logging.StreamHandler", "formatter": "json", "stream": STREAMS[sink]}
    return {"class": "logging.FileHandler", "formatter": "json", "filename": sink}


def log_config(audit_sink: str | None, entry: EntryPoint) -> dict[str, Any]:
    """The logging configuration (``logging.config.dictConfig``; uvicorn's ``log_config``)."""
    sink = audit_sink or ("stdout" if entry == "service" else "off")
    # The CLI shows progress itself: only warnings reach its stderr.
    level = "INFO" if entry == "service" else "WARNING"
    stderr = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": _formatter()},
        "handlers": {"log": stderr, "audit": audit_handler(sink)},
        # Libraries (httpx, mcp, botocore) say only what is wrong; ours and uvicorn's more.
        "root": {"handlers": ["log"], "level": "WARNING"},
        "loggers": {
            "opsagent": {"level": level},
            # uvicorn's own handlers would write its lines a second time, unformatted.
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.access": {"handlers": [], "level": level, "propagate": True},
            AUDIT_LOGGER: {"handlers": ["audit"], "level": "INFO", "propagate": False},
        },
    }


def configure(audit_sink: str | None, entry: EntryPoint) -> None:
    logging.config.dictConfig(log_config(audit_sink, entry))


@contextmanager
def question_audit(
    question: str,
    *,
    user: str,
    groups: tuple[str, ...],
    thread_id: str | None,
    visible_accounts: frozenset[str] | None,
) -> Iterator[dict[str, Any]]:
    """One audit record for one question, written when it ends however it ends. The caller
    puts the planned accounts under ``"asked"`` of the yielded dict as soon as it knows them,
    and the Answer under ``"answer"`` once it has one."""
    started = time.monotonic()
    outcome: dict[str, Any] = {}
    failure: str | None = "cancelled"
    try:
        yield outcome
        failure = None
    except BaseException as exc:
        if outcome.get("answer") is None:  # a reader that stops once it has the answer: done
            failure = "cancelled" if not isinstance(exc, Exception) else f"failed: {exc!r}"[:500]
        else:
            failure = None
        raise
    finally:
        answer: Answer | None = outcome.get("answer")
        audit(
            "question",
            user=user,
            groups=list(groups),
            thread_id=thread_id,
            question=question,
            **_accounts(answer, outcome.get("asked", []), visible_accounts),
            outcome=failure or _outcome(answer),
            duration_ms=int((time.monotonic() - started) * 1000),
        )


def _outcome(answer: Answer | None) -> str:
    if answer is None:
        return "no answer"
    if answer.refusal is not None:
        return f"refused: {answer.refusal.kind}"
    statuses = {r.status for r in answer.results}
    if statuses <= {"ok"}:
        return "answered"
    return "answered in part" if "ok" in statuses else "no account answered"


def _accounts(
    answer: Answer | None, planned: list[str], visible: frozenset[str] | None
) -> dict[str, Any]:
    """Accounts asked (the plan's, or those a denial names), those of them the caller may
    see, and per account what was read."""
    asked = list(planned)
    if answer is not None and answer.plan is not None:
        asked = list(answer.plan.accounts)
    elif answer is not None and answer.refusal is not None:
        asked = list(answer.refusal.accounts)
    return {
        "accounts_asked": asked,
        "accounts_allowed": [a for a in asked if visible is None or a in visible],
        "accounts": {
            r.account_id: {
                "status": r.status,
                "reads": r.reads,
                "rows": r.count,
                "reused": r.reused,
                "elapsed_ms": r.elapsed_ms,
                **({"error": r.error} if r.error else {}),
            }
            for r in (answer.results if answer is not None else [])
        },
    }
