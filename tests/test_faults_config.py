"""Issue 22, fault campaign: the encryption recipient removed from the configuration (and
the daemon reloaded) while exempt letters wait in the drop folder."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from conftest import Daemon, require_tool, wait_until, write_config
from faults import Stopwatch, figure, no_traceback, nothing_lost, status, wait_healthy, wait_problem

pytestmark = pytest.mark.system


def officer(folder: Path, name: str) -> tuple[Path, str]:
    key = folder / f"{name}.key"
    subprocess.run([require_tool("age-keygen"), "-o", str(key)], check=True, capture_output=True)
    return key, next(line.split(": ")[1] for line in key.read_text().splitlines() if line.startswith("# public key"))


def test_the_recipient_removed_while_exempt_letters_wait(tmp_path: Path) -> None:
    old_key, old = officer(tmp_path, "old")
    new_key, new = officer(tmp_path, "new")
    # A long settle time: the letters are seen (and early copies made, encrypted to the old
    # recipient) but not yet taken when the recipient goes.
    cfg = write_config(tmp_path / "naskahd", settle=4.0, recipients=[old])
    d = Daemon(cfg.parent, cfg).start()
    try:
        dropped: dict[str, bytes] = {}
        markers = []
        for i in range(3):
            marker = os.urandom(16).hex().encode()
            markers.append(marker)
            dropped[f"dikecualikan/rahasia {i}.pdf"] = data = b"exempt " + marker + os.urandom(20_000)
            (d.drop / "dikecualikan" / f"rahasia {i}.pdf").write_bytes(data)
        d.config.write_text(d.config.read_text().replace(f'recipients = ["{old}"]', "recipients = []"))
        d.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
        ev = d.wait_event("config.reloaded")
        assert ev["changed"] == {"encryption.recipients": ["1 recipient(s)", "0 recipient(s)"]}
        d.wait_event("encryption.no_recipient")
        d.wait_event("document.held", count=1, timeout=30)
        wait_problem(d, "3 exempt scan(s) wait", "recipient")
        assert status(d)[0] == 1
        assert not d.find("document.registered")
        assert all((d.drop / rel).read_bytes() == data for rel, data in dropped.items())
        nothing_lost(d, dropped, settled=False, exempt_markers=markers)  # no plaintext, no early copy left
        assert not [p for p in d.archive.rglob("*") if p.is_file() and p.name.startswith(".naskahd-tmp-")]
        clock = Stopwatch()
        d.config.write_text(d.config.read_text().replace("recipients = []", f'recipients = ["{new}"]'))
        d.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
        d.wait_event("document.registered", count=3, timeout=60)
        figure("recipient removed while exempt letters wait", files=3, faults=1, recovery_s=clock.seconds())
        wait_healthy(d)
        # encrypted to the new recipient only: the old key opens none of them
        nothing_lost(d, dropped, exempt_markers=markers, identity=new_key)
        for doc in d.documents():
            age = subprocess.run([require_tool("age"), "-d", "-i", str(old_key), str(d.archive / doc["archive_path"])],
                                 capture_output=True)
            assert age.returncode != 0
        no_traceback(d)
    finally:
        assert d.stop() == 0
