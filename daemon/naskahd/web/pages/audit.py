"""The audit log: the hash-chained trail, newest first, filterable, with the chain check.

The check walks the whole chain; its result is kept for ``CHECK_TTL`` seconds (and while
the chain's head is unchanged), so reloading the page does not walk it each time.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import func, select
from starlette.responses import Response

from naskahd import audit
from naskahd.errors import UsageError
from naskahd.i18n import _
from naskahd.register import AuditEvent
from naskahd.web.app import page
from naskahd.web.view import Ctx, render

PER_PAGE = 100
CHECK_TTL = 60.0
_checked: dict[str, Any] = {}
_lock = threading.Lock()


def chain_check(ctx: Ctx) -> audit.ChainCheck:
    with ctx.sessions() as s:
        head = audit.head(s)
        with _lock:
            cached = _checked.get("result")
            if cached and cached[0] == head and time.monotonic() - cached[1] < CHECK_TTL:
                return cached[2]
        result = audit.verify_chain(s)
    with _lock:
        _checked["result"] = (head, time.monotonic(), result)
    return result


def _day(ctx: Ctx, name: str, end: bool = False) -> dt.datetime | None:
    text = ctx.field(name)
    if not text:
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise UsageError(_("{value!r} is not a date; write it as 2026-11-30").format(value=text)) from None
    start = dt.datetime.combine(day + dt.timedelta(days=1 if end else 0), dt.time(), ctx.cfg.timezone)
    return start.astimezone(dt.UTC)


@page
def audit_log(ctx: Ctx) -> Response:
    event, actor = ctx.field("event"), ctx.field("actor")
    page_no = int(ctx.field("page")) if ctx.field("page").isdigit() else 1
    where = []
    if event:
        where.append(AuditEvent.event == event)
    if actor:
        where.append(AuditEvent.actor.contains(actor, autoescape=True))
    since, until = _day(ctx, "date_from"), _day(ctx, "date_to", end=True)
    if since:
        where.append(AuditEvent.at >= since)
    if until:
        where.append(AuditEvent.at < until)
    with ctx.sessions() as s:
        total = s.scalar(select(func.count()).select_from(AuditEvent).where(*where)) or 0
        rows = [{"seq": r.seq, "at": r.at, "event": r.event, "actor": r.actor, "details": json.loads(r.details),
                 "sha256": r.sha256} for r in s.scalars(select(AuditEvent).where(*where).order_by(AuditEvent.seq.desc())
                                                         .limit(PER_PAGE).offset((page_no - 1) * PER_PAGE))]
    pages = max(1, -(-total // PER_PAGE))
    kept = {k: ctx.field(k) for k in ("event", "actor", "date_from", "date_to") if ctx.field(k)}
    return render(ctx, "audit.html", rows=rows, total=total, page=page_no, pages=pages, check=chain_check(ctx),
                  events=audit.EVENTS, params=kept, page_link=lambda n: "/audit?" + urlencode({**kept, "page": n}))


def routes() -> list[tuple[str, Any, tuple[str, ...]]]:
    return [("/audit", audit_log, ("GET",))]
