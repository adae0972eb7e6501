"""Logging: one line per event, ``key=value`` context, to stderr.

    2026-11-24T08:00:01Z info poll.done source="EU Delegation" items=12 new=2 matches=1

Call ``event(logger, "poll.done", source=…, items=…)``; ``setup()`` once, in cli.py.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def event(logger: logging.Logger, name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one event with its fields, as ``name key=value …``."""
    logger.log(level, name, extra={"fields": fields})


def _value(value: object) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' "=\n\t'):
        return json.dumps(text, ensure_ascii=False)
    return text


class KeyValueFormatter(logging.Formatter):
    """``time level event key=value …``, one line per record."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        fields: dict[str, Any] = getattr(record, "fields", {})
        parts = [when, record.levelname.lower(), record.getMessage()]
        parts += [f"{key}={_value(value)}" for key, value in fields.items()]
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per record, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
            "logger": record.name,
        }
        data.update(getattr(record, "fields", {}))
        if record.exc_info:
            data["traceback"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def setup(level: int = logging.INFO, fmt: str = "text") -> None:
    """Send press-monitor's log records to stderr; quiet the chattiest libraries."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else KeyValueFormatter())
    root = logging.getLogger("monitor")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    for noisy in ("trafilatura", "htmldate", "apscheduler", "aiohttp.access", "charset_normalizer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # A tick skipped because the source's previous poll still runs is expected (max_instances
    # = 1); it is counted in /metrics, not printed once per source per tick.
    logging.getLogger("apscheduler.executors").setLevel(logging.ERROR)
    # The scheduler's own warnings go through our handler, one formatted line each.
    logging.getLogger("apscheduler").handlers[:] = [handler]
    logging.getLogger("apscheduler").propagate = False
