"""Opening the register: engine, SQLite settings (all of them, here only), migrations.

Migrations are Alembic's, applied automatically when the daemon starts.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.orm import Session, sessionmaker

from naskahd.errors import RegisterDamaged, RegisterError
from naskahd.i18n import _

MIGRATIONS = Path(__file__).with_name("migrations")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets `status` read while the daemon writes. synchronous=FULL: a commit is on
    # disk when commit() returns even in WAL mode, which "row committed before the
    # source is removed" relies on.
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def make_engine(url: str) -> Engine:
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "handle_error", _on_error)
    return engine


def limit_cache(sessions: sessionmaker[Session], kib: int) -> None:
    """Each connection of ``sessions`` keeps at most ``kib`` KiB of pages in memory (SQLite's
    default is 2,000 KiB per connection). For the web process, which may hold one connection
    per worker thread: its resident size, not its speed (the file's pages stay in the
    system's cache; bench/bench_web.py measured the same CPU per search at 500 KiB)."""
    engine = sessions.kw["bind"]
    if engine.dialect.name != "sqlite":
        return

    def _cache(dbapi_connection: Any, _record: Any) -> None:
        cur = dbapi_connection.cursor()
        cur.execute(f"PRAGMA cache_size=-{int(kib)}")
        cur.close()

    event.listen(engine, "connect", _cache)
    engine.dispose()  # the connections opened before this get it too


# The newest migration's revision id. A test pins it to Alembic's head, so a new migration
# must bump it; when the register is already there, Alembic (several MB resident) is not
# even imported.
SCHEMA_REVISION = "0006"


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        if "alembic_version" not in inspect(connection).get_table_names():
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (no-op when it is there)."""
    if current_revision(engine) == SCHEMA_REVISION:
        return
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")


# SQLite maps its ``-shm`` file (the WAL index) into memory. On a full filesystem a page of
# it that has no disk block yet (a hole: a -shm left by a crash, or one being extended)
# cannot be given one when SQLite writes to it, and the kernel kills the process with
# SIGBUS; SQLite cannot turn that into an error. So below this much space available (df's
# "Available") on the register's filesystem, the register is not opened at all.
MIN_FREE_BYTES = 1 << 20


def _sqlite_path(url: str) -> Path | None:
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None


def lock_path(url: str, name: str) -> Path | None:
    """A lock file beside an SQLite register (``register.sqlite3.<name>.lock``), for what the
    commands that write it must know of each other; None for a server database."""
    path = _sqlite_path(url)
    return None if path is None else path.with_name(f"{path.name}.{name}.lock")


def space_problem(url: str) -> str | None:
    """Why the register must not be opened now because its disk is full, or None.

    Only SQLite registers (a server database's disk is the server's business); a folder
    that cannot be examined is not this function's to report.
    """
    path = _sqlite_path(url)
    if path is None:
        return None
    try:
        st = os.statvfs(path.parent)
    except OSError:
        return None
    free = st.f_bavail * st.f_frsize
    if free >= MIN_FREE_BYTES:
        return None
    return _(
        "the disk of the state folder {folder} is full ({free} KiB available, at least {need} KiB needed): "
        "the register cannot be used safely until space is freed on that disk (see 'df {folder}')"
    ).format(folder=path.parent, free=free // 1024, need=MIN_FREE_BYTES // 1024)


def error_words(exc: BaseException) -> str:
    """A register error in its own words, for a person: without the SQL statement, its
    parameters and SQLAlchemy's link; a lock another program holds says so and what to do."""
    words = str(getattr(exc, "orig", None) or exc)
    if "database is locked" in words or "database table is locked" in words:
        return _(
            "the register is locked by another program (database is locked): naskahd tries again by itself; "
            "if this lasts, close the program that has the register open (an sqlite3 shell, a copy or backup tool)"
        )
    return words


# The register's damage in the reader's language: stored as a reason (reasons.py) where it
# is kept for later (the heartbeat of a daemon that refused to start), rendered at once
# for a RegisterDamaged.
def _damage_reason(path: Path, found: list[str]) -> str:
    import sqlite3

    from naskahd import reasons

    newest = None
    with contextlib.suppress(sqlite3.Error):  # the drives table may be what is damaged
        con = sqlite3.connect(path, timeout=5)
        try:
            newest = con.execute("SELECT name FROM drives WHERE last_verified_at IS NOT NULL "
                                 "ORDER BY last_verified_at DESC LIMIT 1").fetchone()
        finally:
            con.close()
    drive = reasons.encode("backup_drive", name=newest[0]) if newest else reasons.encode("newest_backup_drive")
    return reasons.encode("register_damaged", path=str(path), words="; ".join(found)[:300], drive=reasons.nested(drive))


def damaged(path: Path, found: list[str]) -> RegisterDamaged:
    from naskahd import reasons

    reason = _damage_reason(path, found)
    return RegisterDamaged(reasons.render(reason), reason=reason)


def _is_damage(exc: BaseException) -> bool:
    """SQLite's words for a damaged file ("database disk image is malformed", "file is not a
    database"): a DatabaseError of its own kind, not a lock, a constraint or a missing file."""
    import sqlite3

    words = str(exc)
    return type(exc) is sqlite3.DatabaseError and ("malformed" in words or "not a database" in words)


def integrity_problem(url: str) -> RegisterDamaged | None:
    """The full check: SQLite's ``PRAGMA quick_check`` over every page (0.1 s of CPU, up to
    a second of reading at 300,000 documents), or None when the register is sound. Run where
    a damaged register must be caught before anything works on it: the daemon's start
    (service.py) and ``naskahd verify``. Every other opening has the cheap check
    (``open_register``) and the damage found by any statement later (``_on_error``)."""
    path = _sqlite_path(url)
    if path is None or not path.exists():
        return None
    import sqlite3

    try:
        con = sqlite3.connect(path, timeout=30)
        try:
            found = [str(row[0]) for row in con.execute("PRAGMA quick_check(3)")]
        finally:
            con.close()
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            return None  # in use, not damaged: whoever opens it next waits or says so
        found = [str(exc)]
    except sqlite3.DatabaseError as exc:  # "file is not a database", "database disk image is malformed"
        found = [str(exc)]
    return None if found == ["ok"] else damaged(path, found)


def _on_error(context: Any) -> None:
    """Any statement that meets a damaged page (the cheap check at opening reads only the
    file's header and its schema) is refused with the register's damage and what to do, not
    SQLite's bare words: the commands print it, ``status`` shows it, the filer's retries say it."""
    path = _sqlite_path(str(context.engine.url)) if context.engine is not None else None
    if path is not None and _is_damage(context.original_exception):
        raise damaged(path, [str(context.original_exception)]) from context.original_exception


def open_register(url: str, *, create: bool = True, integrity: bool = False) -> sessionmaker[Session]:
    """Open (and with ``create``, create or migrate) the register; return a session factory.

    Refused (RegisterError) while the register's disk is full (``space_problem``); refused
    (RegisterDamaged) when the file is damaged: with ``integrity`` by the full check
    (``integrity_problem``), otherwise when its header or its schema cannot be read, which
    opening reads anyway (the cheap check: nothing more is read for it).
    """
    problem = space_problem(url)
    if problem is not None:
        raise RegisterError(problem)
    damage = integrity_problem(url) if integrity else None
    if damage is not None:
        raise damage
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not create and not path.exists():
            raise RegisterError(_("the register {path} does not exist yet; start the daemon or run 'naskahd init'").format(path=path))
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    try:
        if create:
            migrate(engine)
        elif "documents" not in inspect(engine).get_table_names():
            raise RegisterError(_("the register at {url} has no tables yet; start the daemon once").format(url=url))
    except RegisterError:
        raise
    except Exception as exc:  # a locked, corrupt or unreachable database
        path = _sqlite_path(url)
        if path is not None and _is_damage(getattr(exc, "orig", None) or exc):
            raise damaged(path, [str(getattr(exc, "orig", None) or exc)]) from exc
        raise RegisterError(_("cannot open the register {url}: {error}").format(url=url, error=exc)) from exc
    return sessionmaker(engine, expire_on_commit=False)


def snapshot(url: str, target: Path) -> None:
    """A consistent copy of the register at ``target`` (a new file), made while others may
    write: SQLite's online backup API, then checked whole (RegisterDamaged: the copy holds a
    damaged page). The one SQLite-specific way out of the register; another backend would
    dump it here instead."""
    if not url.startswith("sqlite:///"):
        raise RegisterError(_("a register snapshot is only implemented for SQLite registers, not {url}").format(url=url))
    import sqlite3

    source = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30)
    try:
        dest = sqlite3.connect(target)
        try:
            source.backup(dest)
            dest.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
            dest.commit()
            # The backup copies pages as they are: a damaged page nobody read on the way
            # would reach the drive and replace its good snapshot, the one a restore needs.
            found = [str(row[0]) for row in dest.execute("PRAGMA quick_check(3)")]
        except sqlite3.DatabaseError as exc:
            if not _is_damage(exc):
                raise
            found = [str(exc)]
        finally:
            dest.close()
    finally:
        source.close()
    if found != ["ok"]:
        raise damaged(Path(url.removeprefix("sqlite:///")), found)
