"""The daemon's side of systemd, without systemd: a datagram socket bound here plays
systemd's notify socket ($NOTIFY_SOCKET, a path or an abstract name) and $WATCHDOG_USEC
asks for pings; the real daemon is started directly and every message is checked.
SIGHUP reloads the configuration; `naskahd reload` and `check-config`; the journald format."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Daemon, naskahd_cmd, wait_until, write_config


class NotifySocket:
    """systemd's side of sd_notify: collects each datagram with its arrival time."""

    def __init__(self, abstract: bool = False) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="nsk-", dir="/tmp"))  # AF_UNIX paths are short
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"naskahd-test-{secrets.token_hex(6)}"
            self.sock.bind(b"\0" + name.encode())
            self.env_value = "@" + name
        else:
            self.sock.bind(str(self.dir / "notify"))
            self.env_value = str(self.dir / "notify")
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, dict[str, str]]] = []
        self._stop = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop:
            try:
                data = self.sock.recv(65536)
            except (TimeoutError, OSError):
                continue
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            self.messages.append((time.monotonic(), fields))

    def having(self, key: str, value: str | None = None) -> list[tuple[float, dict[str, str]]]:
        return [(t, m) for t, m in list(self.messages) if key in m and (value is None or m[key] == value)]

    def wait(self, key: str, value: str | None = None, count: int = 1, timeout: float = 30, daemon: Daemon | None = None) -> dict[str, str]:
        wait_until(lambda: len(self.having(key, value)) >= count, timeout, f"{count}× {key}={value}", daemon)
        return self.having(key, value)[count - 1][1]

    def close(self) -> None:
        self._stop = True
        self._thread.join(timeout=2)
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def notify() -> Iterator[NotifySocket]:
    n = NotifySocket()
    yield n
    n.close()


def _daemon(tmp_path: Path, notify: NotifySocket, watchdog_usec: int = 1_000_000, **kwargs: object) -> Daemon:
    cfg = write_config(tmp_path / "naskahd", **kwargs)  # type: ignore[arg-type]
    env = {"NOTIFY_SOCKET": notify.env_value, "WATCHDOG_USEC": str(watchdog_usec),
           "NASKAHD_STATUS_SOCKET": str(notify.dir / "status.sock")}
    return Daemon(cfg.parent, cfg, env=env)


def test_ready_status_watchdog_and_stopping(tmp_path: Path, notify: NotifySocket) -> None:
    d = _daemon(tmp_path, notify)
    (d.drop / "masuk").mkdir(parents=True, exist_ok=True)
    (d.drop / "masuk" / "before.pdf").write_bytes(b"not a pdf, filed after settling\n")
    d.start(wait=False)
    try:
        ready = notify.wait("READY", "1", daemon=d)
        # READY=1 comes after reconciliation and the catch-up scan, with the summary.
        assert d.find("daemon.started") and d.find("drop.scanned", reason="start-up")
        assert ready["STATUS"].startswith("documents today 0, waiting 1, in review 0, last backup -")
        notify.wait("STATUS", "documents today 1, waiting 0, in review 0, last backup -", daemon=d)
        # WATCHDOG=1 at half of WATCHDOG_USEC (1 s): about every 0.5 s.
        notify.wait("WATCHDOG", "1", count=6, daemon=d)
        times = [t for t, _m in notify.having("WATCHDOG", "1")]
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert all(0.4 < g < 0.8 for g in gaps[1:]), gaps
        assert "NOTIFY_SOCKET" not in os.environ  # the test's own environment is untouched
        assert d.stop() == 0
        notify.wait("STOPPING", "1")
        assert notify.having("STOPPING")[-1][0] >= notify.having("READY")[0][0]
    finally:
        d.stop()


def test_abstract_notify_socket(tmp_path: Path) -> None:
    n = NotifySocket(abstract=True)
    d = _daemon(tmp_path, n)
    try:
        d.start(wait=False)
        n.wait("READY", "1", daemon=d)
        n.wait("WATCHDOG", "1", daemon=d)
    finally:
        d.stop()
        n.close()


def test_no_watchdog_pings_for_another_pid(tmp_path: Path, notify: NotifySocket) -> None:
    """WATCHDOG_PID names the process systemd watches; any other process must not ping."""
    d = _daemon(tmp_path, notify)
    d.env["WATCHDOG_PID"] = "1"
    try:
        d.start(wait=False)
        notify.wait("READY", "1", daemon=d)
        time.sleep(1.5)
        assert not notify.having("WATCHDOG")
    finally:
        d.stop()


HANG = textwrap.dedent("""
    import sys, threading
    from naskahd.filing.store import Store
    real = Store.store
    def store(self, item, *args, **kwargs):
        if "hang" in item.relpath:
            threading.Event().wait()  # a helper thread that never comes back
        return real(self, item, *args, **kwargs)
    Store.store = store
    from naskahd.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def test_a_hung_helper_thread_stops_the_watchdog_pings(tmp_path: Path, notify: NotifySocket) -> None:
    cfg = write_config(tmp_path / "naskahd", settle=0.3)
    env = {**os.environ, "NOTIFY_SOCKET": notify.env_value, "WATCHDOG_USEC": "1000000", "LANG": "C.UTF-8"}
    proc = subprocess.Popen([sys.executable, "-c", HANG, "--config", str(cfg), "run", "--log-format", "json"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        notify.wait("READY", "1")
        notify.wait("WATCHDOG", "1", count=3)
        (cfg.parent / "drop" / "masuk" / "hang.pdf").write_bytes(b"x" * 1000)
        # The store thread never returns; the loop waits for it, so the pings stop.
        time.sleep(3.0)
        pings = len(notify.having("WATCHDOG"))
        time.sleep(2.0)
        assert len(notify.having("WATCHDOG")) == pings, "pinged while the pipeline was hung"
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


RULES_OUTBOUND = """
[[rules]]
path = "masuk/**"
category = "outbound"
"""


def test_sighup_reloads_rules_and_keeps_the_old_on_invalid_or_path_change(tmp_path: Path, notify: NotifySocket) -> None:
    d = _daemon(tmp_path, notify, settle=0.3)
    d.start()
    try:
        notify.wait("READY", "1", daemon=d)
        (d.drop / "masuk" / "a.pdf").write_bytes(b"first letter\n")
        assert d.wait_event("document.registered")["category"] == "inbound"
        original = d.config.read_text()

        # A valid change: the rule applies to the next file; RELOADING=1 ... READY=1 around it.
        d.config.write_text(original.replace('settle_seconds = 0.3', 'settle_seconds = 0.5') + RULES_OUTBOUND)
        d.proc.send_signal(signal.SIGHUP)
        ev = d.wait_event("config.reloaded")
        assert set(ev["changed"]) == {"rules", "watch.settle_seconds"}
        assert ev["changed"]["watch.settle_seconds"] == [0.3, 0.5]
        notify.wait("RELOADING", "1", daemon=d)
        notify.wait("READY", "1", count=2, daemon=d)
        assert notify.having("READY")[1][0] >= notify.having("RELOADING")[0][0]
        assert d.wait_event("drop.scanned", reason="SIGHUP")
        (d.drop / "masuk" / "b.pdf").write_bytes(b"second letter\n")
        assert d.wait_event("document.registered", count=2)["category"] == "outbound"

        # Invalid: the reason is logged, the rules in force stay (masuk → outbound).
        d.config.write_text(original + RULES_OUTBOUND + '\n[watch2]\nx = 1\n')
        d.proc.send_signal(signal.SIGHUP)
        failed = d.wait_event("config.reload_failed")
        assert "watch2" in failed["error"]
        (d.drop / "masuk" / "c.pdf").write_bytes(b"third letter\n")
        assert d.wait_event("document.registered", count=3)["category"] == "outbound"

        # A folder cannot change without a restart: refused with that message, nothing applied.
        d.config.write_text(original.replace('archive = "archive"', 'archive = "archive2"'))
        d.proc.send_signal(signal.SIGHUP)
        refused = d.wait_event("config.reload_refused")
        assert refused["keys"] == ["paths.archive"] and "restart" in refused["reason"]
        (d.drop / "masuk" / "d.pdf").write_bytes(b"fourth letter\n")
        assert d.wait_event("document.registered", count=4)["category"] == "outbound"
        assert not (d.root / "archive2").exists()
        assert notify.wait("READY", "1", count=4, daemon=d)
        # The audit trail holds the one reload that was applied, with the keys it changed.
        d.config.write_text(original)  # (the file names archive2 now: the command would refuse it)
        reloads = [e for e in json.loads(d.cli("log", "--json").stdout) if e["event"] == "config.reloaded"]
        assert [sorted(r["details"]["keys"].split(", ")) for r in reloads] == [["rules", "watch.settle_seconds"]], reloads
    finally:
        d.stop()


def test_reload_command_reports_the_outcome(tmp_path: Path, notify: NotifySocket) -> None:
    d = _daemon(tmp_path, notify)
    d.start()
    try:
        original = d.config.read_text()
        out = d.cli("reload")
        assert out.returncode == 0 and "nothing changed" in out.stdout, out
        d.config.write_text(original + RULES_OUTBOUND)
        out = d.cli("reload")
        assert out.returncode == 0 and "rules" in out.stdout, out
        # Invalid: refused here, before the daemon is asked (no reload event follows).
        d.config.write_text(original.replace("settle_seconds = 0.4", "settle_seconds = -1"))
        out = d.cli("reload")
        assert out.returncode == 78 and "watch.settle_seconds" in out.stderr, out
        d.config.write_text(original.replace('state = "state"', 'state = "state"\n').replace('drop = "drop"', 'drop = "drop2"'))
        out = d.cli("reload")
        assert out.returncode == 78, out
    finally:
        d.stop()
    # After stop the lock is free: reload says the daemon is not running.
    d.config.write_text(original)
    out = d.cli("reload")
    assert out.returncode == 3, out


def test_check_config(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "naskahd")
    out = subprocess.run(naskahd_cmd("check-config", "--config", str(cfg)), capture_output=True, text=True)
    assert out.returncode == 0 and "valid" in out.stdout, out
    bad = tmp_path / "bad.toml"
    bad.write_text('[watch]\nmode = "sometimes"\n')
    out = subprocess.run(naskahd_cmd("check-config", "--config", str(bad)), capture_output=True, text=True)
    assert out.returncode == 78 and "watch.mode" in out.stderr and "Traceback" not in out.stderr, out
    out = subprocess.run(naskahd_cmd("--config", str(bad), "check-config"), capture_output=True, text=True)
    assert out.returncode == 78


def test_sigterm_during_a_burst_ends_quickly_with_nothing_half_filed(tmp_path: Path, notify: NotifySocket) -> None:
    d = _daemon(tmp_path, notify, settle=0.2, content_check=False)
    d.start()
    for i in range(400):
        (d.drop / "masuk" / f"burst-{i:04d}.bin").write_bytes(os.urandom(2000) + b"%d" % i)
    d.wait_event("document.registered", timeout=60)
    t0 = time.monotonic()
    assert d.stop() == 0
    assert time.monotonic() - t0 < 10
    st = json.loads(d.cli("status", "--json").stdout)
    assert not any("half-filed" in p for p in st["problems"]), st["problems"]
    filed = d.documents()
    left = sorted(p.name for p in (d.drop / "masuk").iterdir())
    assert len(filed) + len(left) == 400 and all(doc["state"] == "filed" for doc in filed)
    assert not [p for p in d.archive.rglob(".naskahd-tmp-*")]


def test_journal_format_has_priorities_and_one_line_per_event(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "naskahd", settle=0.2)
    proc = subprocess.Popen(naskahd_cmd("--config", str(cfg), "run", "--log-format", "journal"),
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env={**os.environ, "LANG": "C.UTF-8"})
    lines: list[str] = []

    def read() -> None:
        assert proc.stderr is not None
        lines.extend(line.decode() for line in proc.stderr)

    t = threading.Thread(target=read, daemon=True)
    t.start()
    try:
        wait_until(lambda: any("drop.scanned" in x for x in lines), 30)
        (cfg.parent / "drop" / "masuk" / "letter one.pdf").write_bytes(b"letter\n")
        wait_until(lambda: any("document.registered" in x for x in lines), 30)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        t.join(timeout=5)
    started = next(x for x in lines if "daemon.started" in x)
    assert started.startswith("<6>daemon.started ")
    registered = next(x for x in lines if "document.registered" in x)
    assert registered.startswith("<6>document.registered ") and " category=inbound" in registered and " agenda=0001/M/" in registered
    # No recipient configured: a warning, priority 4; values with spaces are JSON strings.
    warning = next(x for x in lines if "encryption.no_recipient" in x)
    assert warning.startswith('<4>encryption.no_recipient problem="')
    events = [x for x in lines if not x.startswith("naskahd: ")]  # run's hint where to drop scans
    assert len(events) >= 4 and all(x[0] == "<" and x[2] == ">" and x.count("\n") == 1 for x in events), events


def test_status_and_list_over_the_status_socket_for_the_readers_group_only(tmp_path: Path, notify: NotifySocket) -> None:
    """Archive and state readable by the service only; a member of the readers group asks
    the daemon over its socket; anyone else is refused with how to join. (As root, a
    numeric uid and gid stand in for a reader: setpriv.)"""
    from conftest import require_root, require_tool

    require_root()
    setpriv = require_tool("setpriv")
    d = _daemon(tmp_path, notify)
    d.start()
    try:
        (d.drop / "masuk" / "a.pdf").write_bytes(b"one letter\n")
        d.wait_event("document.registered")
        sock = notify.dir / "status.sock"
        assert sock.is_socket()
        # A config a reader may read, pointing at folders it may not enter.
        public = notify.dir / "naskahd.toml"
        text = d.config.read_text()
        for key in ("drop", "archive", "state"):
            text = text.replace(f'{key} = "{key}"', f'{key} = "{d.root / key}"')
        public.write_text(text)
        public.chmod(0o644)
        notify.dir.chmod(0o755)
        os.chown(sock, -1, 4242)
        sock.chmod(0o660)  # what the daemon does for the naskahd-status group

        def as_user(groups: str, *args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [setpriv, "--reuid=65534", "--regid=65534", f"--groups={groups}", "--inh-caps=-all",
                 *naskahd_cmd("--config", str(public), *args)],
                capture_output=True, text=True, env={**d.env, "NASKAHD_STATUS_SOCKET": str(sock)}, cwd="/",
            )

        member = as_user("4242", "status", "--json")
        assert member.returncode == 0, member
        info = json.loads(member.stdout)
        assert info["daemon"]["running"] and info["documents"]["inbound"] == 1
        listed = as_user("4242", "list", "--json")
        assert listed.returncode == 0 and json.loads(listed.stdout)[0]["agenda"].startswith("0001/M/"), listed
        stranger = as_user("4343", "status")
        assert stranger.returncode == 1 and "naskahd-status" in stranger.stderr and "Traceback" not in stranger.stderr, stranger
        assert "usermod -aG naskahd-status" in stranger.stderr
    finally:
        d.stop()
    assert not (notify.dir / "status.sock").exists()


def test_adding_a_recipient_and_reloading_files_the_exempt_scans_that_waited(tmp_path: Path, notify: NotifySocket) -> None:
    """The status line says "add the officer's age1... public key and reload": that works."""
    from conftest import require_tool

    keygen = require_tool("age-keygen")
    key = tmp_path / "officer.key"
    subprocess.run([keygen, "-o", str(key)], check=True, capture_output=True)
    recipient = next(line.split(": ")[1] for line in key.read_text().splitlines() if line.startswith("# public key"))
    d = _daemon(tmp_path, notify, settle=0.3)
    d.start()
    try:
        (d.drop / "dikecualikan" / "rahasia.pdf").write_bytes(b"exempt letter\n")
        d.wait_event("document.held")
        assert not d.find("document.registered")
        d.config.write_text(d.config.read_text().replace("recipients = []", f'recipients = ["{recipient}"]'))
        d.proc.send_signal(signal.SIGHUP)
        ev = d.wait_event("config.reloaded")
        assert ev["changed"] == {"encryption.recipients": ["0 recipient(s)", "1 recipient(s)"]}
        assert d.wait_event("document.registered")["category"] == "exempt"
        (doc,) = d.documents()
        assert doc["archive_path"].endswith(".pdf.age") and not (d.drop / "dikecualikan" / "rahasia.pdf").exists()
    finally:
        d.stop()
