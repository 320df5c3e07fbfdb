"""structlog set-up: one processor chain, JSON lines off a terminal (journald), console on one.

Event names are stable (``document.registered``, ``document.duplicate``, ...): they are an
interface for operators' alerting, so change them only with a note in docs/.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog


def setup(*, json: bool | None = None, level: int = logging.INFO, stream: Any = None) -> None:
    stream = stream or sys.stderr
    if json is None:
        json = not stream.isatty()
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
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
