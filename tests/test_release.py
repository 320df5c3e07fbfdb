"""Issue 15's loss paths in filing: a source is removed or moved only once it is proved to be
the very file filed; reconcile makes durable what it relies on; exempt duplicates are kept.

Each race is made certain by an injected step at the exact instant, never by luck.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from sqlalchemy import select

from naskahd import config, durable
from naskahd.filing import Filer, Outcome, Ready
from naskahd.register import Document, DocumentState, Duplicate, open_register
from naskahd.settle import Signature

from conftest import write_config
from test_reconcile import Crash, check_invariants, ready, setup


def replace_with_new_letter(path: Path, data: bytes) -> None:
    """A scanner renames a finished new letter onto ``path`` (a new inode)."""
    tmp = path.with_name(".incoming")
    tmp.write_bytes(data)
    os.rename(tmp, path)


class ReplaceOnTouch:
    """Replaces ``path`` by a new letter at the first touch naskahd makes of it once armed:
    right *after* an lstat of it returns (a check, then the replacement), or right *before*
    a rename or unlink of it. Whatever the order of checks, the new letter arrives in the
    window between the last look and the act."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, path: Path, data: bytes) -> None:
        self.path, self.data, self.armed, self.fired = str(path), data, False, False
        real_lstat, real_unlink, real_rename = os.lstat, os.unlink, durable.rename_noreplace

        def fire() -> None:
            if self.armed and not self.fired:
                self.fired = True
                replace_with_new_letter(Path(self.path), self.data)

        def lstat(p, *a, **k):  # type: ignore[no-untyped-def]
            st = real_lstat(p, *a, **k)
            if os.fspath(p) == self.path:
                fire()
            return st

        def unlink(p, *a, **k):  # type: ignore[no-untyped-def]
            if os.fspath(p) == self.path:
                fire()
            return real_unlink(p, *a, **k)

        def rename(src, dst):  # type: ignore[no-untyped-def]
            if os.fspath(src) == self.path:
                fire()
            return real_rename(src, dst)

        monkeypatch.setattr(os, "lstat", lstat)
        monkeypatch.setattr(os, "unlink", unlink)
        monkeypatch.setattr(durable, "rename_noreplace", rename)


def docs(cfg: config.Config) -> list[Document]:
    with open_register(cfg.database_url)() as s:
        return list(s.scalars(select(Document).order_by(Document.id)).all())


def test_item2_a_letter_renamed_onto_a_filed_source_is_not_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, contents = setup(tmp_path, n=1)
    (rel,) = contents
    new_letter = b"a new letter under the same name " + os.urandom(2000)
    filer = Filer(cfg, open_register(cfg.database_url))
    race = ReplaceOnTouch(monkeypatch, cfg.drop / rel, new_letter)
    real_publish = filer._publish

    def publish(stored):  # type: ignore[no-untyped-def]
        real_publish(stored)
        race.armed = True  # from here on, step 4 runs

    monkeypatch.setattr(filer, "_publish", publish)
    (result,) = filer.file_batch(ready(cfg, [rel]))
    monkeypatch.undo()
    assert race.fired
    assert result.outcome is Outcome.FILED
    assert (cfg.drop / rel).read_bytes() == new_letter, "the new letter was removed"
    (doc,) = docs(cfg)
    assert (cfg.archive / doc.archive_path).read_bytes() == contents[rel]
    assert list(cfg.hold_dir.rglob("*.pdf")) == []


def test_item2_reconcile_does_not_remove_a_letter_renamed_onto_the_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, contents = setup(tmp_path, n=1)
    (rel,) = contents
    filer = Filer(cfg, open_register(cfg.database_url))
    monkeypatch.setattr(Filer, "_remove_source", lambda *a, **k: (_ for _ in ()).throw(Crash()))
    with pytest.raises(Crash):
        filer.file_batch(ready(cfg, [rel]))
    monkeypatch.undo()
    new_letter = b"a new letter under the same name " + os.urandom(2000)
    race = ReplaceOnTouch(monkeypatch, cfg.drop / rel, new_letter)
    real_sha = __import__("naskahd.filing.reconcile", fromlist=["sha256_file"]).sha256_file

    def sha(path):  # type: ignore[no-untyped-def]
        digest = real_sha(path)
        race.armed = True  # the source was hashed: the next touch is the removal
        return digest

    monkeypatch.setattr("naskahd.filing.reconcile.sha256_file", sha)
    assert Filer(cfg, open_register(cfg.database_url)).reconcile() == []
    monkeypatch.undo()
    assert race.fired
    assert (cfg.drop / rel).read_bytes() == new_letter, "reconcile removed the new letter"
    (doc,) = docs(cfg)
    assert doc.state is DocumentState.FILED


def test_item1_a_letter_written_over_a_duplicate_is_not_moved_aside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, contents = setup(tmp_path, n=1)
    (first,) = contents
    filer = Filer(cfg, open_register(cfg.database_url))
    filer.file_batch(ready(cfg, [first]))
    again = cfg.drop / "masuk" / "scan.pdf"
    again.write_bytes(contents[first])  # X's bytes again
    letter_y = b"letter Y, new " + os.urandom(3000)
    race = ReplaceOnTouch(monkeypatch, again, letter_y)
    real_register = filer.entry.register

    def register(stored):  # type: ignore[no-untyped-def]
        real_register(stored)  # decides: a duplicate of X
        race.armed = True

    monkeypatch.setattr(filer.entry, "register", register)
    (result,) = filer.file_batch(ready(cfg, ["masuk/scan.pdf"]))
    monkeypatch.undo()
    assert race.fired
    assert result.outcome is Outcome.GONE  # the duplicate is not there any more; Y is seen anew
    assert again.read_bytes() == letter_y, "letter Y was moved aside as a duplicate"
    assert not cfg.duplicates_dir.exists() or list(cfg.duplicates_dir.iterdir()) == []
    with open_register(cfg.database_url)() as s:
        assert s.scalars(select(Duplicate)).all() == []
    (y,) = filer.file_batch(ready(cfg, ["masuk/scan.pdf"]))
    assert y.outcome is Outcome.FILED and len(docs(cfg)) == 2


def test_a_crash_after_the_claim_leaves_the_source_in_the_holding_folder_and_reconcile_finishes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, contents = setup(tmp_path, n=3)
    filer = Filer(cfg, open_register(cfg.database_url))
    real_unlink = os.unlink

    def unlink(p, *a, **k):  # type: ignore[no-untyped-def]
        if str(cfg.hold_dir) in os.fspath(p):
            raise Crash()
        return real_unlink(p, *a, **k)

    monkeypatch.setattr(os, "unlink", unlink)
    with pytest.raises(Crash):
        filer.file_batch(ready(cfg, list(contents)))
    monkeypatch.undo()
    assert list(cfg.hold_dir.rglob("*.pdf")), "the claimed source waits in the holding folder"
    assert Filer(cfg, open_register(cfg.database_url)).reconcile() == []
    assert len(check_invariants(cfg, contents)) == 3
    assert list(cfg.hold_dir.rglob("*.pdf")) == []


def test_item3_reconcile_makes_a_visible_final_name_durable_before_removing_the_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, contents = setup(tmp_path, n=1)
    (rel,) = contents
    filer = Filer(cfg, open_register(cfg.database_url))
    real_fsync = durable.fsync_dir
    real_register = filer.entry.register
    committed: list[bool] = []

    def register(stored):  # type: ignore[no-untyped-def]
        real_register(stored)
        committed.append(True)

    def fsync_dir(d):  # type: ignore[no-untyped-def]
        if committed and str(cfg.archive) in os.fspath(d):
            raise Crash()  # SIGKILL after step 3's rename, before its folder's fsync
        return real_fsync(d)

    monkeypatch.setattr(filer.entry, "register", register)
    monkeypatch.setattr(durable, "fsync_dir", fsync_dir)
    with pytest.raises(Crash):
        filer.file_batch(ready(cfg, [rel]))
    monkeypatch.undo()
    (doc,) = docs(cfg)
    final = cfg.archive / doc.archive_path
    assert final.exists() and doc.state is DocumentState.STAGED
    order: list[str] = []
    real_rename = durable.rename_noreplace
    monkeypatch.setattr(durable, "fsync_dir", lambda d: (order.append(f"fsync {d}"), real_fsync(d))[1])
    monkeypatch.setattr(durable, "rename_noreplace", lambda s, d: (order.append(f"move {s}"), real_rename(s, d))[1])
    assert Filer(cfg, open_register(cfg.database_url)).reconcile() == []
    monkeypatch.undo()
    source_moved = order.index(f"move {cfg.drop / rel}")
    assert f"fsync {final.parent}" in order[:source_moved], order
    check_invariants(cfg, contents)


def test_item3_a_temp_file_holding_a_filed_document_whose_final_name_was_lost_is_finished(tmp_path: Path) -> None:
    cfg, contents = setup(tmp_path, n=2)
    Filer(cfg, open_register(cfg.database_url)).file_batch(ready(cfg, list(contents)))
    lost, kept = docs(cfg)
    final = cfg.archive / lost.archive_path
    # A power cut undid the final name (its folder was never fsynced): the temp name is back.
    os.rename(final, final.with_name(durable.TEMP_PREFIX + "0123456789abcdef"))
    assert Filer(cfg, open_register(cfg.database_url)).reconcile() == []
    assert hashlib.sha256(final.read_bytes()).hexdigest() == lost.sha256
    assert list(cfg.archive.rglob(durable.TEMP_PREFIX + "*")) == []
    check_invariants(cfg, contents)


def test_item3_an_orphan_temp_file_of_no_document_is_still_removed(tmp_path: Path) -> None:
    cfg, contents = setup(tmp_path, n=1)
    Filer(cfg, open_register(cfg.database_url)).file_batch(ready(cfg, list(contents)))
    (doc,) = docs(cfg)
    orphan = (cfg.archive / doc.archive_path).with_name(durable.TEMP_PREFIX + "feedfacefeedface")
    orphan.write_bytes(os.urandom(len(contents[next(iter(contents))])))  # same size, other content
    assert Filer(cfg, open_register(cfg.database_url)).reconcile() == []
    assert not orphan.exists()


def test_item5_two_identical_exempt_scans_give_one_document_and_one_duplicate(tmp_path: Path) -> None:
    from naskahd import age

    officer = age.generate_identity()
    cfg = config.load(str(write_config(tmp_path / "t", recipients=[str(officer.recipient())])))
    letter = b"exempt letter " + os.urandom(3000)
    rels = ["dikecualikan/a.pdf", "dikecualikan/b.pdf"]
    for rel in rels:
        (cfg.drop / rel).write_bytes(letter)
    items = [Ready(rel, "exempt", Signature.of(os.lstat(cfg.drop / rel))) for rel in rels]
    results = Filer(cfg, open_register(cfg.database_url), [officer.recipient()]).file_batch(items)
    assert sorted(r.outcome.value for r in results) == ["duplicate", "filed"]
    (doc,) = docs(cfg)
    assert doc.state is DocumentState.FILED
    kept = list(cfg.duplicates_dir.iterdir())
    assert len(kept) == 1 and kept[0].read_bytes() == letter  # stays inside the drop folder
    with open_register(cfg.database_url)() as s:
        (dup,) = s.scalars(select(Duplicate)).all()
    assert dup.document_id == doc.id and dup.moved_to == "" and dup.source_relpath == b""
    assert not any((cfg.drop / rel).exists() for rel in rels)


def test_the_exempt_read_back_comes_from_the_disk_not_the_page_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ciphertext's clean pages are dropped after the fsync, before it is read back."""
    from naskahd import age

    officer = age.generate_identity()
    cfg = config.load(str(write_config(tmp_path / "t", recipients=[str(officer.recipient())])))
    (cfg.drop / "dikecualikan" / "a.pdf").write_bytes(os.urandom(5000))
    calls: list[tuple[str, int]] = []
    real_fadvise, real_verify = os.posix_fadvise, age.verify_sealed
    monkeypatch.setattr(os, "posix_fadvise", lambda fd, off, n, advice: (calls.append(("fadvise", advice)), real_fadvise(fd, off, n, advice))[1])
    monkeypatch.setattr(age, "verify_sealed", lambda src, sealed: (calls.append(("verify", 0)), real_verify(src, sealed))[1])
    item = Ready("dikecualikan/a.pdf", "exempt", Signature.of(os.lstat(cfg.drop / "dikecualikan" / "a.pdf")))
    (result,) = Filer(cfg, open_register(cfg.database_url), [officer.recipient()]).file_batch([item])
    assert result.outcome is Outcome.FILED
    assert ("fadvise", os.POSIX_FADV_DONTNEED) in calls
    assert calls.index(("fadvise", os.POSIX_FADV_DONTNEED)) < calls.index(("verify", 0))


def test_item11_an_error_text_with_an_exempt_path_is_withheld(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from naskahd import age
    from naskahd.filing.reconcile import Reconciler

    officer = age.generate_identity()
    cfg = config.load(str(write_config(tmp_path / "t", recipients=[str(officer.recipient())])))
    rel = "dikecualikan/Rahasia Nama Surat.pdf"
    (cfg.drop / rel).write_bytes(os.urandom(4000))
    item = Ready(rel, "exempt", Signature.of(os.lstat(cfg.drop / rel)))
    filer = Filer(cfg, open_register(cfg.database_url), [officer.recipient()])
    monkeypatch.setattr(Filer, "_publish", lambda self, stored: (_ for _ in ()).throw(Crash()))
    with pytest.raises(Crash):
        filer.file_batch([item])
    monkeypatch.undo()
    for temp in cfg.archive.rglob(durable.TEMP_PREFIX + "*"):
        temp.unlink()  # so reconcile must redo step 1 from the source

    def refuse(self, doc, source, final):  # type: ignore[no-untyped-def]
        raise OSError(errno.EACCES, "Permission denied", str(source))

    monkeypatch.setattr(Reconciler, "_restore_from_source", refuse)
    (problem,) = Filer(cfg, open_register(cfg.database_url), [officer.recipient()]).reconcile()
    assert "Permission denied" in problem and "Rahasia" not in problem
    assert "dikecualikan/[name withheld]" in problem


@pytest.mark.parametrize("year", [2019, 2025])
def test_a_plainly_wrong_clock_numbers_nothing(tmp_path: Path, year: int) -> None:
    import datetime as dt

    cfg, contents = setup(tmp_path, n=2)
    first, second = contents
    now = [dt.datetime(2026, 3, 1, 3, tzinfo=dt.UTC)]
    filer = Filer(cfg, open_register(cfg.database_url), clock=lambda: now[0])
    (ok,) = filer.file_batch(ready(cfg, [first]))
    assert ok.outcome is Outcome.FILED
    now[0] = dt.datetime(year, 6, 1, 3, tzinfo=dt.UTC)  # the battery died, or a bad NTP answer
    (refused,) = filer.file_batch(ready(cfg, [second]))
    assert refused.outcome is Outcome.FAILED and str(year) in refused.detail and "clock" in refused.detail
    assert (cfg.drop / second).exists() and len(docs(cfg)) == 1
    assert list(cfg.archive.rglob(durable.TEMP_PREFIX + "*")) == []
    now[0] = dt.datetime(2026, 6, 1, 3, tzinfo=dt.UTC)  # set right: filed as usual
    (later,) = filer.file_batch(ready(cfg, [second]))
    assert later.outcome is Outcome.FILED and later.agenda == "0002/M/2026"


def test_a_held_file_whose_folder_was_removed_meanwhile_is_put_back_into_it_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    cfg, _contents = setup(tmp_path, n=0)
    sub = cfg.drop / "masuk" / "bagian umum"
    sub.mkdir()
    (sub / "a.pdf").write_bytes(os.urandom(3000))
    contents = {"masuk/bagian umum/a.pdf": (sub / "a.pdf").read_bytes()}
    filer = Filer(cfg, open_register(cfg.database_url))
    real_unlink = os.unlink

    def unlink(p, *a, **k):  # type: ignore[no-untyped-def]
        if str(cfg.hold_dir) in os.fspath(p):
            raise Crash()  # killed between the claim and the removal
        return real_unlink(p, *a, **k)

    monkeypatch.setattr(os, "unlink", unlink)
    with pytest.raises(Crash):
        filer.file_batch(ready(cfg, list(contents)))
    monkeypatch.undo()
    shutil.rmtree(sub)  # a person tidied the (now empty) folder away meanwhile
    assert Filer(cfg, open_register(cfg.database_url)).reconcile() == []
    assert len(check_invariants(cfg, contents)) == 1


def crash_between_claim_and_removal(cfg: config.Config, filer: Filer, items: list[Ready], monkeypatch: pytest.MonkeyPatch) -> None:
    real_unlink = os.unlink
    monkeypatch.setattr(os, "unlink", lambda p, *a, **k: (_ for _ in ()).throw(Crash()) if str(cfg.hold_dir) in os.fspath(p) else real_unlink(p, *a, **k))
    with pytest.raises(Crash):
        filer.file_batch(items)
    monkeypatch.undo()


def test_a_held_source_whose_name_was_taken_again_is_finished_not_sent_to_review(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Crash campaign, seed 909266724: killed at the removal of a filed source (it waits in
    the holding folder, its row committed); the scanner reused the name before the restart.
    The held file is that row's source: reconcile finishes the row and removes it; the new
    letter under the name is left for filing, and nothing needs a person."""
    cfg, contents = setup(tmp_path, n=2)
    filer = Filer(cfg, open_register(cfg.database_url))
    crash_between_claim_and_removal(cfg, filer, ready(cfg, list(contents)), monkeypatch)
    held = sorted(p.relative_to(cfg.hold_dir).as_posix() for p in cfg.hold_dir.rglob("*.pdf"))
    assert held == ["masuk/s0.pdf"], "the first source waits in the holding folder"
    new = os.urandom(4000)
    (cfg.drop / held[0]).write_bytes(new)  # the name taken again while the daemon is down
    assert Filer(cfg, open_register(cfg.database_url)).reconcile() == []
    assert list(cfg.hold_dir.rglob("*.pdf")) == []
    assert not any(p.is_file() for p in cfg.review_dir.rglob("*")), "nothing for a person"
    assert (cfg.drop / held[0]).read_bytes() == new, "the new letter is left for filing"
    filed = docs(cfg)
    assert {d.state for d in filed} <= {DocumentState.FILED, DocumentState.STAGED}
    first = next(d for d in filed if d.sha256 == hashlib.sha256(contents[held[0]]).hexdigest())
    assert first.state is DocumentState.FILED
    assert (cfg.archive / first.archive_path).read_bytes() == contents[held[0]]


def test_a_held_source_that_cannot_be_finished_goes_back_and_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, contents = setup(tmp_path, n=1)
    filer = Filer(cfg, open_register(cfg.database_url))
    crash_between_claim_and_removal(cfg, filer, ready(cfg, list(contents)), monkeypatch)
    (doc,) = docs(cfg)
    (cfg.archive / doc.archive_path).write_bytes(b"damaged")  # its archive copy no longer matches
    problems = Filer(cfg, open_register(cfg.database_url)).reconcile()
    assert len(problems) == 1 and doc.agenda in problems[0]
    assert (cfg.drop / "masuk/s0.pdf").read_bytes() == contents["masuk/s0.pdf"], "the source is back, never lost"
    assert list(cfg.hold_dir.rglob("*.pdf")) == []


def test_an_exempt_held_source_whose_name_was_taken_is_finished(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from naskahd import age

    officer = age.generate_identity()
    cfg = config.load(str(write_config(tmp_path / "t", recipients=[str(officer.recipient())])))
    rel = "dikecualikan/scan0001.pdf"
    (cfg.drop / rel).write_bytes(os.urandom(3000))
    filer = Filer(cfg, open_register(cfg.database_url), [officer.recipient()])
    crash_between_claim_and_removal(cfg, filer, [Ready(rel, "exempt", Signature.of(os.lstat(cfg.drop / rel)))], monkeypatch)
    assert (cfg.hold_dir / rel).is_file()
    (cfg.drop / rel).write_bytes(b"the scanner reused the name")  # before the restart
    assert Filer(cfg, open_register(cfg.database_url), [officer.recipient()]).reconcile() == []
    assert not (cfg.hold_dir / rel).exists()
    assert not any(p.is_file() for p in cfg.review_dir.rglob("*"))
    assert (cfg.drop / rel).read_bytes() == b"the scanner reused the name"
    assert [d.state for d in docs(cfg)] == [DocumentState.FILED]


def test_an_exempt_held_file_of_no_row_whose_name_was_taken_goes_to_the_exempt_review_folder(tmp_path: Path) -> None:
    """A held file that is no unfinished row's source (a crash in a move to review or to
    duplicates) goes back; its name taken, into review, an exempt one apart."""
    from naskahd import age

    officer = age.generate_identity()
    cfg = config.load(str(write_config(tmp_path / "t", recipients=[str(officer.recipient())])))
    rel = "dikecualikan/scan0001.pdf"
    (cfg.hold_dir / "dikecualikan").mkdir(parents=True)
    (cfg.hold_dir / rel).write_bytes(os.urandom(3000))
    (cfg.drop / rel).write_bytes(b"the scanner reused the name")
    Filer(cfg, open_register(cfg.database_url), [officer.recipient()]).reconcile()
    assert not any(p.is_file() for p in cfg.review_dir.glob("*")), "never among ordinary review items"
    assert len(list((cfg.review_dir / "dikecualikan").iterdir())) == 1
