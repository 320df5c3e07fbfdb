"""The dashboard: the first page after login. What ``naskahd status`` says, for a person.

Health, letters filed today and this month per category, files waiting and why, review
items, drives (red when their last verified backup is older than ``[backup] max_age_days``)
and problems with what to do. The page reloads itself (static/refresh.js); ``/status.json``
gives the same data to a program. Exempt letters' names are never in it (``status``
withholds them already).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from starlette.responses import JSONResponse, Response

from naskahd.categories import CATEGORIES
from naskahd.web.app import page
from naskahd.web.view import Ctx, render

REFRESH_SECONDS = 30


def _since_counts(ctx: Ctx, since: dt.datetime) -> dict[str, int]:
    from naskahd.register import Document

    # One COUNT per category, each a range of the (category, received_at) index, read from
    # the index alone. GROUP BY makes SQLite walk the whole register by the category index
    # instead (0.2 s at 200,000 documents), and fetching the rows costs one per document.
    with ctx.sessions() as s:
        return {c: s.scalar(select(func.count()).select_from(Document)
                            .where(Document.category == c, Document.received_at >= since)) or 0 for c in CATEGORIES}


def data(ctx: Ctx, now: dt.datetime | None = None) -> dict[str, Any]:
    from naskahd.cli.status_cmd import gather

    info = gather(ctx.cfg, ctx.sessions)
    local = (now or dt.datetime.now(dt.UTC)).astimezone(ctx.cfg.timezone)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    info["today"] = _since_counts(ctx, day.astimezone(dt.UTC))
    info["this_month"] = _since_counts(ctx, day.replace(day=1).astimezone(dt.UTC))
    max_age = dt.timedelta(days=ctx.cfg.backup_max_age_days)
    utc_now = dt.datetime.now(dt.UTC)
    for d in info["drives"]:
        last = dt.datetime.fromisoformat(d["last_verified"]) if d["last_verified"] else None
        d["stale"] = last is None or utc_now - last > max_age
    info["review_items"] = review_items(ctx)
    return info


def review_items(ctx: Ctx) -> list[dict[str, Any]]:
    """The review folder's items with reason and origin (letters/triage.py)."""
    from naskahd.letters import triage

    return triage.items(ctx.cfg, ctx.sessions, triage.REVIEW)


@page
def dashboard(ctx: Ctx) -> Response:
    return render(ctx, "dashboard.html", info=data(ctx), categories=CATEGORIES, refresh=REFRESH_SECONDS)


@page
def status_json(ctx: Ctx) -> Response:
    info = data(ctx)
    return JSONResponse({k: v for k, v in info.items() if k != "review_items"})


def routes() -> list[tuple[str, Any, tuple[str, ...]]]:
    return [("/", dashboard, ("GET",)), ("/status.json", status_json, ("GET",))]
