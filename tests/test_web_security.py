"""The web page's security, with a plain HTTP client against the real ``naskahd web``
process on a register the real daemon filed (issue 21)."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin, urlparse

import httpx
import pytest

from webharness import EXEMPT_NAME, MARKER, PASSWORD, Office, Web, csrf_of, office

pytestmark = [pytest.mark.system]

PAGES = ["/", "/status.json", "/register", "/register.json", "/document/1", "/review", "/reports", "/audit",
         "/reports/1/download"]
POSTS = ["/document/1/details", "/review/move", "/review/seen", "/reports/generate", "/reports/1/review",
         "/reports/1/validate", "/logout"]


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Office, Web]]:
    o = office(tmp_path_factory.mktemp("web"))
    web = Web(o)
    try:
        yield o, web
    finally:
        web.stop()
        o.daemon.stop()


def doc_id(o: Office, name: str) -> int:
    agenda = o.agendas[name]
    with sqlite3.connect(o.root / "state" / "register.sqlite3") as con:
        return int(con.execute("select id from documents where agenda = ?", (agenda,)).fetchone()[0])


def test_every_page_without_a_session_goes_to_the_login_page(place) -> None:
    _o, web = place
    with web.client() as c:
        for path in PAGES:
            r = c.get(path)
            assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), (path, r.status_code)
        for path in POSTS:
            r = c.post(path, data={"csrf": "x"})
            assert r.status_code == 403, path
        assert c.get("/login").status_code == 200
        r = c.get(PAGES[1], follow_redirects=True)
        assert "username" in r.text


def test_security_headers_on_every_response(place) -> None:
    _o, web = place
    c = web.login("viewer")
    for path in ["/", "/login", "/static/naskahd.css", "/static/refresh.js", "/no/such/page", "/register"]:
        r = c.get(path)
        h = r.headers
        csp = h["content-security-policy"]
        assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp and "default-src 'none'" in csp, path
        assert "frame-ancestors 'none'" in csp
        assert h["x-frame-options"] == "DENY" and h["x-content-type-options"] == "nosniff", path
        assert h["referrer-policy"] == "same-origin", path
    page = c.get("/").text
    assert "<script>" not in page and " style=" not in page and "onclick" not in page.lower()
    assert '<script src="/static/refresh.js" defer></script>' in page
    assert c.get("/no/such/page").status_code == 404


def test_the_session_cookie_flags_over_http(place) -> None:
    _o, web = place
    with web.client() as c:
        r = c.get("/login")
        token = csrf_of(r.text)
        login_cookie = r.headers["set-cookie"]
        assert "HttpOnly" in login_cookie and "SameSite=strict" in login_cookie
        r = c.post("/login", data={"csrf": token, "username": "viewer", "password": PASSWORD})
        cookies = r.headers.get_list("set-cookie")
        session = next(v for v in cookies if v.startswith("naskahd_session="))
        assert "HttpOnly" in session and "SameSite=strict" in session and "Path=/" in session
        assert "Secure" not in session  # plain HTTP on loopback: a Secure cookie would never come back


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(place) -> None:
    o, web = place
    c = web.login("operator")
    target = doc_id(o, "Undangan Rapat Koordinasi.pdf")
    for data in ({"perihal": "tanpa token"}, {"perihal": "token salah", "csrf": "AAAA" * 10}):
        r = c.post(f"/document/{target}/details", data=data)
        assert r.status_code == 403, r.text
    assert "tanpa token" not in c.get(f"/document/{target}").text
    # The login form has its own token too.
    with web.client() as fresh:
        fresh.get("/login")
        r = fresh.post("/login", data={"username": "operator", "password": PASSWORD})
        assert r.status_code == 403 and "naskahd_session" not in r.headers.get("set-cookie", "")
    page = c.get(f"/document/{target}").text
    r = c.post(f"/document/{target}/details", data={"csrf": csrf_of(page), "perihal": "dengan token", "nomor": "005/123"})
    assert r.status_code == 303
    assert "dengan token" in c.get(f"/document/{target}").text


def test_roles_a_kasi_cannot_validate_a_viewer_cannot_change_anything(place) -> None:
    o, web = place
    month = time.strftime("%Y-%m")
    op = web.login("operator")
    r = op.post("/reports/generate", data={"csrf": csrf_of(op.get("/reports").text), "month": month, "format": "pdf"})
    assert r.status_code == 303, r.text
    report = int(re.findall(r'id="report-(\d+)"', op.get("/reports").text)[0])
    viewer = web.login("viewer")
    token = csrf_of(viewer.get("/").text)
    target = doc_id(o, "Nota Dinas Kepala Bidang.pdf")
    for path, data in [(f"/document/{target}/details", {"perihal": "oleh pembaca"}), ("/reports/generate", {"month": month}),
                       (f"/reports/{report}/review", {}), (f"/reports/{report}/validate", {}),
                       ("/review/move", {"item": "r-x", "category": "inbound"}), ("/review/seen", {"item": "d-x"})]:
        r = viewer.post(path, data={"csrf": token, **data})
        assert r.status_code == 403, (path, r.status_code)
    assert "oleh pembaca" not in viewer.get(f"/document/{target}").text
    kasi = web.login("kasi")
    token = csrf_of(kasi.get("/reports").text)
    assert kasi.post(f"/reports/{report}/validate", data={"csrf": token}).status_code == 403
    assert kasi.post(f"/reports/{report}/review", data={"csrf": token, "note": "sudah diperiksa"}).status_code == 303
    kabid = web.login("kabid")
    assert kabid.post(f"/reports/{report}/review", data={"csrf": csrf_of(kabid.get("/reports").text)}).status_code == 403
    assert kabid.post(f"/reports/{report}/validate", data={"csrf": csrf_of(kabid.get("/reports").text)}).status_code == 303
    listed = o.cli("report", "list", "--json")
    row = next(r for r in __import__("json").loads(listed.stdout) if r["id"] == report)
    assert row["reviewed_by"] == "Budi Santoso, S.Kom" and row["validated_by"] == "Dra. Siti Rahma"
    log = o.cli("log", "--json") if False else None  # the audit trail is checked in test_logins_are_audited
    del log


def test_repeated_failed_logins_are_slowed_then_refused(place) -> None:
    _o, web = place
    took = []
    with web.client() as c:
        token = csrf_of(c.get("/login").text)
        for _attempt in range(6):
            start = time.monotonic()
            r = c.post("/login", data={"csrf": token, "username": "victim", "password": "salah sekali lagi"})
            took.append(time.monotonic() - start)
            assert r.status_code == 401, r.status_code
            assert "Nama pengguna atau kata sandi salah" in r.text
        assert took[0] < 0.25 + 0.5 and took[2] >= 0.25 and took[4] >= 1.0 and took[5] >= 2.0, took
        # Now refused, even with the right password, and said so plainly.
        r = c.post("/login", data={"csrf": token, "username": "victim", "password": PASSWORD})
        assert r.status_code == 429 and "Terlalu banyak percobaan" in r.text
        assert "naskahd_session" not in r.headers.get("set-cookie", "")
    # Another account from the same computer still signs in (the address limit is higher).
    web.login("viewer")


def test_logins_and_failures_are_in_the_audit_trail(place) -> None:
    _o, web = place
    c = web.login("operator")
    page = c.get("/audit?event=web.login_failed").text
    assert "user=victim" in page and "address=127.0.0.1" in page
    assert "salah sekali lagi" not in page  # never a password
    page = c.get("/audit?event=web.login").text
    assert "web:operator" in page
    assert 'id="chain"' in page and ("Rantai utuh" in page or "chain is intact" in page.lower() or "utuh" in page)


def test_logout_ends_the_session(place) -> None:
    _o, web = place
    c = web.login("viewer")
    cookie = c.cookies["naskahd_session"]
    r = c.post("/logout", data={"csrf": csrf_of(c.get("/").text)})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    with web.client() as other:
        other.cookies.set("naskahd_session", cookie)
        assert other.get("/").status_code == 303


def test_html_in_a_subject_is_shown_escaped(place) -> None:
    o, web = place
    c = web.login("operator")
    target = doc_id(o, "Balasan Undangan.pdf")
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    r = c.post(f"/document/{target}/details", data={"csrf": csrf_of(c.get("/").text), "perihal": evil, "tujuan": "Bupati"})
    assert r.status_code == 303
    for page in (c.get(f"/document/{target}").text, c.get("/register").text):
        assert evil not in page and "<img src=x" not in page
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    page = c.get("/register").text  # a file name with HTML in it, as the scanner wrote it
    assert "Surat Edaran &lt;b&gt;Bupati.pdf" in page and "<b>Bupati" not in page


def _crawl(c: httpx.Client, start: list[str], limit: int = 150) -> dict[str, httpx.Response]:
    seen: dict[str, httpx.Response] = {}
    todo = list(start)
    while todo and len(seen) < limit:
        path = todo.pop(0)
        if path in seen or path.startswith("/lang/"):
            continue
        r = c.get(path)
        seen[path] = r
        if "html" in r.headers.get("content-type", ""):
            for href in re.findall(r'(?:href|src|action)="([^"#]+)"', r.text):
                url = urlparse(urljoin("http://x" + path, href.replace("&amp;", "&")))
                if url.netloc == "x":
                    todo.append(url.path + (f"?{url.query}" if url.query else ""))
    return seen


def test_no_response_ever_holds_an_exempt_letters_name_or_subject(place) -> None:
    o, web = place
    target = doc_id(o, EXEMPT_NAME)
    # Planted where it must never come from: the register row itself (as if it had slipped in).
    with sqlite3.connect(o.root / "state" / "register.sqlite3") as con:
        con.execute("update documents set original_name = ? where id = ?", (EXEMPT_NAME, target))
        con.execute("insert or replace into letter_details (document_id, perihal, asal, nomor, catatan, updated_at, updated_by) "
                    "values (?, ?, ?, ?, ?, '2026-12-01 00:00:00', 'test')",
                    (target, f"{MARKER} perihal", f"{MARKER} asal", f"{MARKER}/nomor", f"{MARKER} catatan"))
    c = web.login("operator")
    responses = _crawl(c, ["/", f"/document/{target}", "/register?category=exempt", f"/register?text={MARKER[-5:]}",
                           f"/register.json?perihal={MARKER[-5:]}", f"/register.json?nomor={MARKER[-5:]}", "/register.json?category=exempt", "/status.json",
                           "/review", "/audit", "/reports", "/document/999999", "/register?date_from=kemarin"])
    token = csrf_of(c.get("/").text)
    # The form refuses a subject for an exempt letter, and its error page does not repeat it.
    refused = c.post(f"/document/{target}/details", data={"csrf": token, "perihal": f"{MARKER} baru"})
    assert refused.status_code in (400, 409)
    responses["POST details"] = refused
    for report in re.findall(r'/reports/(\d+)/download', c.get("/reports").text):
        responses[f"report {report}"] = c.get(f"/reports/{report}/download")
    assert len(responses) > 15 and f"/document/{target}" in responses
    assert any(r.status_code == 404 for r in responses.values())
    for path, r in responses.items():
        body = r.content
        assert MARKER.encode() not in body, path
        assert b"Rencana Pengamanan" not in body, path
        assert MARKER not in str(r.headers), path
    page = responses[f"/document/{target}"].text
    assert o.agendas[EXEMPT_NAME] in page
    # Searching for words of its subject does not find it either (nothing to tell it by).
    assert responses[f"/register.json?perihal={MARKER[-5:]}"].json()["total"] == 0
    assert responses["/register.json?category=exempt"].json()["total"] == 1


def test_indonesian_by_default_english_when_chosen(place) -> None:
    _o, web = place
    c = web.login("viewer")
    assert "Dasbor" in c.get("/").text and '<html lang="id">' in c.get("/").text
    r = c.get("/lang/en?next=/register")
    assert r.status_code == 303 and r.headers["location"] == "/register"
    assert "naskahd_lang=en" in r.headers["set-cookie"] and "SameSite=strict" in r.headers["set-cookie"]
    page = c.get("/register").text
    assert "Register of documents" in page and '<html lang="en">' in page
    assert c.get("/lang/en?next=//evil.example/").headers["location"] == "/"  # never off this site
    c.get("/lang/id")
    assert "Daftar naskah" in c.get("/register").text
