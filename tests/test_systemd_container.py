"""naskahd under a real systemd: a Debian 12 container (tests/container.py) in which naskahd is
installed with `make install` (offline, from wheels built here), its users and folders are
made by systemd-sysusers and systemd-tmpfiles, `naskahd init` (as the service's user) marks
them as one installation, and the unit is enabled and started.

The tests run in order on one container: the unit is active (running) with its STATUS=;
dropped scans are filed; the readers group may run `naskahd status`, others are refused;
`systemctl reload` applies a changed rule and keeps the old on an invalid file; writes
outside ReadWritePaths= fail; a stopped main process is restarted by the watchdog; the
journal shows the events; `systemctl stop` leaves nothing half-filed.

The one test-only setting is a drop-in with a short WatchdogSec= (and restart delay), so
the watchdog test takes seconds, not minutes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ROOT, require, require_root, wait_until
from container import Container, missing_tools, tree

pytestmark = [pytest.mark.system, pytest.mark.slow]

DROP = "/srv/naskahd/drop"
WATCHDOG_DROPIN = """[Service]
WatchdogSec=3s
RestartSec=1s
TimeoutAbortSec=5s
"""


def _wheels(dest: Path) -> Path:
    """naskahd's wheel and its dependencies' (the dependencies cached outside the clone)."""
    cache = Path(os.environ.get("NASKAHD_TEST_CACHE", "/var/cache/naskahd-test")) / "wheels"
    cache.mkdir(parents=True, exist_ok=True)
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
                          "--find-links", str(cache), "-w", str(cache), str(ROOT)], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    for wheel in cache.glob("naskahd-*.whl"):  # this clone's, fresh: never a cached one
        wheel.rename(dest / wheel.name)
    return cache


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    require_root()
    missing = missing_tools()
    require(not missing, f"{', '.join(missing)} not installed (Debian: systemd-container, mmdebstrap, util-linux)")
    require(Path("/sys/fs/cgroup/systemd").is_dir() or Path("/sys/fs/cgroup/cgroup.controllers").exists(), "no cgroup hierarchy for systemd-nspawn")
    work = tmp_path_factory.mktemp("container")
    own = work / "wheel"
    own.mkdir()
    deps = _wheels(own)
    c = Container(tree(ROOT), work, binds={str(ROOT): "/src", str(deps): "/wheels", str(own): "/wheel"})
    with c:
        c.run("make", "-C", "/src", "install", "PIP_ARGS=--no-index --find-links=/wheel --find-links=/wheels",
              "INSTALL_SPEC=naskahd", timeout=600, check=True)
        c.sh("systemd-sysusers && systemd-tmpfiles --create", check=True)
        c.sh(
            "sed -i 's/^settle_seconds = .*/settle_seconds = 0.5/' /etc/naskahd/naskahd.toml\n"
            "mkdir -p /etc/systemd/system/naskahd.service.d\n"
            f"printf '{WATCHDOG_DROPIN}' > /etc/systemd/system/naskahd.service.d/test.conf\n"
            "useradd -m -G naskahd-staff staf && useradd -m -G naskahd-status pembaca && useradd -m lain\n"
            "runuser -u naskahd -- naskahd init\n"  # the installation's markers and register, owned by the service
            "systemctl daemon-reload && systemctl enable --now naskahd", check=True)
        yield c


def _drop(c: Container, rel: str, data: str) -> None:
    """A staff member writes a scan into the drop folder (umask 007, as the share does)."""
    c.run("sh", "-c", f"umask 007; cat > '{DROP}/{rel}.part' && mv '{DROP}/{rel}.part' '{DROP}/{rel}'", user="staf", input=data, check=True)


def _list(c: Container, config: str = "/etc/naskahd/naskahd.toml") -> list[dict[str, object]]:
    return list(json.loads(c.run("naskahd", "--config", config, "list", "--json", check=True).stdout))


def _wait_rows(c: Container, n: int, timeout: float = 30, config: str = "/etc/naskahd/naskahd.toml") -> list[dict[str, object]]:
    def enough() -> list[dict[str, object]] | None:
        rows = _list(c, config)
        return rows if len(rows) >= n else None

    return list(wait_until(enough, timeout, f"{n} documents in the register"))


def _journal(c: Container, *args: str) -> str:
    return c.run("journalctl", "-u", "naskahd", "--no-pager", "-o", "cat", *args).stdout


def _main_pid(c: Container) -> int:
    return int(c.run("systemctl", "show", "-P", "MainPID", "naskahd").stdout.strip() or 0)


def test_unit_is_active_running_with_its_status_text(box: Container) -> None:
    wait_until(lambda: box.run("systemctl", "is-active", "naskahd").stdout.strip() == "active", 30, "naskahd active")
    out = box.run("systemctl", "status", "--no-pager", "naskahd").stdout
    assert "active (running)" in out, out
    assert re.search(r"Status: \"documents today \d+, waiting \d+, in review \d+, last backup -\"", out), out
    assert box.run("systemctl", "is-enabled", "naskahd").stdout.strip() == "enabled"
    assert box.run("systemctl", "show", "-P", "User", "naskahd").stdout.strip() == "naskahd"


def test_dropped_scans_are_filed(box: Container) -> None:
    _drop(box, "masuk/surat-1.pdf", "first letter\n")
    _drop(box, "keluar/surat-2.pdf", "second letter\n")
    rows = _wait_rows(box, 2)
    assert {r["category"] for r in rows} == {"inbound", "outbound"}
    assert box.run("sh", "-c", f"ls -A {DROP}/masuk; ls -A {DROP}/keluar").stdout.split() == []
    # Archive and state: the service's only.
    assert box.run("stat", "-c", "%U %a", "/var/lib/naskahd", "/srv/naskahd/archive").stdout.split() == ["naskahd", "700", "naskahd", "700"]


def test_readers_group_may_ask_status_others_are_refused(box: Container) -> None:
    member = box.run("naskahd", "status", user="pembaca")
    assert member.returncode == 0, member.stdout + member.stderr
    assert "naskahd is running" in member.stdout and "inbound 1" in member.stdout
    listed = box.run("naskahd", "list", "--json", user="pembaca")
    assert listed.returncode == 0 and len(json.loads(listed.stdout)) >= 2, listed.stderr
    stranger = box.run("naskahd", "status", user="lain")
    assert stranger.returncode == 1, stranger.stdout + stranger.stderr
    assert "naskahd-status" in stranger.stderr and "usermod -aG naskahd-status" in stranger.stderr
    assert "Traceback" not in stranger.stderr


def test_reload_applies_a_changed_rule_and_keeps_the_old_on_an_invalid_file(box: Container) -> None:
    cfg = "/etc/naskahd/naskahd.toml"
    box.sh(f"cp {cfg} /root/good.toml && sed -i '0,/category = \"inbound\"/s//category = \"outbound\"/' {cfg}", check=True)
    box.run("systemctl", "reload", "naskahd", check=True)
    wait_until(lambda: "config.reloaded" in _journal(box), 20, "config.reloaded")
    _drop(box, "masuk/surat-3.pdf", "third letter\n")
    rows = _wait_rows(box, 3)
    assert rows[-1]["category"] == "outbound"  # the changed rule is in force

    box.sh(f"cp {cfg} /root/changed.toml && printf '\\n[bogus]\\nkey = 1\\n' >> {cfg}", check=True)
    box.run("systemctl", "reload", "naskahd", check=True)
    wait_until(lambda: "config.reload_failed" in _journal(box), 20, "config.reload_failed")
    assert "bogus" in _journal(box, "-p", "err")
    assert box.run("systemctl", "is-active", "naskahd").stdout.strip() == "active"
    _drop(box, "masuk/surat-4.pdf", "fourth letter\n")
    rows = _wait_rows(box, 4, config="/root/changed.toml")  # list, too, refuses the invalid file
    assert rows[-1]["category"] == "outbound"  # the old (changed) rules still in force
    # naskahd reload checks the file first and says why it will not ask the daemon.
    out = box.run("naskahd", "reload")
    assert out.returncode == 78 and "bogus" in out.stderr, out
    box.sh(f"cp /root/good.toml {cfg}", check=True)
    out = box.run("naskahd", "reload")
    assert out.returncode == 0 and "rules" in out.stdout, out


def test_writes_outside_read_write_paths_fail(box: Container) -> None:
    pid = _main_pid(box)
    # The service's own mount namespace; even root there cannot write outside ReadWritePaths=.
    inside = ["nsenter", "-t", str(pid), "-m"]
    denied = box.run(*inside, "sh", "-c", "touch /etc/naskahd/x 2>&1; touch /usr/local/x 2>&1; touch /srv/naskahd/x 2>&1; ls -A /home; true")
    assert denied.stdout.count("Read-only file system") == 3, denied.stdout + denied.stderr
    assert "staf" not in denied.stdout  # ProtectHome=: /home is empty there
    allowed = box.run(*inside, "sh", "-c", "touch /var/lib/naskahd/probe && rm /var/lib/naskahd/probe && echo ok")
    assert allowed.stdout.strip() == "ok", allowed.stdout + allowed.stderr
    assert box.run("test", "-e", "/etc/naskahd/x").returncode != 0


def test_a_stopped_main_process_is_restarted_by_the_watchdog(box: Container) -> None:
    pid = _main_pid(box)
    restarts = int(box.run("systemctl", "show", "-P", "NRestarts", "naskahd").stdout.strip())
    box.run("kill", "-STOP", str(pid), check=True)
    wait_until(lambda: _main_pid(box) not in (0, pid) and box.run("systemctl", "is-active", "naskahd").stdout.strip() == "active",
               40, "a new main process")
    assert int(box.run("systemctl", "show", "-P", "NRestarts", "naskahd").stdout.strip()) == restarts + 1
    log = box.run("journalctl", "--no-pager", "-u", "naskahd").stdout
    assert "Watchdog timeout" in log, log[-3000:]


def test_the_journal_shows_the_events(box: Container) -> None:
    log = _journal(box)
    for event in ("daemon.started", "drop.scanned", "document.registered", "config.reloaded", "config.reload_failed", "statusd.listening"):
        assert event in log, event
    # One line per event, no JSON braces, the level as the priority (warnings are not info).
    registered = next(line for line in log.splitlines() if line.startswith("document.registered"))
    assert "agenda=" in registered and not registered.startswith("{")
    assert "config.reload_failed" in _journal(box, "-p", "err") and "document.registered" not in _journal(box, "-p", "warning")


def test_stop_leaves_no_half_filed_document(box: Container) -> None:
    for i in range(60):
        _drop(box, f"masuk/burst-{i:03d}.pdf", f"burst letter {i}\n" * 50)
    time.sleep(0.8)
    t0 = time.monotonic()
    box.run("systemctl", "stop", "naskahd", check=True, timeout=60)
    assert time.monotonic() - t0 < 10
    status = json.loads(box.run("naskahd", "status", "--json").stdout)
    assert not status["daemon"]["running"]
    assert not any("half-filed" in p for p in status["problems"]), status["problems"]
    rows = _list(box)
    assert all(r["state"] == "filed" for r in rows)
    left = box.run("sh", "-c", f"ls {DROP}/masuk").stdout.split()
    filed = [r for r in rows if str(r["original_name"]).startswith("burst-")]
    assert len(filed) + len(left) == 60 and set(left).isdisjoint(str(r["original_name"]) for r in filed)
    assert box.run("sh", "-c", "find /srv/naskahd/archive -name '.naskahd-tmp-*'").stdout == ""
    assert "daemon.stopped" in _journal(box)
