"""The audit trail: one structured JSON record per AWS-facing action (logger ``opsagent.audit``).

Each record is logged as a JSON string, so it stays machine-readable whatever handler or
formatter the service installs, and the same fields ride along as ``record.audit`` for
formatters that build their own JSON.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from opsagent.access.errors import AccessError

if TYPE_CHECKING:
    from opsagent.access.identity import Asker
    from opsagent.access.reads import Read
    from opsagent.registry import Account

audit_logger = logging.getLogger("opsagent.audit")


def audit(event: str, *, level: int = logging.INFO, **fields: Any) -> dict[str, Any]:
    """Log one audit record and return it (tests and callers may inspect it)."""
    record = {"event": event, "time": datetime.now(UTC).isoformat(), **fields}
    audit_logger.log(level, json.dumps(record, default=str), extra={"audit": record})
    return record


@contextmanager
def audited_reads(
    event: str, asker: Asker, account: Account, reads: Sequence[Read], **fields: Any
) -> Iterator[dict[str, Any]]:
    """One audit record for one account's reads sent somewhere (a script to the AWS MCP
    Server, a call to AgentCore Gateway), written however the sending ends: who, which
    account, which reads, how long, and the outcome. The body fills the yielded dict with
    what a success says (``outcome``, counts); a failure says its status and message."""
    started = time.monotonic()
    outcome: dict[str, Any] = {}
    try:
        yield outcome
    except BaseException as exc:
        outcome.clear()
        outcome["outcome"] = exc.status if isinstance(exc, AccessError) else "error"
        outcome["error"] = str(exc) or type(exc).__name__
        raise
    finally:
        audit(
            event,
            level=logging.WARNING if outcome.get("error") else logging.INFO,
            **asker.audit_fields(),
            account_id=account.id,
            account_alias=account.alias,
            **fields,
            reads=sorted(
                {f"{r.service}:{r.operation}:{r.region}" for x in reads for r in x.walk()}
            ),
            elapsed_ms=int((time.monotonic() - started) * 1000),
            **outcome,
        )
