"""Serving the application with uvicorn: loopback over HTTP, anything else over HTTPS only."""

from __future__ import annotations

import logging
from typing import Any

from naskahd.errors import ConfigError, NaskahdError
from naskahd.i18n import _


def plan(cfg: Any, listen: str | None) -> tuple[str, int, bool]:
    """(host, port, https) for ``--listen`` or ``[web] listen``; a LAN address needs HTTPS,
    which is then always on (the office's certificate if configured, else the state folder's)."""
    from naskahd.config import is_loopback, split_listen

    text = listen or cfg.web_listen
    try:
        host, port = split_listen(text)
    except ValueError:
        raise ConfigError(_("must be HOST:PORT, such as \"127.0.0.1:8080\" or \"192.168.1.10:8443\""),
                          source="--listen" if listen else cfg.source, key="web.listen", value=text) from None
    https = not is_loopback(host) or cfg.web_certificate is not None
    return host, port, https


# A sign-in's argon2id hash takes 19 MiB (web/auth.py). glibc serves a block that large
# with mmap and gives it back when freed, but then raises its mmap threshold to that size
# (its "dynamic" threshold), so the next sign-in's 19 MiB come from the heap and stay
# resident: 19 MB more for the rest of the process's life. A fixed threshold keeps every
# large block mmap'd, returned to the system when freed.
MMAP_THRESHOLD = 256 * 1024
# SQLite's page cache per connection (register/db.py limit_cache), up to one per worker thread.
CACHE_KIB = 512
TRIM_THRESHOLD = 1024 * 1024


def _fewer_malloc_arenas() -> None:
    """glibc gives each thread its own malloc arena: with a pool of worker threads that is
    tens of MB resident for nothing. Two are enough (before any thread starts); and large
    blocks always mmap'd (``MMAP_THRESHOLD``)."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-8, 2)  # M_ARENA_MAX
        libc.mallopt(-3, MMAP_THRESHOLD)  # M_MMAP_THRESHOLD (fixed: no dynamic raise)
        libc.mallopt(-1, TRIM_THRESHOLD)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


def serve(cfg: Any, listen: str | None = None) -> None:
    _fewer_malloc_arenas()
    import uvicorn

    from naskahd import installation
    from naskahd.register.db import SCHEMA_REVISION, current_revision, limit_cache
    from naskahd.web import tls
    from naskahd.web.app import WebApp

    host, port, https = plan(cfg, listen)
    cert, key = tls.paths_of(cfg)
    fingerprint = None
    if https:
        if not cert.exists() or not key.exists():
            raise NaskahdError(_("listening on {host} (not this computer only) needs HTTPS, and there is no certificate "
                                 "at {cert}: make one with 'naskahd web --make-cert', or set [web] certificate and key "
                                 "to the office's own").format(host=host, cert=cert))
        fingerprint = tls.fingerprint(cert)
        if fingerprint is None:
            raise NaskahdError(_("{cert} is not a PEM certificate; make a new one with 'naskahd web --make-cert'").format(cert=cert))
    sessions = installation.open_checked(cfg, create=False)
    limit_cache(sessions, CACHE_KIB)
    have = current_revision(sessions.kw["bind"])
    if have != SCHEMA_REVISION:
        raise NaskahdError(_("the register is at schema revision {have}, this naskahd needs {want}: restart the daemon "
                             "(it brings the register up to date) and try again").format(have=have, want=SCHEMA_REVISION))
    app = WebApp(cfg, sessions, https=https, fingerprint=fingerprint)
    scheme = "https" if https else "http"
    shown = f"[{host}]" if ":" in host else host
    print(_("naskahd web page at {url}").format(url=f"{scheme}://{shown}:{port}/"), flush=True)
    if fingerprint:
        print(_("HTTPS certificate fingerprint (SHA-256): {fp}").format(fp=fingerprint), flush=True)
    logging.basicConfig(level=logging.WARNING, format="naskahd-web: %(message)s")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, server_header=False,
                proxy_headers=False, ssl_certfile=str(cert) if https else None, ssl_keyfile=str(key) if https else None,
                lifespan="off", timeout_graceful_shutdown=5,
                http="h11", ws="none")  # no websockets: not even imported when a test tool installed one
