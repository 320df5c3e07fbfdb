"""Opening the register: engine, SQLite settings (all of them, here only), migrations.

Migrations are Alembic's, applied automatically when the daemon starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.orm import Session, sessionmaker

from naskahd.errors import RegisterError
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
    return engine


# The newest migration's revision id. A test pins it to Alembic's head, so a new migration
# must bump it; when the register is already there, Alembic (several MB resident) is not
# even imported.
SCHEMA_REVISION = "0002"


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


def open_register(url: str, *, create: bool = True) -> sessionmaker[Session]:
    """Open (and with ``create``, create or migrate) the register; return a session factory."""
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
        raise RegisterError(_("cannot open the register {url}: {error}").format(url=url, error=exc)) from exc
    return sessionmaker(engine, expire_on_commit=False)
