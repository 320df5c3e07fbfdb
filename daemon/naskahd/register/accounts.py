"""The register's tables for the web page's accounts and sessions (issue 21).

Kept in the register (not a file of the web process) so that ``naskahd user`` and the web
process see the same accounts, and a restart of the web process keeps people signed in.
A session row holds the SHA-256 of the cookie's random id, never the id itself: a copy of
the register does not let anyone take over a session.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from naskahd.register.models import Base, UTCDateTime


class WebUser(Base):
    __tablename__ = "web_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)  # the login name
    full_name: Mapped[str | None] = mapped_column(Text)  # shown in signature blocks
    role: Mapped[str] = mapped_column(String(16))  # operator | kasi | kabid | viewer
    password_hash: Mapped[str] = mapped_column(Text)  # argon2id, in its PHC string form
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    password_changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class WebSession(Base):
    __tablename__ = "web_sessions"

    id_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("web_users.id", ondelete="CASCADE"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[dt.datetime] = mapped_column(UTCDateTime())
