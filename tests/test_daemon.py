"""The real daemon process on a real temporary tree: the pipeline from drop to register."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import stat
import time
from pathlib import Path

import pytest

from conftest import Daemon, all_files, noise, wait_until

pytestmark = pytest.mark.system


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def drop_file(d: Daemon, rel: str, data: bytes) -> Path:
    path = d.drop / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_a_scan_is_filed_registered_and_removed(daemon_factory) -> None:
    d = daemon_factory()
    data = os.urandom(30_000)
    src = drop_file(d, "masuk/surat undangan rapat.pdf", data)
    ev = d.wait_event("document.registered")
    assert ev["agenda"] == f"0001/M/{time.localtime().tm_year}" or ev["agenda"].startswith("0001/M/")
    assert not src.exists()
    docs = d.documents()
    assert len(docs) == 1
    doc = docs[0]
    assert set(doc) >= {"agenda", "category", "original_name", "archive_path", "sha256", "size", "received_at"}
    assert doc["category"] == "inbound"
    assert doc["original_name"] == "surat undangan rapat.pdf"
    assert doc["size"] == len(data) and doc["sha256"] == sha(data)
    archived = d.archive / doc["archive_path"]
    assert re.fullmatch(r"inbound/\d{4}/\d{2}/0001-M-\d{4}_surat undangan rapat\.pdf", doc["archive_path"])
    assert archived.read_bytes() == data
    assert doc["received_at"].endswith("+00:00")
    st = d.status()
    assert st["daemon"]["running"] is True and st["daemon"]["pid"] == d.proc.pid
    assert st["documents"] == {"inbound": 1, "outbound": 0, "exempt": 0}
    assert st["pending"] == 0 and st["review"] == 0 and st["problems"] == []
    assert d.cli("status").returncode == 0


def test_categories_follow_the_drop_subfolders_and_numbers_count_per_category(daemon_factory) -> None:
    d = daemon_factory()
    for i in range(3):
        drop_file(d, f"masuk/in{i}.pdf", os.urandom(100))
    for i in range(2):
        drop_file(d, f"keluar/sub/out{i}.pdf", os.urandom(100))
    d.wait_event("document.registered", count=5)
    docs = d.documents()
    inbound = sorted(x["agenda"].split("/")[0] for x in docs if x["category"] == "inbound")
    outbound = sorted(x["agenda"].split("/")[0] for x in docs if x["category"] == "outbound")
    assert inbound == ["0001", "0002", "0003"] and outbound == ["0001", "0002"]
    assert all("/K/" in x["agenda"] for x in docs if x["category"] == "outbound")
    assert d.cli("list", "--category", "outbound", "--json").stdout.count('"agenda"') == 2


def test_slow_writer_is_filed_once_complete(daemon_factory) -> None:
    d = daemon_factory(settle=1.0, content_check=False)
    path = d.drop / "masuk" / "slow.pdf"
    chunks = [os.urandom(50_000) for _ in range(12)]
    with open(path, "wb") as f:
        for chunk in chunks:  # 12 chunks over ~4 s, each pause shorter than settle_seconds
            f.write(chunk)
            f.flush()
            time.sleep(0.35)
    d.wait_event("document.registered", timeout=20)
    time.sleep(1.5)
    docs = d.documents()
    assert len(docs) == 1
    assert docs[0]["sha256"] == sha(b"".join(chunks)) and docs[0]["size"] == 600_000


@pytest.mark.slow
def test_burst_of_2000_files_all_filed_once_with_gapless_numbers(daemon_factory) -> None:
    d = daemon_factory(settle=0.5)
    contents = {}
    for i in range(2000):
        data = f"letter {i}\n".encode() + noise(64)
        contents[f"b{i:05d}.pdf"] = sha(data)
        drop_file(d, f"masuk/{'x' if i % 2 else 'y'}/b{i:05d}.pdf", data)
    d.wait_event("document.registered", count=2000, timeout=180)
    docs = d.documents()
    assert len(docs) == 2000
    assert sorted(int(x["agenda"].split("/")[0]) for x in docs) == list(range(1, 2001))
    assert {x["original_name"]: x["sha256"] for x in docs} == contents
    assert all_files(d.drop) == []
    assert len(all_files(d.archive)) == 2000


def test_files_dropped_while_stopped_are_filed_on_start(daemon_factory) -> None:
    d = daemon_factory()
    d.stop()
    st = d.cli("status", "--json")
    assert st.returncode == 3
    daemon = json.loads(st.stdout)["daemon"]
    assert {k: daemon[k] for k in ("running", "pid", "since", "stopped_cleanly")} == {
        "running": False, "pid": None, "since": None, "stopped_cleanly": True}
    assert daemon["stopped_at"]  # when, from state/daemon.json (issue 18)
    for i in range(5):
        drop_file(d, f"masuk/offline{i}.pdf", os.urandom(500))
    assert json.loads(d.cli("status", "--json").stdout)["pending"] == 5
    d.start()
    d.wait_event("document.registered", count=5)
    assert len(d.documents()) == 5


def test_temporary_name_renamed_to_final_is_taken_under_the_final_name(daemon_factory) -> None:
    d = daemon_factory()
    part = drop_file(d, "masuk/scan.pdf.filepart", os.urandom(1000))
    time.sleep(1.5)
    assert d.find("document.registered") == []  # *.filepart is ignored
    part.rename(d.drop / "masuk" / "scan.pdf")
    ev = d.wait_event("document.registered")
    assert ev["path"] == "masuk/scan.pdf"


def test_a_folder_moved_into_the_drop_folder_is_scanned(daemon_factory, tmp_path: Path) -> None:
    d = daemon_factory()
    outside = tmp_path / "batch"
    (outside / "inner").mkdir(parents=True)
    for i in range(3):
        (outside / "inner" / f"f{i}.pdf").write_bytes(os.urandom(200))
    os.rename(outside, d.drop / "keluar" / "batch")
    d.wait_event("document.registered", count=3)
    assert {x["category"] for x in d.documents()} == {"outbound"}


def test_same_file_twice_is_a_duplicate_moved_aside_not_registered(daemon_factory) -> None:
    d = daemon_factory()
    data = os.urandom(4000)
    drop_file(d, "masuk/a.pdf", data)
    d.wait_event("document.registered")
    drop_file(d, "keluar/a-again.pdf", data)
    ev = d.wait_event("document.duplicate")
    assert ev["duplicate_of"].startswith("0001/M/")
    assert len(d.documents()) == 1
    assert (d.drop / "duplikat" / "a-again.pdf").read_bytes() == data
    assert not (d.drop / "keluar" / "a-again.pdf").exists()


def test_unmatched_file_goes_to_review_and_is_filed_once_a_person_moves_it(daemon_factory) -> None:
    d = daemon_factory()
    drop_file(d, "stray.pdf", b"x" * 100)
    d.wait_event("document.review")
    assert (d.drop / "tinjau" / "stray.pdf").exists()
    st = d.status()
    assert st["review"] == 1
    assert any("stray.pdf" in p and "no rule" in p for p in st["problems"])
    assert d.cli("status").returncode == 1
    os.rename(d.drop / "tinjau" / "stray.pdf", d.drop / "masuk" / "stray.pdf")
    d.wait_event("document.registered")
    assert d.status()["review"] == 0


def test_odd_entries_are_never_opened_or_followed(daemon_factory, tmp_path: Path) -> None:
    d = daemon_factory()
    secret = tmp_path / "secret.pdf"
    secret.write_bytes(b"not for the archive")
    os.symlink(secret, d.drop / "masuk" / "link.pdf")
    os.mkfifo(d.drop / "masuk" / "pipe.pdf")  # opening this for reading would block forever
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(d.drop / "masuk" / "sock.pdf"))
    if os.geteuid() == 0:
        os.mknod(d.drop / "masuk" / "null.pdf", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    (d.drop / "masuk" / "dir.pdf").mkdir()
    (d.drop / "masuk" / "dir.pdf" / "inside.pdf").write_bytes(os.urandom(300))
    expected = 4 if os.geteuid() == 0 else 3
    d.wait_event("document.review", count=expected)
    d.wait_event("document.registered")  # the file inside the folder named dir.pdf
    sock.close()
    docs = d.documents()
    assert [x["original_name"] for x in docs] == ["inside.pdf"]
    assert secret.read_bytes() == b"not for the archive"
    assert all(secret.read_bytes() != p.read_bytes() for p in all_files(d.archive))
    wait_until(lambda: d.status()["review"] == expected, 5, "review count", d)
    reasons = " ".join(d.status()["problems"])
    assert "symbolic link" in reasons and "named pipe" in reasons and "socket" in reasons
    assert d.proc.poll() is None


def test_zero_byte_file_waits_then_goes_to_review(daemon_factory) -> None:
    d = daemon_factory(incomplete_after=3)
    (d.drop / "masuk" / "empty.pdf").touch()
    wait_until(lambda: any(w["path"] == "masuk/empty.pdf" for w in d.status().get("waiting", [])), 10, "empty file shown waiting", d)
    ev = d.wait_event("document.review", timeout=15)
    assert "empty" in ev["reason"]
    assert d.documents() == []
    assert any("empty" in p for p in d.status()["problems"])


def test_awkward_names_are_kept(daemon_factory) -> None:
    d = daemon_factory()
    names = [b"with spaces  and  tabs\t.pdf", b"new\nline.pdf", b"bad-\xff\xfe-bytes.pdf", b"L" * 251 + b".pdf", "é".encode() * 100 + b".pdf"]
    for i, raw in enumerate(names):
        with open(os.path.join(os.fsencode(d.drop), b"masuk", raw), "wb") as f:
            f.write(os.urandom(100 + i))
    d.wait_event("document.registered", count=len(names))
    docs = d.documents()
    assert len(docs) == len(names)
    for doc in docs:
        path = d.archive / doc["archive_path"]
        assert path.is_file()
        assert len(os.fsencode(path.name)) <= 255
        assert "\n" not in doc["archive_path"]
    shown = {doc["original_name"] for doc in docs}
    assert "new\nline.pdf" in shown and "bad-\\xff\\xfe-bytes.pdf" in shown and "L" * 251 + ".pdf" in shown
    assert all_files(d.drop) == []


def test_file_deleted_before_it_settles_leaves_no_row(daemon_factory) -> None:
    d = daemon_factory(settle=1.0)
    path = drop_file(d, "masuk/gone.pdf", os.urandom(1000))
    time.sleep(0.3)
    path.unlink()
    drop_file(d, "masuk/stays.pdf", os.urandom(1000))
    d.wait_event("document.registered")
    time.sleep(1.5)
    assert [x["original_name"] for x in d.documents()] == ["stays.pdf"]


def test_file_rewritten_after_it_was_taken_is_a_new_document(daemon_factory) -> None:
    d = daemon_factory()
    drop_file(d, "masuk/same-name.pdf", b"first version" * 10)
    d.wait_event("document.registered")
    drop_file(d, "masuk/same-name.pdf", b"second version" * 10)
    d.wait_event("document.registered", count=2)
    docs = d.documents()
    assert [x["sha256"] for x in docs] == [sha(b"first version" * 10), sha(b"second version" * 10)]
    assert docs[0]["archive_path"] != docs[1]["archive_path"]


def test_a_file_rewritten_after_its_early_copy_is_filed_with_its_final_content(daemon_factory) -> None:
    """During settle the daemon copies a quiet file ahead (Filer.prestore); a
    change before it is due throws that copy away: the final content is filed, once."""
    # The early copy comes a quarter of the way through the settle time, the filing at its
    # end: 6 s leave the check below 4.5 s even when a busy machine delays the early copy.
    d = daemon_factory(settle=6.0)
    first, final = os.urandom(40_000), os.urandom(40_000)
    path = drop_file(d, "masuk/rewritten.pdf", first)

    def temps() -> list[Path]:
        return [p for p in all_files(d.archive) if p.name.startswith(".naskahd-tmp-")]

    wait_until(temps, timeout=10, what="the early copy", daemon=d)
    assert d.documents() == [] and path.exists()
    with open(path, "r+b") as f:  # same size and inode, new content
        f.write(final)
    d.wait_event("document.registered")
    time.sleep(1.0)  # room for a wrong second registration, and for the stale copy's removal
    docs = d.documents()
    assert [x["sha256"] for x in docs] == [sha(final)]
    assert (d.archive / docs[0]["archive_path"]).read_bytes() == final
    assert temps() == [] and not path.exists()


def test_exempt_scans_wait_without_a_recipient(daemon_factory) -> None:
    d = daemon_factory()
    path = drop_file(d, "dikecualikan/rahasia.pdf", b"secret letter")
    d.wait_event("document.held")
    time.sleep(0.5)
    assert path.read_bytes() == b"secret letter"
    assert all_files(d.archive) == []
    wait_until(lambda: any("recipient" in p for p in d.status()["problems"]), 5, "status names the problem", d)
    assert d.cli("status").returncode == 1
    d.stop()
    st = json.loads(d.cli("status", "--json").stdout)
    assert any("recipient" in p for p in st["problems"])


def test_restart_after_sigkill_during_a_burst_files_everything_exactly_once(daemon_factory) -> None:
    d = daemon_factory(settle=0.2)
    total = 0
    for round_ in range(6):
        for i in range(150):
            drop_file(d, f"masuk/r{round_}-{i}.pdf", os.urandom(2000))
        total += 150
        wait_until(lambda: d.find("document.registered"), 20, "some filing", d)
        time.sleep(0.05 * round_)
        d.kill()
        d.start()
    wait_until(lambda: all_files(d.drop) == [], 60, "drop folder empty", d)
    d.stop()
    docs = d.documents()
    assert len(docs) == total
    assert sorted(int(x["agenda"].split("/")[0]) for x in docs) == list(range(1, total + 1))
    archived = [p for p in all_files(d.archive)]
    assert len(archived) == total, [p.name for p in archived if p.name.startswith(".naskahd-tmp")]
    for doc in docs:
        assert hashlib.sha256((d.archive / doc["archive_path"]).read_bytes()).hexdigest() == doc["sha256"]


def test_a_second_daemon_on_the_same_state_is_refused(daemon_factory) -> None:
    d = daemon_factory()
    second = Daemon(d.root, d.config).start(wait=False)
    assert second.proc is not None
    rc = second.proc.wait(timeout=30)
    assert rc != 0
    wait_until(lambda: "already running" in second.log_text(), 5, "refusal message")


def test_polling_mode_files_scans(daemon_factory) -> None:
    d = daemon_factory(mode="polling")
    ev = d.find("daemon.started")[0]
    assert ev["watch_mode"] == "polling"
    drop_file(d, "keluar/polled.pdf", os.urandom(700))
    d.wait_event("document.registered", timeout=20)


def test_polling_mode_makes_no_early_copies(daemon_factory) -> None:
    """On a polled (network) drop folder cached attributes and another host's clock cannot
    vouch for a copy made before the file is due: it is copied when due, not earlier."""
    d = daemon_factory(mode="polling", settle=3.0)
    drop_file(d, "masuk/polled.pdf", os.urandom(40_000))
    # An early copy would be there from a quarter of settle after the file was seen until
    # it is due (3 s after it was seen at the earliest); the copy made when due comes later.
    until = time.monotonic() + 2.5
    while time.monotonic() < until:
        assert not [p for p in all_files(d.archive) if p.name.startswith(".naskahd-tmp-")]
        time.sleep(0.02)
    d.wait_event("document.registered", timeout=20)


@pytest.mark.slow
def test_10000_files_at_once_with_an_overflowing_inotify_queue(daemon_factory) -> None:
    """The kernel drops events when its queue overflows; the full scan that follows finds them."""
    from conftest import require_root

    require_root()
    knob = Path("/proc/sys/fs/inotify/max_queued_events")
    old = knob.read_text()
    d = daemon_factory(settle=0.5)
    knob.write_text("256\n")  # applies to the daemon's inotify instance as events queue up
    try:
        d.stop()
        d.start()
        d.proc.send_signal(signal.SIGSTOP)  # the daemon reads no events while the files land
        try:
            for i in range(10_000):
                (d.drop / "masuk" / f"m{i:05d}.pdf").write_bytes(b"%d" % i)
        finally:
            d.proc.send_signal(signal.SIGCONT)
        d.wait_event("document.registered", count=10_000, timeout=300)
    finally:
        knob.write_text(old)
    assert d.find("drop.scanned", reason="inotify queue overflow"), "overflow not noticed"
    assert d.find("drop.events_lost"), "the overflow is not a warning in the log"
    # `status` keeps the count and the last time; the notice went once the rescan was done.
    info = d.status()
    lost = info["inotify_overflows"]
    assert lost["count"] >= 1 and lost["last_at"] and lost["rescanned_at"] and not lost["rescanning"], lost
    assert lost["rescan_entries"] > 0 and info["notices"] == [] and info["problems"] == []
    for lang, words in (("id", "Pemberitahuan perubahan hilang (antrean inotify penuh)"),
                        ("en", "Change notifications lost (inotify queue overflow)")):
        shown = d.cli("--lang", lang, "status")
        assert shown.returncode == 0 and words in shown.stdout and "dipindai ulang" * (lang == "id") in shown.stdout, shown.stdout
    docs = d.documents()
    assert len(docs) == 10_000 and len({x["sha256"] for x in docs}) == 10_000
    assert sorted(int(x["agenda"].split("/")[0]) for x in docs) == list(range(1, 10_001))
    assert all_files(d.drop) == []


@pytest.mark.parametrize("content_check", [True, False])
def test_a_file_still_open_for_writing_is_not_taken(daemon_factory, content_check: bool) -> None:
    """Quiet and structurally unremarkable, but a writer still holds it open (as smbd does
    for a scanner between pages): the lease probe keeps it waiting until it is closed.
    The probe is its own protection: turning the content check off keeps it."""
    d = daemon_factory(settle=0.5, content_check=content_check)
    path = d.drop / "masuk" / "held-open.bin"
    with open(path, "wb") as f:
        f.write(os.urandom(3000))
        f.flush()
        wait_until(lambda: any(w["path"] == "masuk/held-open.bin" and "open for writing" in w["reason"]
                               for w in d.status().get("waiting", [])), 10, "shown waiting", d)
        assert d.find("document.registered") == []
        f.write(b"last page")
    d.wait_event("document.registered", timeout=10)
    (doc,) = d.documents()
    assert doc["size"] == 3009


def test_status_flags_a_daemon_that_stopped_reporting(daemon_factory) -> None:
    d = daemon_factory()
    assert d.cli("status").returncode == 0
    d.proc.send_signal(signal.SIGSTOP)  # holds its lock, but its loop no longer runs
    try:
        beat = json.loads((d.state / "daemon.json").read_text())
        beat["heartbeat"] = "2000-01-01T00:00:00+00:00"  # as if the last beat were long ago
        (d.state / "daemon.json").write_text(json.dumps(beat))
        out = d.cli("status", "--json")
        assert out.returncode == 1
        assert "not reported" in json.loads(out.stdout)["problems"][0]
    finally:
        d.proc.send_signal(signal.SIGCONT)


def test_list_filters_by_date_in_office_time(daemon_factory) -> None:
    d = daemon_factory()
    drop_file(d, "masuk/today.pdf", os.urandom(100))
    d.wait_event("document.registered")
    import datetime as dt
    from zoneinfo import ZoneInfo

    today = dt.datetime.now(ZoneInfo("Asia/Jakarta")).date()
    assert len(json.loads(d.cli("list", "--json", "--since", today.isoformat()).stdout)) == 1
    assert json.loads(d.cli("list", "--json", "--since", (today + dt.timedelta(days=1)).isoformat()).stdout) == []
    bad = d.cli("list", "--since", "25/11/2026")
    assert bad.returncode == 2 and "YYYY-MM-DD" in bad.stderr
    text = d.cli("list").stdout
    assert "today.pdf" in text and "/M/" in text
