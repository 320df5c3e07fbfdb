"""Signed-in sessions: a random id in the cookie, its SHA-256 in the register.

Idle sessions expire (``[web] idle_minutes``), every session after ``MAX_AGE`` at the
latest; ``last_seen`` is written at most once a minute, so browsing does not keep the
register's write lock busy while the daemon files.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from naskahd.register.accounts import WebSession, WebUser
from naskahd.web.auth import User, as_user

COOKIE = "naskahd_session"
MAX_AGE = dt.timedelta(hours=12)
TOUCH_EVERY = dt.timedelta(seconds=60)


@dataclass(frozen=True)
class Signed:
    user: User
    csrf: str
    key: str  # the row's id_sha256


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def start(sessions: sessionmaker[Session], user: User) -> str:
    """A new session for ``user``; returns the cookie's value."""
    token = secrets.token_urlsafe(32)
    now = _now()
    with sessions.begin() as s:
        s.add(WebSession(id_sha256=_digest(token), user_id=user.id, csrf=secrets.token_urlsafe(32),
                         created_at=now, last_seen=now))
        # Expired sessions of anyone are cleared here, on the rare write of a login.
        s.execute(delete(WebSession).where(WebSession.created_at < now - MAX_AGE))
    return token


def load(sessions: sessionmaker[Session], token: str | None, idle: dt.timedelta) -> Signed | None:
    if not token or len(token) > 100:
        return None
    key = _digest(token)
    now = _now()
    with sessions() as s:
        found = s.execute(select(WebSession, WebUser).join(WebUser, WebUser.id == WebSession.user_id)
                          .where(WebSession.id_sha256 == key)).first()
        if found is None:
            return None
        row, user = found
        expired = now - row.last_seen > idle or now - row.created_at > MAX_AGE
        touch = not expired and now - row.last_seen > TOUCH_EVERY
        signed = Signed(as_user(user), row.csrf, key)
    if expired:
        end(sessions, key)
        return None
    if touch:
        with sessions.begin() as s:
            stored = s.get(WebSession, key)
            if stored is not None:
                stored.last_seen = now
    return signed


def end(sessions: sessionmaker[Session], key: str) -> None:
    with sessions.begin() as s:
        s.execute(delete(WebSession).where(WebSession.id_sha256 == key))
