"""The web page's accounts, its configuration, HTTPS, idle sessions, the login throttle and
the register's migration to the accounts' tables (issue 21)."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from conftest import naskahd_cmd
from webharness import PASSWORD, Office, Web, csrf_of


def init(tmp_path: Path, extra: str = "") -> Office:
    out = subprocess.run(naskahd_cmd("init", "--root", str(tmp_path / "n")), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    config = tmp_path / "n" / "naskahd.toml"
    if extra:
        config.write_text(config.read_text().replace("[web]\n", "[web]\n" + extra, 1))
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    return Office(config.parent, config, None, pw)  # type: ignore[arg-type]


def test_user_add_list_passwd_remove(tmp_path: Path) -> None:
    o = init(tmp_path)
    short = tmp_path / "short"
    short.write_text("pendek\n")
    out = o.cli("--lang", "id", "user", "add", "ani", "--role", "operator", "--password-file", str(short))
    assert out.returncode == 2 and "terlalu pendek" in out.stderr and "10" in out.stderr and "pendek\n" not in out.stderr
    out = o.cli("user", "add", "ani", "--role", "boss", "--password-file", str(o.password_file))
    assert out.returncode == 2 and "operator" in out.stderr  # the roles are listed
    out = o.cli("user", "add", "ani", "--role", "operator", "--full-name", "Ani  Lestari", "--password-file", str(o.password_file))
    assert out.returncode == 0, out.stderr
    assert PASSWORD not in out.stdout + out.stderr
    out = o.cli("user", "add", "ani", "--role", "viewer", "--password-file", str(o.password_file))
    assert out.returncode != 0 and "ani" in out.stderr
    out = o.cli("user", "add", "kasi", "--role", "kasi", input="kata sandi dari pipa\n")  # no terminal: standard input
    assert out.returncode == 0, out.stderr
    listed = json.loads(o.cli("user", "list", "--json").stdout)
    assert [(u["name"], u["role"], u["full_name"]) for u in listed] == [("ani", "operator", "Ani Lestari"), ("kasi", "kasi", None)]
    import sqlite3

    with sqlite3.connect(o.root / "state" / "register.sqlite3") as con:
        hashes = [h for (h,) in con.execute("select password_hash from web_users")]
        events = [e for (e,) in con.execute("select event from audit_events where event like 'user.%'")]
    assert all(h.startswith("$argon2id$") for h in hashes) and PASSWORD not in "".join(hashes)
    assert events == ["user.added", "user.added"]
    assert o.cli("user", "passwd", "kasi", input="kata sandi yang baru lagi\n").returncode == 0
    assert o.cli("user", "passwd", "nobody", input="kata sandi yang baru lagi\n").returncode != 0
    assert o.cli("user", "remove", "kasi").returncode == 0
    assert [u["name"] for u in json.loads(o.cli("user", "list", "--json").stdout)] == ["ani"]


def test_https_secure_cookies_fingerprint_and_idle_expiry(tmp_path: Path) -> None:
    o = init(tmp_path, extra='certificate = "state/web-cert.pem"\nkey = "state/web-key.pem"\nidle_minutes = 0.05\n')
    # [web] certificate set: the config names two keys of [web] twice now; keep the last ones.
    text = o.config.read_text()
    text = re.sub(r'\ncertificate = ""[^\n]*', "", text)
    text = re.sub(r'\nkey = ""[^\n]*', "", text)
    text = re.sub(r'\nidle_minutes = 30[^\n]*', "", text)
    o.config.write_text(text)
    made = o.cli("web", "--make-cert")
    assert made.returncode == 0, made.stderr
    fingerprint = re.search(r"[0-9A-F]{2}(?::[0-9A-F]{2}){31}", made.stdout).group(0)  # type: ignore[union-attr]
    assert o.cli("user", "add", "ani", "--role", "viewer", "--password-file", str(o.password_file)).returncode == 0
    web = Web(o, https=True)
    try:
        cert = str(o.root / "state" / "web-cert.pem")
        import ssl

        with httpx.Client(base_url=web.url, verify=ssl.create_default_context(cafile=cert), follow_redirects=False) as c:  # the certificate names 127.0.0.1
            page = c.get("/login")
            assert fingerprint in page.text
            assert page.headers["strict-transport-security"].startswith("max-age=")
            r = c.post("/login", data={"csrf": csrf_of(page.text), "username": "ani", "password": PASSWORD})
            session = next(v for v in r.headers.get_list("set-cookie") if v.startswith("naskahd_session="))
            assert "Secure" in session and "HttpOnly" in session and "SameSite=strict" in session
            assert c.get("/").status_code == 200
            time.sleep(3.5)  # idle_minutes = 0.05: 3 s
            r = c.get("/")
            assert r.status_code == 303 and r.headers["location"].startswith("/login")
    finally:
        web.stop()


def test_a_lan_address_without_a_certificate_is_refused(tmp_path: Path) -> None:
    o = init(tmp_path)
    (o.root / "state" / "web-cert.pem").unlink()
    out = o.cli("--lang", "id", "web", "--listen", "192.0.2.10:8443")  # TEST-NET: never this machine's
    assert out.returncode != 0 and "--make-cert" in out.stderr and "HTTPS" in out.stderr, out.stderr
    out = o.cli("web", "--listen", "nowhere")
    assert out.returncode != 0 and "HOST:PORT" in out.stderr


def test_init_makes_the_certificate_and_the_config_checks_web_keys(tmp_path: Path) -> None:
    o = init(tmp_path)
    from naskahd.web import tls

    assert tls.fingerprint(o.root / "state" / "web-cert.pem")
    assert (o.root / "state" / "web-key.pem").stat().st_mode & 0o077 == 0
    from naskahd import config
    from naskahd.errors import ConfigError

    base = {"paths": {"drop": "d", "archive": "a", "state": "s"}}
    with pytest.raises(ConfigError, match="web.listen"):
        config.parse({**base, "web": {"listen": "8080"}}, source="t", base=tmp_path)
    with pytest.raises(ConfigError, match="web.key"):
        config.parse({**base, "web": {"certificate": "c.pem"}}, source="t", base=tmp_path)
    cfg = config.parse({**base, "web": {"listen": "[::1]:8443"}}, source="t", base=tmp_path)
    assert config.split_listen(cfg.web_listen) == ("::1", 8443) and config.is_loopback("::1")


def test_failed_logins_are_limited_per_account_and_per_address() -> None:
    from naskahd.web import throttle

    now = [1000.0]
    t = throttle.Throttle(clock=lambda: now[0])
    delays = []
    for _ in range(throttle.ACCOUNT_LIMIT):
        refused, delay, _retry = t.check("victim", "10.0.0.5")
        assert not refused
        delays.append(delay)
        t.failed("victim", "10.0.0.5")
    assert delays[:2] == [0, 0] and delays[2:] == sorted(delays[2:]) and delays[-1] > delays[2] > 0
    assert t.check("Victim", "10.0.0.9")[0]  # the account, from anywhere
    assert not t.check("other", "10.0.0.9")[0]
    for i in range(throttle.ADDRESS_LIMIT):
        t.failed(f"guess{i}", "10.0.0.7")
    assert t.check("fresh", "10.0.0.7")[0]  # the address, for any name
    now[0] += throttle.WINDOW + 1
    assert not t.check("victim", "10.0.0.5")[0] and not t.check("fresh", "10.0.0.7")[0]


def test_a_request_is_answered_in_its_own_language() -> None:
    from naskahd import i18n

    with i18n.using("id"):
        assert i18n._("Sign in") == "Masuk" and i18n.language() == "id"
        with i18n.using("en"):
            assert i18n._("Sign in") == "Sign in"
        assert i18n._("Sign in") == "Masuk"


def test_the_register_is_upgraded_in_place_to_the_accounts_tables(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import inspect

    from naskahd.register import db
    from reportdata import fill

    url = f"sqlite:///{tmp_path / 'r.sqlite3'}"
    engine = db.make_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(db.MIGRATIONS))
    with engine.begin() as connection:  # a register as the code before this issue left it
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "0004")
    assert db.current_revision(engine) == "0004"
    import sqlite3

    with sqlite3.connect(tmp_path / "r.sqlite3") as con:
        con.execute("insert into documents (agenda, category, year, number, source_relpath, archive_path, size, sha256, "
                    "received_at, state) values ('0001/M/2025', 'inbound', 2025, 1, x'', 'inbound/a.pdf', 1, ?, "
                    "'2026-11-01 00:00:00', 'filed')", ("a" * 64,))
    sessions = fill(url, 3, seed=7)  # open_register migrates it to the head, then adds three more
    assert db.current_revision(engine) == db.SCHEMA_REVISION == "0006"
    tables = inspect(engine).get_table_names()
    assert {"web_users", "web_sessions", "letter_details"} <= set(tables)
    from naskahd.web import auth

    auth.add(sessions, "ani", "viewer", PASSWORD)
    assert auth.authenticate(sessions, "ani", PASSWORD) is not None
    assert auth.authenticate(sessions, "ani", PASSWORD + "x") is None
    assert auth.authenticate(sessions, "nobody", PASSWORD) is None
    with sqlite3.connect(tmp_path / "r.sqlite3") as con:
        assert con.execute("select count(*) from documents").fetchone()[0] == 4


def test_the_web_process_keeps_a_small_page_cache_per_connection(tmp_path: Path) -> None:
    from sqlalchemy import text

    from naskahd.register import db, open_register
    from naskahd.web import server

    url = f"sqlite:///{tmp_path / 'r.sqlite3'}"
    sessions = open_register(url)
    with sessions() as s:
        assert s.execute(text("PRAGMA cache_size")).scalar() == -2000  # SQLite's default, for the daemon
    db.limit_cache(sessions, server.CACHE_KIB)
    with sessions() as s, sessions() as t:  # every connection, the one opened before too
        assert s.execute(text("PRAGMA cache_size")).scalar() == t.execute(text("PRAGMA cache_size")).scalar() == -512

