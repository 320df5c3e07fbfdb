"""One request's context and the page it renders: language, signed-in user, templates.

Templates are Jinja2's with autoescaping on (a letter's subject with HTML in it is shown
as text) and the i18n extension: ``{{ _("...") }}`` goes through naskahd.i18n, in the
language of this request (``i18n.using``), Indonesian unless the reader chose English.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from naskahd import i18n
from naskahd.i18n import N_
from naskahd.web.auth import ROLE_TITLES
from naskahd.web.sessions import Signed

TEMPLATES = Path(__file__).with_name("templates")
LANG_COOKIE = "naskahd_lang"
DEFAULT_LANG = "id"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             extensions=["jinja2.ext.i18n"], undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.install_gettext_callables(i18n._, i18n.ngettext, newstyle=False)  # type: ignore[attr-defined]
    return env


ENV = _environment()


@dataclass
class Ctx:
    request: Request
    app: Any  # the WebApp (app.py)
    lang: str
    signed: Signed | None = None
    form: FormData | None = None
    cookies: list[tuple[str, str, int | None]] = field(default_factory=list)  # set on the response

    @property
    def cfg(self) -> Any:
        return self.app.cfg

    @property
    def sessions(self) -> Any:
        return self.app.sessions

    @property
    def user(self) -> Any:
        assert self.signed is not None
        return self.signed.user

    def field(self, name: str, default: str = "") -> str:
        value = self.form.get(name) if self.form is not None else self.request.query_params.get(name)
        return value.strip() if isinstance(value, str) else default

    def local(self, when: dt.datetime | str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        if when is None or when == "":
            return "-"
        if isinstance(when, str):
            when = dt.datetime.fromisoformat(when)
        return when.astimezone(self.cfg.timezone).strftime(fmt)


CATEGORY_TITLES = {"inbound": N_("inbound letters"), "outbound": N_("outbound letters"),
                   "exempt": N_("exempt (classified) letters")}


def render(ctx: Ctx, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    page = ENV.get_template(template).render(
        ctx=ctx, user=ctx.signed.user if ctx.signed else None, csrf=ctx.signed.csrf if ctx.signed else "",
        lang=ctx.lang, path=ctx.request.url.path, fingerprint=ctx.app.fingerprint, role_title=lambda r: i18n._(ROLE_TITLES[r]),
        category_title=lambda c: i18n._(CATEGORY_TITLES[c]) if c in CATEGORY_TITLES else c,
        local=ctx.local, **values)
    return HTMLResponse(page, status_code=status)


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def plain(status: int, text: str) -> Response:
    return Response(text, status_code=status, media_type="text/plain; charset=utf-8")
