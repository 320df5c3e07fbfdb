"""The Starlette application: routes of the pages, sessions, CSRF, roles, headers, errors.

Every page handler is a plain function ``handler(ctx) -> Response`` run in Starlette's
thread pool (the register's work is synchronous SQLAlchemy) in the reader's language.
Before it runs: no session, no page (a redirect to the login page); a POST whose CSRF token
does not match, or by a role not allowed that change, is refused and changes nothing.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from naskahd import i18n
from naskahd.errors import NaskahdError
from naskahd.i18n import N_, _
from naskahd.web import csrf, sessions
from naskahd.web.throttle import Throttle
from naskahd.web.view import DEFAULT_LANG, LANG_COOKIE, Ctx, plain, redirect, render

STATIC = Path(__file__).with_name("static")
PAGES = ("login", "dashboard", "register", "review", "reports", "audit")
log = logging.getLogger("naskahd.web")

# Strict: nothing inline, nothing from elsewhere (the office's connection is poor, and a
# page that loads nothing foreign leaks nothing).
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


WORKER_THREADS = 8


@dataclass(frozen=True)
class Handler:
    fn: Callable[[Ctx], Response]
    public: bool = False  # served without a session (the login page)
    action: str | None = None  # the permission a POST needs (auth.PERMISSIONS)


class WebApp:
    def __init__(self, cfg: Any, register: Any, *, https: bool, fingerprint: str | None) -> None:
        self.cfg, self.sessions, self.https, self.fingerprint = cfg, register, https, fingerprint
        self.throttle = Throttle()
        self._limited = False
        self.idle = __import__("datetime").timedelta(minutes=cfg.web_idle_minutes)
        routes: list[Any] = []
        for name in PAGES:
            module = importlib.import_module(f"naskahd.web.pages.{name}")
            for path, handler, methods in module.routes():
                routes.append(Route(path, self._endpoint(handler), methods=list(methods)))
        routes.append(Mount("/static", app=StaticFiles(directory=STATIC), name="static"))
        self.starlette = Starlette(routes=routes, exception_handlers={HTTPException: self._http_error,
                                                                      Exception: self._server_error})

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.starlette(scope, receive, send)
            return
        if not self._limited:
            # A few worker threads are plenty for an office, and each one costs memory.
            import anyio.to_thread

            anyio.to_thread.current_default_thread_limiter().total_tokens = WORKER_THREADS
            self._limited = True

        started = time.perf_counter()

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += HEADERS
                # The server's own time for this request (bench/bench_web.py reads it).
                headers.append((b"server-timing", f"app;dur={(time.perf_counter() - started) * 1000:.2f}".encode()))
                if self.https:
                    headers.append((b"strict-transport-security", b"max-age=31536000"))
                if not scope["path"].startswith("/static/"):
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.starlette(scope, receive, with_headers)

    # -- requests -------------------------------------------------------------------------
    def language(self, request: Request) -> str:
        lang = request.cookies.get(LANG_COOKIE, DEFAULT_LANG)
        return lang if lang in i18n.LANGUAGES else DEFAULT_LANG

    def _endpoint(self, handler: Handler) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            form = await request.form(max_files=0, max_fields=50) if request.method == "POST" else None
            if getattr(handler.fn, "throttled", False):  # the login: slowed before the password is tried
                from naskahd.web.pages.login import wait_turn

                early = await wait_turn(self, request, form)
                if early is not None:
                    return early
            return await run_in_threadpool(self._run, handler, request, form)

        return endpoint

    def _run(self, handler: Handler, request: Request, form: Any) -> Response:
        with i18n.using(self.language(request)) as lang:
            ctx = Ctx(request, self, lang, form=form)
            ctx.signed = sessions.load(self.sessions, request.cookies.get(sessions.COOKIE), self.idle)
            if ctx.signed is None and not handler.public:
                if request.method == "POST":
                    return plain(403, _("You are not signed in (or were signed out after a while without use): "
                                        "sign in again; nothing was changed."))
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return redirect("/login?next=" + quote(target, safe=""))
            if request.method == "POST" and not handler.public:
                if not csrf.matches(ctx.signed.csrf if ctx.signed else None, form.get(csrf.FIELD) if form else None):
                    return render(ctx, "error.html", 403, message=_(
                        "This form is out of date or did not come from this page (its security token does not match): "
                        "load the page again and repeat; nothing was changed."))
                if handler.action is not None and not ctx.user.may(handler.action):
                    return render(ctx, "error.html", 403, message=_(
                        "Your role ({role}) may not do this; nothing was changed.").format(role=ctx.user.role))
            try:
                response = handler.fn(ctx)
            except NaskahdError as exc:
                response = render(ctx, "error.html", 409, message=exc.render())
            for name, value, max_age in ctx.cookies:
                self.set_cookie(response, name, value, max_age)
            return response

    def set_cookie(self, response: Response, name: str, value: str, max_age: int | None = None) -> None:
        response.set_cookie(name, value, max_age=max_age, path="/", secure=self.https, httponly=True, samesite="strict")

    # -- errors: a plain page, never a traceback, never a name ----------------------------------
    def _error_page(self, request: Request, status: int, message: str) -> Response:
        with i18n.using(self.language(request)) as lang:
            ctx = Ctx(request, self, lang)
            return render(ctx, "error.html", status, message=_(message))

    async def _http_error(self, request: Request, exc: Any) -> Response:
        messages = {404: N_("There is no such page."), 405: N_("This page cannot be used that way.")}
        return self._error_page(request, exc.status_code, messages.get(exc.status_code, N_("The request was refused.")))

    async def _server_error(self, request: Request, exc: Exception) -> Response:
        log.error("web page error %s on %s", type(exc).__name__, request.url.path)
        return self._error_page(request, 500, N_("Something went wrong on the server; nothing was changed. "
                                                 "Please tell the operator what you were doing."))


def page(fn: Callable[[Ctx], Response] | None = None, *, public: bool = False,
         action: str | None = None) -> Any:
    """``@page`` / ``@page(action="review")``: marks a handler function of pages/."""
    def wrap(f: Callable[[Ctx], Response]) -> Handler:
        handler = Handler(f, public=public, action=action)
        return handler

    return wrap(fn) if fn is not None else wrap
