"""The register: search with pagination, each document's page, and its details form.

What is sent comes from ``naskahd.letters`` (search, view), whose dicts never hold an
exempt letter's name or any of its details but the agenda number, dates and sifat; the
details form of an exempt letter offers only those, and ``letters.details.annotate``
refuses anything else (a subject for an exempt letter is not accepted).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.responses import JSONResponse, Response

from naskahd.categories import CATEGORIES
from naskahd.errors import NaskahdError
from naskahd.web.app import page
from naskahd.web.view import Ctx, redirect, render

SEARCH_FIELDS = ("text", "agenda", "category", "date_field", "date_from", "date_to", "nomor", "perihal", "sifat")


def _search(ctx: Ctx) -> tuple[Any, Any, str | None]:
    from naskahd.letters import search

    params = {k: ctx.request.query_params.get(k, "") for k in (*SEARCH_FIELDS, "page")}
    error = None
    try:
        query = search.Query.from_params(params)
    except NaskahdError as exc:
        error, query = exc.render(), search.Query()
    with ctx.sessions() as s:
        result = search.search(s, query, ctx.cfg.timezone)
    return params, result, error


@page
def register(ctx: Ctx) -> Response:
    params, result, error = _search(ctx)
    kept = {k: v for k, v in params.items() if v and k != "page"}
    return render(ctx, "register.html", result=result, params=params, error=error, categories=CATEGORIES,
                  sifat=ctx.cfg.sifat, page_link=lambda n: "/register?" + urlencode({**kept, "page": n}))


@page
def register_json(ctx: Ctx) -> Response:
    _params, result, error = _search(ctx)
    return JSONResponse({**result.as_dict(), "error": error})


def _document(ctx: Ctx) -> dict[str, Any]:
    from starlette.exceptions import HTTPException

    from naskahd.letters import view

    with ctx.sessions() as s:
        doc = view.document(s, int(ctx.request.path_params["id"]), ctx.cfg.timezone)
    if doc is None:
        raise HTTPException(404)
    return doc


@page
def document(ctx: Ctx) -> Response:
    return render(ctx, "document.html", doc=_document(ctx), saved=ctx.field("saved") == "1")


@page(action="details")
def details(ctx: Ctx) -> Response:
    from naskahd.letters.details import FIELDS, annotate

    doc = _document(ctx)
    changes = {f: ctx.field(f) if f != "catatan" else str(ctx.form.get(f, "") if ctx.form else "")
               for f in FIELDS if ctx.form is not None and f in ctx.form}
    try:
        annotate(ctx.sessions, ctx.cfg, doc["agenda"], changes, by=f"web:{ctx.user.name}")
    except NaskahdError as exc:
        doc["details"].update({k: v for k, v in changes.items() if not doc["exempt"]})
        return render(ctx, "document.html", 400, doc=doc, saved=False, error=exc.render(),
                      error_field=getattr(exc, "field", None))
    return redirect(f"/document/{doc['id']}?saved=1")


def routes() -> list[tuple[str, Any, tuple[str, ...]]]:
    return [("/register", register, ("GET",)), ("/register.json", register_json, ("GET",)),
            ("/document/{id:int}", document, ("GET",)), ("/document/{id:int}/details", details, ("POST",))]
