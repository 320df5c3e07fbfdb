"""Accounts of the web page: roles, argon2id password hashes, add/passwd/remove/list.

The same functions serve ``naskahd user`` and the login page. A password is never logged,
never stored but as its argon2id hash (argon2-cffi), and never echoed in a message.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from naskahd import audit
from naskahd.errors import NaskahdError, UsageError
from naskahd.i18n import N_, _
from naskahd.register.accounts import WebSession, WebUser

ROLES = ("operator", "kasi", "kabid", "viewer")
ROLE_TITLES = {"operator": N_("operator (sandiman)"), "kasi": N_("head of section (Kasi)"),
               "kabid": N_("head of division (Kabid)"), "viewer": N_("viewer")}
# What each role may change; every role may look at every page.
PERMISSIONS = {
    "operator": frozenset({"details", "triage", "generate"}),
    "kasi": frozenset({"generate", "review"}),
    "kabid": frozenset({"generate", "validate"}),
    "viewer": frozenset(),
}
MIN_PASSWORD = 10
MAX_PASSWORD = 1024
MAX_NAME = 64

# argon2id with OWASP's memory-light parameters (19 MiB, 2 passes): the web process stays
# small (issue 21: <= 80 MB resident); one hash at a time (each takes 19 MiB while it runs).
_HASHING = threading.BoundedSemaphore(1)


class AccountError(NaskahdError):
    """An account cannot be added, changed or found."""


def _hasher() -> Any:
    from argon2 import PasswordHasher, Type

    return PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, type=Type.ID)


def hash_password(password: str) -> str:
    check_password(password)
    with _HASHING:
        return str(_hasher().hash(password))


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UsageError(_("the password is too short: it needs at least {n} characters "
                           "(a few words in a row are easy to remember)").format(n=MIN_PASSWORD))
    if len(password) > MAX_PASSWORD:
        raise UsageError(_("the password is too long: at most {n} characters").format(n=MAX_PASSWORD))


def check_name(name: str) -> str:
    if not name or len(name) > MAX_NAME or not all(c.isalnum() or c in "._-" for c in name):
        raise UsageError(_("a user name is 1 to {n} letters, digits, '.', '_' or '-' (no spaces): {name!r}").format(
            n=MAX_NAME, name=name[:MAX_NAME]))
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UsageError(_("unknown role {role!r}; the roles are: {roles}").format(role=role, roles=", ".join(ROLES)))
    return role


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: str
    full_name: str | None

    @property
    def signer(self) -> str:
        """The name written in a report's signature block."""
        return self.full_name or self.name

    def may(self, action: str) -> bool:
        return action in PERMISSIONS.get(self.role, frozenset())


def as_user(row: WebUser) -> User:
    return User(row.id, row.name, row.role, row.full_name)


def _find(s: Session, name: str) -> WebUser | None:
    return s.scalars(select(WebUser).where(WebUser.name == name)).first()


def add(sessions: sessionmaker[Session], name: str, role: str, password: str, full_name: str | None = None) -> User:
    name, role = check_name(name), check_role(role)
    full = " ".join((full_name or "").split()) or None
    hashed = hash_password(password)
    with sessions.begin() as s:
        if _find(s, name) is not None:
            raise AccountError(_("there is already a user {name}; change the password with 'naskahd user passwd {name}'").format(name=name))
        now = _now()
        row = WebUser(name=name, role=role, full_name=full, password_hash=hashed, created_at=now, password_changed_at=now)
        s.add(row)
        s.flush()
        audit.record(s, "user.added", actor=audit.cli_actor(), user=name, role=role)
        return as_user(row)


def passwd(sessions: sessionmaker[Session], name: str, password: str) -> None:
    hashed = hash_password(password)
    with sessions.begin() as s:
        row = _find(s, name)
        if row is None:
            raise AccountError(_("there is no user {name}; 'naskahd user list' shows them").format(name=name))
        row.password_hash, row.password_changed_at = hashed, _now()
        # A new password signs the account out everywhere.
        s.execute(delete(WebSession).where(WebSession.user_id == row.id))
        audit.record(s, "user.password_changed", actor=audit.cli_actor(), user=name)


def remove(sessions: sessionmaker[Session], name: str) -> None:
    with sessions.begin() as s:
        row = _find(s, name)
        if row is None:
            raise AccountError(_("there is no user {name}; 'naskahd user list' shows them").format(name=name))
        s.execute(delete(WebSession).where(WebSession.user_id == row.id))
        s.delete(row)
        audit.record(s, "user.removed", actor=audit.cli_actor(), user=name)


def listing(sessions: sessionmaker[Session]) -> list[dict[str, Any]]:
    with sessions() as s:
        return [{"name": u.name, "role": u.role, "full_name": u.full_name, "created_at": u.created_at.isoformat(),
                 "password_changed_at": u.password_changed_at.isoformat()}
                for u in s.scalars(select(WebUser).order_by(WebUser.name))]


# A hash to verify against when the account does not exist, so that an unknown name takes
# as long as a wrong password (no telling which accounts exist by timing).
_DUMMY: list[str] = []


def authenticate(sessions: sessionmaker[Session], name: str, password: str) -> User | None:
    """The user if ``password`` is theirs, else None (after the same work either way)."""
    from argon2.exceptions import InvalidHashError, VerificationError

    with sessions() as s:
        row = _find(s, name) if 0 < len(name) <= MAX_NAME else None
        stored = row.password_hash if row is not None else None
        user = as_user(row) if row is not None else None
    if not _DUMMY:
        with _HASHING:
            _DUMMY.append(_hasher().hash("not a password of anyone"))
    with _HASHING:
        try:
            _hasher().verify(stored or _DUMMY[0], password[:MAX_PASSWORD])
        except (VerificationError, InvalidHashError):
            return None
    return user if stored is not None else None


def exists(sessions: sessionmaker[Session], name: str) -> bool:
    with sessions() as s:
        return _find(s, name) is not None
