"""Log lines for journald: one readable line per event, its priority from the level.

systemd reads a ``<N>`` prefix on each line of a service's stderr as the syslog priority
(``SyslogLevelPrefix=``, on by default), so ``journalctl -u naskahd`` shows
``document.registered agenda=0001/M/2026 category=inbound ...`` and
``journalctl -u naskahd -p warning`` only warnings and worse. journald adds the time;
values with spaces or quotes are JSON strings, so every event stays on one line.
``connected()`` tells whether stderr is journald's stream (``$JOURNAL_STREAM``).
"""

from __future__ import annotations

import json
import os
from typing import Any

PRIORITY = {"critical": 2, "exception": 3, "error": 3, "warning": 4, "warn": 4, "info": 6, "debug": 7}


def connected(stream: Any) -> bool:
    """True when ``stream`` is the journald stream systemd gave this service."""
    value = os.environ.get("JOURNAL_STREAM", "")
    dev, _, ino = value.partition(":")
    if not (dev.isdigit() and ino.isdigit()):
        return False
    try:
        st = os.fstat(stream.fileno())
    except (OSError, AttributeError, ValueError):
        return False
    return (st.st_dev, st.st_ino) == (int(dev), int(ino))


def _value(v: Any) -> str:
    if isinstance(v, str) and v and not any(c.isspace() or c in "\"'=\\" for c in v):
        return v
    return json.dumps(v, ensure_ascii=False, default=str)


def render(_logger: Any, method_name: str, event_dict: dict[str, Any]) -> str:
    level = str(event_dict.pop("level", method_name))
    event_dict.pop("timestamp", None)  # journald keeps its own, exact one
    event_dict.pop("logger", None)
    event = str(event_dict.pop("event", ""))
    fields = " ".join(f"{k}={_value(v)}" for k, v in event_dict.items())
    line = f"{event} {fields}" if fields else event
    return f"<{PRIORITY.get(level, 6)}>{line}".replace("\n", " ")
