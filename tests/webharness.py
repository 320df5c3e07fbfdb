"""The real ``naskahd web`` process against a register the real daemon filed (issue 21).

Not a conftest: imported by the tests/test_web_*.py modules. ``office(tmp)`` makes a tree,
runs the daemon on it (an age recipient from the real age-keygen, so an exempt letter is
filed for real), files a few letters, one exempt whose name carries ``MARKER``, puts one
file in review, and adds an account per role. ``Web`` starts the web process on a free
loopback port.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from conftest import Daemon, naskahd_cmd, require_tool, wait_until, write_config

MARKER = "RAHASIA-ZX81Q"  # in the exempt letter's name and subject: must never reach a browser
PASSWORD = "kata sandi yang panjang"
USERS = {"operator": "operator", "kasi": "kasi", "kabid": "kabid", "viewer": "viewer", "victim": "viewer"}
FULL_NAMES = {"kasi": "Budi Santoso, S.Kom", "kabid": "Dra. Siti Rahma"}
INBOUND = ["Undangan Rapat Koordinasi.pdf", "Nota Dinas Kepala Bidang.pdf", "Surat Edaran <b>Bupati.pdf"]
OUTBOUND = ["Balasan Undangan.pdf"]
EXEMPT_NAME = f"{MARKER} Rencana Pengamanan.pdf"
REVIEW_NAME = "surat tanpa folder.pdf"


def scan(text: str) -> bytes:
    return b"%PDF-1.4\n% " + text.encode() + b"\n" + os.urandom(64).hex().encode() + b"\n%%EOF\n"


@dataclass
class Office:
    root: Path
    config: Path
    daemon: Daemon
    password_file: Path
    agendas: dict[str, str] = field(default_factory=dict)  # file name -> agenda

    def cli(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(naskahd_cmd("--config", str(self.config), *args), capture_output=True, text=True,
                              input=input, env={**os.environ, "LANG": "C.UTF-8"}, timeout=120)


def office(tmp: Path) -> Office:
    keygen = require_tool("age-keygen")
    key = tmp / "officer.key"
    subprocess.run([keygen, "-o", str(key)], check=True, capture_output=True)
    recipient = next(line.split(": ")[1] for line in key.read_text().splitlines() if line.startswith("# public key"))
    cfg = write_config(tmp / "naskahd", recipients=[recipient], content_check=False, settle=0.3)
    d = Daemon(cfg.parent, cfg).start()
    for name in INBOUND:
        (d.drop / "masuk" / name).write_bytes(scan(name))
    for name in OUTBOUND:
        (d.drop / "keluar" / name).write_bytes(scan(name))
    (d.drop / "dikecualikan" / EXEMPT_NAME).write_bytes(scan("secret"))
    d.wait_event("document.registered", count=len(INBOUND) + len(OUTBOUND) + 1, timeout=60)
    (d.drop / REVIEW_NAME).write_bytes(scan("stray"))  # no rule matches the drop folder's top
    wait_until(lambda: (d.drop / "tinjau" / REVIEW_NAME).exists(), 30, "the stray scan in review", d)
    pw = tmp / "pw"
    pw.write_text(PASSWORD + "\n")
    o = Office(cfg.parent, cfg, d, pw)
    for name, role in USERS.items():
        extra = ["--full-name", FULL_NAMES[name]] if name in FULL_NAMES else []
        out = o.cli("user", "add", name, "--role", role, "--password-file", str(pw), *extra)
        assert out.returncode == 0, out.stderr
    import sqlite3

    with sqlite3.connect(d.state / "register.sqlite3") as con:
        for agenda, name, category in con.execute("select agenda, original_name, category from documents"):
            o.agendas[EXEMPT_NAME if category == "exempt" else name] = agenda
    return o


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Web:
    """``naskahd web --listen 127.0.0.1:PORT``, the real process."""

    def __init__(self, o: Office, *args: str, https: bool = False) -> None:
        self.port = free_port()
        self.url = f"{'https' if https else 'http'}://127.0.0.1:{self.port}"
        self.output: list[str] = []
        self.proc = subprocess.Popen(naskahd_cmd("--config", str(o.config), "web", "--listen", f"127.0.0.1:{self.port}", *args),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env={**os.environ, "LANG": "C.UTF-8"})
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "naskahd web exited:\n" + "".join(self.output)
            try:
                httpx.get(self.url + "/login", timeout=2, verify=False)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError("naskahd web did not answer:\n" + "".join(self.output))

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, follow_redirects=False, timeout=60)

    def login(self, name: str, password: str = PASSWORD) -> httpx.Client:
        c = self.client()
        r = c.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', r.text).group(1)  # type: ignore[union-attr]
        r = c.post("/login", data={"csrf": token, "username": name, "password": password, "next": "/"})
        assert r.status_code == 303, (r.status_code, r.text[-500:])
        return c


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
