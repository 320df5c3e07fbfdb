"""Reports: generate a month's, download it (PDF or CSV), and the sign-offs: the Kasi
reviews, the Kabid validates after the review, each with a note. Through
``naskahd.report.registry``, with the same rules as ``naskahd report``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.responses import Response

from naskahd.i18n import _
from naskahd.web.app import page
from naskahd.web.view import Ctx, redirect, render

WEB_FORMATS = ("pdf", "csv")


def _page(ctx: Ctx, status: int = 200, **values: Any) -> Response:
    from naskahd.report import registry

    rows = list(reversed(registry.listing(ctx.sessions, ctx.cfg)))
    this_month = dt.datetime.now(ctx.cfg.timezone).strftime("%Y-%m")
    return render(ctx, "reports.html", status, reports=rows, this_month=this_month, formats=WEB_FORMATS, **values)


@page
def reports(ctx: Ctx) -> Response:
    done = {"generated": _("The report was made."), "reviewed": _("The review was recorded."),
            "validated": _("The validation was recorded.")}.get(ctx.field("done"))
    return _page(ctx, done=done)


@page(action="generate")
def generate(ctx: Ctx) -> Response:
    from naskahd.errors import UsageError
    from naskahd.report import period, registry

    fmt = ctx.field("format", "pdf")
    if fmt not in WEB_FORMATS:
        raise UsageError(_("unknown report format {value!r}: use pdf, csv or json").format(value=fmt))
    chosen = period.month(ctx.field("month"))
    registry.generate(ctx.sessions, ctx.cfg, chosen, fmt, ctx.lang, actor=f"web:{ctx.user.name}")
    return redirect("/reports?done=generated")


def _id(ctx: Ctx) -> int:
    return int(ctx.request.path_params["id"])


@page(action="review")
def review(ctx: Ctx) -> Response:
    from naskahd.report import registry

    registry.review(ctx.sessions, ctx.cfg, _id(ctx), ctx.user.signer, ctx.field("note") or None)
    return redirect("/reports?done=reviewed")


@page(action="validate")
def validate(ctx: Ctx) -> Response:
    from naskahd.report import registry

    registry.validate(ctx.sessions, ctx.cfg, _id(ctx), ctx.user.signer, ctx.field("note") or None)
    return redirect("/reports?done=validated")


@page
def download(ctx: Ctx) -> Response:
    from naskahd.report import registry

    with ctx.sessions() as s:
        row = registry.get(s, _id(ctx))
        outdated = registry.is_outdated(s, ctx.cfg, row)
    content = registry.render(row, outdated)
    name = f"laporan-{registry.period_of(row).label.replace('..', '_')}-{row.id}.{row.format}"
    media = {"pdf": "application/pdf", "csv": "text/csv; charset=utf-8", "json": "application/json"}[row.format]
    return Response(content, media_type=media, headers={"content-disposition": f'attachment; filename="{name}"'})


def routes() -> list[tuple[str, Any, tuple[str, ...]]]:
    return [("/reports", reports, ("GET",)), ("/reports/generate", generate, ("POST",)),
            ("/reports/{id:int}/download", download, ("GET",)), ("/reports/{id:int}/review", review, ("POST",)),
            ("/reports/{id:int}/validate", validate, ("POST",))]
