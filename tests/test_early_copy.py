"""Step 1 done early (Filer.prestore): used only for the very file that was copied.

On a real tree and register. The copy made during a file's settle time must be
thrown away, never registered, when the file changed, went or was reviewed before it was
due; a crash with early copies outstanding leaves only orphan temp files.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
import time
import types
from pathlib import Path

import pytest

from sqlalchemy import select

from naskahd import config, durable, filing
from naskahd.filing import Filer, Outcome, Ready
from naskahd.register import Document, open_register
from naskahd.settle import Signature

from conftest import require_root, require_tool, write_config

EARLY = dt.datetime(2026, 3, 9, 1, 0, tzinfo=dt.UTC)
DUE = dt.datetime(2026, 3, 9, 1, 5, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = EARLY

    def __call__(self) -> dt.datetime:
        return self.now


def setup(tmp_path: Path, n: int = 3) -> tuple[config.Config, Filer, Clock, list[str]]:
    cfg = config.load(str(write_config(tmp_path / "t")))
    rels = []
    for i in range(n):
        (cfg.drop / "masuk" / f"s{i}.pdf").write_bytes(os.urandom(9000 + i))
        rels.append(f"masuk/s{i}.pdf")
    settled()
    clock = Clock()
    return cfg, Filer(cfg, open_register(cfg.database_url), clock=clock), clock, rels


def settled() -> None:
    """As in the daemon, where a file is copied early only after a quarter of settle: its
    ctime must be older than the copy by more than filing.EARLY_CTIME_MARGIN_NS."""
    time.sleep(2 * filing.EARLY_CTIME_MARGIN_NS / 1e9)


def item(cfg: config.Config, rel: str) -> Ready:
    return Ready(rel, "inbound", Signature.of(os.lstat(cfg.drop / rel)))


def temps(cfg: config.Config) -> list[Path]:
    return sorted(cfg.archive.rglob(durable.TEMP_PREFIX + "*"))


def wait_early(filer: Filer) -> None:
    for early in list(filer.early._early.values()):
        early.stored.result(timeout=30)


def documents(cfg: config.Config) -> list[Document]:
    with open_register(cfg.database_url)() as s:
        return list(s.scalars(select(Document).order_by(Document.number)))


def test_an_unchanged_file_is_registered_from_its_early_copy(tmp_path: Path) -> None:
    cfg, filer, clock, rels = setup(tmp_path)
    contents = {rel: (cfg.drop / rel).read_bytes() for rel in rels}
    for rel in rels:
        filer.prestore(item(cfg, rel))
    wait_early(filer)
    assert len(temps(cfg)) == 3  # copied ahead, nothing registered, sources untouched
    assert documents(cfg) == [] and all((cfg.drop / rel).exists() for rel in rels)
    clock.now = DUE
    results = filer.file_batch([item(cfg, rel) for rel in rels])
    filer.close()
    assert [r.outcome for r in results] == [Outcome.FILED] * 3
    docs = documents(cfg)
    # The copy made early was used: its time is the early one, no second copy was made.
    assert [d.received_at.replace(tzinfo=dt.UTC) for d in docs] == [EARLY] * 3
    for d, rel in zip(docs, rels, strict=True):
        assert (cfg.archive / d.archive_path).read_bytes() == contents[rel]
        assert d.sha256 == hashlib.sha256(contents[rel]).hexdigest()
        assert not (cfg.drop / rel).exists()
    assert temps(cfg) == []


def test_a_file_changed_after_its_early_copy_is_copied_again_and_the_early_copy_removed(tmp_path: Path) -> None:
    cfg, filer, clock, rels = setup(tmp_path, n=1)
    (rel,) = rels
    filer.prestore(item(cfg, rel))
    wait_early(filer)
    final = os.urandom(9000)  # same size and inode, new content
    before = os.lstat(cfg.drop / rel)
    with open(cfg.drop / rel, "r+b") as f:
        f.write(final)
    os.utime(cfg.drop / rel, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))  # a coarse clock cannot hide it
    clock.now = DUE
    (result,) = filer.file_batch([item(cfg, rel)])
    filer.close()
    assert result.outcome is Outcome.FILED
    (doc,) = documents(cfg)
    assert (cfg.archive / doc.archive_path).read_bytes() == final
    assert doc.sha256 == hashlib.sha256(final).hexdigest()
    assert doc.received_at.replace(tzinfo=dt.UTC) == DUE
    assert temps(cfg) == []


def test_early_copies_of_changed_gone_or_left_files_are_removed(tmp_path: Path) -> None:
    cfg, filer, _clock, rels = setup(tmp_path, n=3)
    changed, gone, kept = rels
    for rel in rels:
        filer.prestore(item(cfg, rel))
    wait_early(filer)
    assert len(temps(cfg)) == 3
    (cfg.drop / changed).write_bytes(b"a new version")
    signatures = {changed: item(cfg, changed).signature, kept: item(cfg, kept).signature}
    filer.prune_early(signatures.get)  # `gone` is no longer a candidate
    assert len(temps(cfg)) == 1 and set(filer.early._early) == {kept}
    filer.discard_early(kept)  # e.g. moved to review
    assert temps(cfg) == [] and filer.early._early == {}
    for rel in rels:  # and at shutdown
        filer.prestore(item(cfg, rel))
    filer.close()
    assert temps(cfg) == [] and documents(cfg) == []


def test_a_crash_with_early_copies_outstanding_leaves_only_orphan_temps(tmp_path: Path) -> None:
    cfg, filer, _clock, rels = setup(tmp_path)
    contents = {rel: (cfg.drop / rel).read_bytes() for rel in rels}
    for rel in rels:
        filer.prestore(item(cfg, rel))
    wait_early(filer)  # then the process dies: no close()
    assert len(temps(cfg)) == 3
    assert Filer(cfg, open_register(cfg.database_url)).reconcile() == []
    assert temps(cfg) == [] and documents(cfg) == []
    assert {rel: (cfg.drop / rel).read_bytes() for rel in rels} == contents


def test_an_early_copy_still_queued_when_due_is_made_on_the_store_threads(tmp_path: Path) -> None:
    """The early threads are busy (large files): a due file does not queue behind them."""
    import threading

    cfg, filer, clock, rels = setup(tmp_path, n=filing.EARLY_THREADS + 1)
    *large, small = rels
    busy = threading.Semaphore(0)
    release = threading.Event()
    real = filer.store.store

    def store(it: Ready, check: bool = False, guard=None):  # type: ignore[no-untyped-def]
        if it.relpath in large:
            busy.release()
            release.wait(timeout=30)
        return real(it, check, guard)

    filer.store.store = store  # type: ignore[method-assign]
    for rel in large:
        filer.prestore(item(cfg, rel))
    filer.prestore(item(cfg, small))  # queued behind the large ones
    for _ in large:
        assert busy.acquire(timeout=30)  # every early thread is taken
    clock.now = DUE
    (result,) = filer.file_batch([item(cfg, small)])
    assert not any(filer.early._early[rel].stored.done() for rel in large)  # it did not wait for them
    assert result.outcome is Outcome.FILED
    (doc,) = documents(cfg)
    assert doc.received_at.replace(tzinfo=dt.UTC) == DUE  # copied when due
    release.set()
    filer.close()
    assert temps(cfg) == [] and all((cfg.drop / rel).exists() for rel in large)


def test_an_early_copy_that_failed_is_tried_again_when_due(tmp_path: Path) -> None:
    """An early attempt decides nothing: e.g. the archive was full then, and is not now."""
    import errno

    cfg, filer, clock, rels = setup(tmp_path, n=1)
    (rel,) = rels
    real = durable.Staged

    def full(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError(errno.ENOSPC, "No space left on device")

    durable.Staged = full  # type: ignore[misc]
    try:
        filer.prestore(item(cfg, rel))
        wait_early(filer)
    finally:
        durable.Staged = real  # type: ignore[misc]
    clock.now = DUE
    (result,) = filer.file_batch([item(cfg, rel)])
    filer.close()
    assert result.outcome is Outcome.FILED
    (doc,) = documents(cfg)
    assert doc.received_at.replace(tzinfo=dt.UTC) == DUE and not (cfg.drop / rel).exists()


def test_the_early_copy_brings_the_content_check_of_the_bytes_it_copied(tmp_path: Path) -> None:
    """The same bytes give the same verdict: when due, the daemon need not read them again."""
    cfg, filer, _clock, rels = setup(tmp_path, n=2)
    assert cfg.content_check
    unknown, cut = rels
    (cfg.drop / cut).write_bytes(b"%PDF-1.7\n" + os.urandom(5000))  # a PDF without its end
    settled()
    assert filer.early_check(cut, item(cfg, cut).signature) is None  # nothing copied early yet
    for rel in rels:
        filer.prestore(item(cfg, rel))
    wait_early(filer)
    verdict = filer.early_check(cut, item(cfg, cut).signature)
    assert verdict is not None and verdict.kind == "pdf" and not verdict.complete
    verdict = filer.early_check(unknown, item(cfg, unknown).signature)
    assert verdict is not None and verdict.kind is None and verdict.complete
    (cfg.drop / cut).write_bytes(b"%PDF-1.7\n" + os.urandom(5001))  # changed: that verdict is not its
    assert filer.early_check(cut, item(cfg, cut).signature) is None
    filer.close()


def test_no_early_copy_while_a_later_write_might_not_show_in_the_ctime(tmp_path: Path) -> None:
    """Right after a change (within a clock tick) a rewrite could keep the same ctime: the
    file is copied when due instead. Same for whole-second times (a coarse filesystem)."""
    cfg, filer, clock, rels = setup(tmp_path, n=1)
    (rel,) = rels
    (cfg.drop / rel).write_bytes(os.urandom(9000))  # just now
    filer.prestore(item(cfg, rel))
    wait_early(filer)
    assert temps(cfg) == []  # refused
    clock.now = DUE
    (result,) = filer.file_batch([item(cfg, rel)])
    filer.close()
    assert result.outcome is Outcome.FILED
    (doc,) = documents(cfg)
    assert doc.received_at.replace(tzinfo=dt.UTC) == DUE  # copied when due

    def st(ctime_ns: int) -> os.stat_result:
        return types.SimpleNamespace(st_ctime_ns=ctime_ns)  # type: ignore[return-value]

    now = 1_764_550_000_500_000_000
    assert filing.shows_later_writes(st(now - 400_000_000 + 123), now)
    assert not filing.shows_later_writes(st(now - 10_000_000 + 123), now)  # too recent
    assert not filing.shows_later_writes(st(now - 500_000_000), now)  # a whole second: coarse


@pytest.mark.system
def test_on_a_filesystem_with_whole_second_times_a_same_second_rewrite_is_not_lost(tmp_path: Path) -> None:
    """ext4 with 128-byte inodes keeps whole seconds: a rewrite at the same size within the
    second of the last write leaves the signature as it was. An early copy made before it
    would be the old bytes, and the source, holding the new ones, would be removed."""
    require_root()
    mkfs = require_tool("mkfs.ext4")
    image = tmp_path / "coarse.img"
    with open(image, "wb") as f:
        f.truncate(32 << 20)
    subprocess.run([mkfs, "-q", "-F", "-I", "128", str(image)], check=True, capture_output=True)
    cfg = config.load(str(write_config(tmp_path / "t")))
    # Only the drop folder on it: nothing there stays open after the test (the register does).
    subprocess.run(["mount", "-o", "loop", str(image), str(cfg.drop)], check=True, capture_output=True)
    try:
        (cfg.drop / "masuk").mkdir()
        filer = Filer(cfg, open_register(cfg.database_url))
        path = cfg.drop / "masuk" / "rewritten.pdf"
        for attempt in range(5):  # the rewrite must fall in the same second as the write
            time.sleep(1.02 - time.time() % 1)
            path.write_bytes(os.urandom(9000))
            assert os.lstat(path).st_ctime_ns % 1_000_000_000 == 0, "not a whole-second filesystem"
            settled()
            first = item(cfg, path.relative_to(cfg.drop).as_posix())
            filer.prestore(first)
            wait_early(filer)
            final = os.urandom(9000)
            with open(path, "r+b") as f:
                f.write(final)
            due = item(cfg, first.relpath)
            if due.signature == first.signature:
                break
            filer.discard_early(first.relpath)
        else:
            pytest.fail("could not rewrite within the same second in 5 attempts")
        (result,) = filer.file_batch([due])
        filer.close()
        with open_register(cfg.database_url)() as s:
            docs = list(s.scalars(select(Document)))
        if result.outcome is Outcome.FILED:
            (doc,) = docs
            assert doc.sha256 == hashlib.sha256(final).hexdigest(), "the old bytes were registered"
            assert (cfg.archive / doc.archive_path).read_bytes() == final
        else:
            assert docs == [] and path.read_bytes() == final
        assert list(cfg.archive.rglob(durable.TEMP_PREFIX + "*")) == []
    finally:
        subprocess.run(["umount", str(cfg.drop)], check=True)


def test_an_early_copy_made_in_another_month_is_made_again_when_due(tmp_path: Path) -> None:
    """Numbered and filed by the time it is registered: a copy made on 31 March that comes
    due on 1 April is copied again, into April's folder, with April's time."""
    cfg, filer, clock, rels = setup(tmp_path, n=1)
    (rel,) = rels
    clock.now = dt.datetime(2026, 3, 31, 16, 59, 59, tzinfo=dt.UTC)  # 23:59:59 in Jakarta
    filer.prestore(item(cfg, rel))
    wait_early(filer)
    clock.now = dt.datetime(2026, 3, 31, 17, 0, 1, tzinfo=dt.UTC)  # 00:00:01, 1 April
    (result,) = filer.file_batch([item(cfg, rel)])
    filer.close()
    assert result.outcome is Outcome.FILED
    (doc,) = documents(cfg)
    assert doc.archive_path.startswith("inbound/2026/04/")
    assert doc.received_at.replace(tzinfo=dt.UTC) == clock.now
    assert temps(cfg) == []


def test_an_exempt_scan_is_encrypted_early_and_its_plaintext_stays_in_the_drop_folder(tmp_path: Path) -> None:
    from naskahd import age

    officer = age.generate_identity()
    cfg = config.load(str(write_config(tmp_path / "t", recipients=[str(officer.recipient())])))
    rel = "dikecualikan/rahasia.pdf"
    secret = b"%PDF-1.4 classified " + os.urandom(20_000)
    (cfg.drop / rel).write_bytes(secret)
    settled()
    clock = Clock()
    filer = Filer(cfg, open_register(cfg.database_url), [age.parse_recipient(r) for r in cfg.recipients], clock=clock)
    exempt = Ready(rel, "exempt", Signature.of(os.lstat(cfg.drop / rel)))
    filer.prestore(exempt)
    wait_early(filer)
    (early,) = temps(cfg)  # the early copy: ciphertext only
    assert secret[:20] not in early.read_bytes() and early.read_bytes().startswith(b"age-encryption.org/v1")
    clock.now = DUE
    (result,) = filer.file_batch([exempt])
    filer.close()
    assert result.outcome is Outcome.FILED
    (doc,) = documents(cfg)
    assert doc.received_at.replace(tzinfo=dt.UTC) == EARLY  # the early copy was used
    stored = (cfg.archive / doc.archive_path).read_bytes()
    assert age.decrypt_bytes(stored, [officer]) == secret
    assert not (cfg.drop / rel).exists() and temps(cfg) == []
