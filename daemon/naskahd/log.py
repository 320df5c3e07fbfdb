"""structlog set-up: one processor chain, JSON lines off a terminal (journald), console on one.

Event names are stable (``document.registered``, ``document.duplicate``, ...): they are an
interface for operators' alerting, so change them only with a note in docs/.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from datetime import tzinfo
from typing import Any

import structlog


def _office_time(timezone: tzinfo) -> Any:
    """Console lines carry the office's local time, as `status` shows it (JSON stays UTC)."""

    def stamp(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        event_dict["timestamp"] = dt.datetime.now(timezone).strftime("%Y-%m-%d %H:%M:%S %Z")
        return event_dict

    return stamp


def setup(*, json: bool | None = None, level: int = logging.INFO, stream: Any = None,
          timezone: tzinfo | None = None) -> None:
    stream = stream or sys.stderr
    if json is None:
        json = not stream.isatty()
    stamper = (structlog.processors.TimeStamper(fmt="iso", utc=True) if json or timezone is None
               else _office_time(timezone))
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        stamper,
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]
    renderer: Any
    if json:
        processors.append(structlog.processors.EventRenamer("event"))
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str | None = None, **initial: Any) -> Any:
    log = structlog.get_logger()
    if name:
        initial["logger"] = name
    return log.bind(**initial) if initial else log
