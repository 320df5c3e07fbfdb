"""Signing in and out, and the choice of language."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from naskahd import audit, i18n
from naskahd.i18n import _
from naskahd.web import auth, csrf, sessions
from naskahd.web.app import page
from naskahd.web.view import LANG_COOKIE, Ctx, redirect, render


def _address(request: Request) -> str:
    return request.client.host if request.client else "-"


def _next(value: str) -> str:
    """Only a path of this site (never ``//elsewhere`` or a full address)."""
    if value.startswith("/") and not value.startswith("//") and "\\" not in value and "\n" not in value:
        return value
    return "/"


async def wait_turn(app: Any, request: Request, form: Any) -> Response | None:
    """Before a password is tried: refused while the account or address is locked out,
    else slowed down after a few failures (in the event loop: no thread is held)."""
    if request.method != "POST" or form is None:
        return None
    name = str(form.get("username", ""))[: auth.MAX_NAME]
    refused, delay, retry = app.throttle.check(name, _address(request))
    if refused:
        with i18n.using(app.language(request)) as lang:
            ctx = Ctx(request, app, lang)
            return render(ctx, "login.html", 429, next=_next(str(form.get("next", "/"))), login_csrf="",
                          error=_("Too many failed sign-ins for this account or from this computer: wait {m} minute(s), "
                                  "or ask the operator to check the audit log.").format(m=int(retry // 60) + 1))
    if delay:
        await asyncio.sleep(delay)
    return None


def _login_form(ctx: Ctx, status: int = 200, error: str | None = None) -> Response:
    token = ctx.request.cookies.get(csrf.LOGIN_COOKIE) or csrf.new_token()
    ctx.cookies.append((csrf.LOGIN_COOKIE, token, None))
    return render(ctx, "login.html", status, login_csrf=token, error=error, next=_next(ctx.field("next", "/") or "/"))


@page(public=True)
def login(ctx: Ctx) -> Response:
    if ctx.request.method == "GET":
        if ctx.signed is not None:
            return redirect(_next(ctx.field("next", "/") or "/"))
        return _login_form(ctx)
    if not csrf.matches(ctx.request.cookies.get(csrf.LOGIN_COOKIE), ctx.field(csrf.FIELD)):
        return _login_form(ctx, 403, _("The sign-in form had expired: please sign in again."))
    name, password = ctx.field("username"), (ctx.form.get("password") if ctx.form else "") or ""
    address = _address(ctx.request)
    user = auth.authenticate(ctx.sessions, name, str(password))
    if user is None:
        ctx.app.throttle.failed(name, address)
        known = auth.exists(ctx.sessions, name)
        with ctx.sessions.begin() as s:
            # The name typed is kept only when it is an account's (never a password typed there by mistake).
            audit.record(s, "web.login_failed", actor="web", user=name if known else None, address=address)
        return _login_form(ctx, 401, _("Wrong user name or password."))
    ctx.app.throttle.succeeded(name)
    token = sessions.start(ctx.sessions, user)
    with ctx.sessions.begin() as s:
        audit.record(s, "web.login", actor=f"web:{user.name}", user=user.name, role=user.role, address=address)
    ctx.cookies.append((sessions.COOKIE, token, None))
    ctx.cookies.append((csrf.LOGIN_COOKIE, "", 0))
    return redirect(_next(ctx.field("next", "/") or "/"))


login.fn.throttled = True  # type: ignore[attr-defined]


@page
def logout(ctx: Ctx) -> Response:
    assert ctx.signed is not None
    sessions.end(ctx.sessions, ctx.signed.key)
    with ctx.sessions.begin() as s:
        audit.record(s, "web.logout", actor=f"web:{ctx.user.name}", user=ctx.user.name, address=_address(ctx.request))
    ctx.cookies.append((sessions.COOKIE, "", 0))
    return redirect("/login")


@page(public=True)
def language(ctx: Ctx) -> Response:
    code = ctx.request.path_params["code"]
    response = redirect(_next(ctx.field("next", "/") or "/"))
    if code in i18n.LANGUAGES:
        ctx.cookies.append((LANG_COOKIE, code, 365 * 86400))
    return response


def routes() -> list[tuple[str, Any, tuple[str, ...]]]:
    return [("/login", login, ("GET", "POST")), ("/logout", logout, ("POST",)), ("/lang/{code}", language, ("GET",))]
