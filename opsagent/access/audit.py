"""The audit trail: one structured JSON record per AWS-facing action (logger ``opsagent.audit``).

Each record is logged as a JSON string, so it stays machine-readable whatever handler or
formatter the service installs, and the same fields ride along as ``record.audit`` for
formatters that build their own JSON.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

audit_logger = logging.getLogger("opsagent.audit")


def audit(event: str, *, level: int = logging.INFO, **fields: Any) -> dict[str, Any]:
    """Log one audit record and return it (tests and callers may inspect it)."""
    record = {"event": event, "time": datetime.now(UTC).isoformat(), **fields}
    audit_logger.log(level, json.dumps(record, default=str), extra={"audit": record})
    return record
