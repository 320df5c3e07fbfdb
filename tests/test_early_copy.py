"""Step 1 done early (Filer.prestore): used only for the very file that was copied.

On a real tree and register. The copy made during a file's settle time must be
thrown away, never registered, when the file changed, went or was reviewed before it was
due; a crash with early copies outstanding leaves only orphan temp files.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from pathlib import Path

from sqlalchemy import select

from naskahd import config, durable
from naskahd.filing import Filer, Outcome, Ready
from naskahd.register import Document, open_register
from naskahd.settle import Signature

from conftest import write_config

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
    clock = Clock()
    return cfg, Filer(cfg, open_register(cfg.database_url), clock=clock), clock, rels


def item(cfg: config.Config, rel: str) -> Ready:
    return Ready(rel, "inbound", Signature.of(os.lstat(cfg.drop / rel)))


def temps(cfg: config.Config) -> list[Path]:
    return sorted(cfg.archive.rglob(durable.TEMP_PREFIX + "*"))


def wait_early(filer: Filer) -> None:
    for early in list(filer._early.values()):
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
    assert len(temps(cfg)) == 1 and set(filer._early) == {kept}
    filer.discard_early(kept)  # e.g. moved to review
    assert temps(cfg) == [] and filer._early == {}
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
    """The early thread is busy (a large file): a due file does not queue behind it."""
    import threading

    cfg, filer, clock, rels = setup(tmp_path, n=2)
    large, small = rels
    release = threading.Event()
    real = filer._store

    def store(it: Ready, check: bool = False):  # type: ignore[no-untyped-def]
        if it.relpath == large:
            assert release.wait(timeout=30)
        return real(it, check)

    filer._store = store  # type: ignore[method-assign]
    filer.prestore(item(cfg, large))
    filer.prestore(item(cfg, small))  # queued behind the large one
    clock.now = DUE
    (result,) = filer.file_batch([item(cfg, small)])  # would hang here if it waited
    assert result.outcome is Outcome.FILED
    (doc,) = documents(cfg)
    assert doc.received_at.replace(tzinfo=dt.UTC) == DUE  # copied when due
    release.set()
    filer.close()
    assert temps(cfg) == [] and (cfg.drop / large).exists()


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
