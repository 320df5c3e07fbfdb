"""The review folder and the duplicates: each item with its reason and the folder it came
from; the operator moves a review item into a category (the running daemon then files it
through the normal filing path: ``letters.triage.move`` puts it back into the drop folder)
or marks a duplicate as seen. An item from ``dikecualikan/`` can only go back there."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from naskahd.categories import CATEGORIES
from naskahd.i18n import _
from naskahd.web.app import page
from naskahd.web.view import Ctx, render


def _page(ctx: Ctx, status: int = 200, **values: Any) -> Response:
    from naskahd.letters import triage

    items = triage.items(ctx.cfg, ctx.sessions)
    return render(ctx, "review.html", status, review=[i for i in items if i["kind"] == "review"],
                  duplicates=[i for i in items if i["kind"] == "duplicate"], categories=CATEGORIES, **values)


@page
def review(ctx: Ctx) -> Response:
    return _page(ctx)


@page(action="triage")
def move(ctx: Ctx) -> Response:
    from naskahd.letters import triage

    done = triage.move(ctx.cfg, ctx.field("item"), ctx.field("category"), by=f"web:{ctx.user.name}")
    return _page(ctx, done=_("Moved into {folder}: the daemon files it within a few seconds.").format(folder=done["moved_to"]))


@page(action="triage")
def seen(ctx: Ctx) -> Response:
    from naskahd.letters import triage

    done = triage.mark_seen(ctx.cfg, ctx.field("item"), by=f"web:{ctx.user.name}")
    return _page(ctx, done=_("Marked as seen: a copy of {agenda}.").format(agenda=done["duplicate_of"]))


def routes() -> list[tuple[str, Any, tuple[str, ...]]]:
    return [("/review", review, ("GET",)), ("/review/move", move, ("POST",)), ("/review/seen", seen, ("POST",))]
