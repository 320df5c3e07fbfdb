"""A crash at each step of filing, then start-up reconciliation: on a real tree and register.

The crash is a BaseException raised at the chosen instant (nothing after it runs, as with
SIGKILL); then a fresh Filer reconciles, and the daemon's invariants are checked.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from sqlalchemy import select

from naskahd import config, durable
from naskahd.filing import Filer, Outcome, Ready
from naskahd.register import Document, DocumentState, open_register
from naskahd.settle import Signature

from conftest import write_config


class Crash(BaseException):
    pass


def setup(tmp_path: Path, n: int = 5) -> tuple[config.Config, dict[str, bytes]]:
    cfg = config.load(str(write_config(tmp_path / "t")))
    contents = {}
    for i in range(n):
        data = os.urandom(5000 + i)
        (cfg.drop / "masuk" / f"s{i}.pdf").write_bytes(data)
        contents[f"masuk/s{i}.pdf"] = data
    return cfg, contents


def ready(cfg: config.Config, rels: list[str]) -> list[Ready]:
    return [Ready(r, "inbound", Signature.of(os.lstat(cfg.drop / r))) for r in rels]


def check_invariants(cfg: config.Config, contents: dict[str, bytes]) -> list[Document]:
    sessions = open_register(cfg.database_url)
    with sessions() as s:
        docs = s.scalars(select(Document).order_by(Document.number)).all()
    assert [d.number for d in docs] == list(range(1, len(docs) + 1)), "agenda numbers gapless"
    assert all(d.state is DocumentState.FILED for d in docs)
    by_sha = {hashlib.sha256(v).hexdigest(): k for k, v in contents.items()}
    for d in docs:
        assert (cfg.archive / d.archive_path).read_bytes() == contents[by_sha[d.sha256]]
        assert not (cfg.drop / by_sha[d.sha256]).exists(), "source removed once filed"
    registered = {by_sha[d.sha256] for d in docs}
    for rel in contents:
        assert rel in registered or (cfg.drop / rel).read_bytes() == contents[rel], f"{rel} lost"
    temps = [p for p in cfg.archive.rglob(durable.TEMP_PREFIX + "*")]
    assert temps == []
    return list(docs)


def test_crash_before_the_register_commit_leaves_only_orphan_temps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, contents = setup(tmp_path)
    filer = Filer(cfg, open_register(cfg.database_url))
    monkeypatch.setattr(filer.entry, "register", lambda stored: (_ for _ in ()).throw(Crash()))
    with pytest.raises(Crash):
        filer.file_batch(ready(cfg, list(contents)))
    assert list(cfg.archive.rglob(durable.TEMP_PREFIX + "*"))
    Filer(cfg, open_register(cfg.database_url)).reconcile()
    assert check_invariants(cfg, contents) == []


@pytest.mark.parametrize("renamed", [0, 2, 4])
def test_crash_after_commit_during_the_renames_is_finished(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, renamed: int) -> None:
    cfg, contents = setup(tmp_path)
    filer = Filer(cfg, open_register(cfg.database_url))
    real = durable.rename_noreplace
    calls = []

    def rename(src, dst):  # type: ignore[no-untyped-def]
        if len(calls) == renamed:
            raise Crash()
        calls.append(dst)
        real(src, dst)

    monkeypatch.setattr(durable, "rename_noreplace", rename)
    with pytest.raises(Crash):
        filer.file_batch(ready(cfg, list(contents)))
    monkeypatch.setattr(durable, "rename_noreplace", real)
    assert Filer(cfg, open_register(cfg.database_url)).reconcile() == []
    assert len(check_invariants(cfg, contents)) == 5


def test_crash_after_commit_with_a_temp_file_lost_to_power_failure_refiles_from_the_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, contents = setup(tmp_path)
    filer = Filer(cfg, open_register(cfg.database_url))
    monkeypatch.setattr(durable, "rename_noreplace", lambda src, dst: (_ for _ in ()).throw(Crash()))
    with pytest.raises(Crash):
        filer.file_batch(ready(cfg, list(contents)))
    monkeypatch.undo()
    for temp in cfg.archive.rglob(durable.TEMP_PREFIX + "*"):  # the folder entry never reached the disk
        temp.unlink()
    assert Filer(cfg, open_register(cfg.database_url)).reconcile() == []
    assert len(check_invariants(cfg, contents)) == 5


def test_crash_while_removing_sources_is_finished(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, contents = setup(tmp_path)
    filer = Filer(cfg, open_register(cfg.database_url))
    real = Filer._remove_source
    calls = []

    def remove(self, source, s, quiet=False):  # type: ignore[no-untyped-def]
        if len(calls) == 3:
            raise Crash()
        calls.append(source)
        return real(self, source, s, quiet)

    monkeypatch.setattr(Filer, "_remove_source", remove)
    with pytest.raises(Crash):
        filer.file_batch(ready(cfg, list(contents)))
    monkeypatch.undo()
    assert Filer(cfg, open_register(cfg.database_url)).reconcile() == []
    assert len(check_invariants(cfg, contents)) == 5


def test_a_source_rewritten_after_the_commit_is_not_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, contents = setup(tmp_path, n=1)
    filer = Filer(cfg, open_register(cfg.database_url))
    monkeypatch.setattr(Filer, "_remove_source", lambda *a, **k: (_ for _ in ()).throw(Crash()))
    with pytest.raises(Crash):
        filer.file_batch(ready(cfg, list(contents)))
    monkeypatch.undo()
    (cfg.drop / "masuk" / "s0.pdf").write_bytes(b"a different letter under the same name")
    assert Filer(cfg, open_register(cfg.database_url)).reconcile() == []
    assert (cfg.drop / "masuk" / "s0.pdf").read_bytes() == b"a different letter under the same name"


def test_a_file_changed_between_settle_and_copy_is_not_taken(tmp_path: Path) -> None:
    cfg, contents = setup(tmp_path, n=1)
    items = ready(cfg, list(contents))
    with open(cfg.drop / "masuk" / "s0.pdf", "ab") as f:
        f.write(b"page 2")
    (result,) = Filer(cfg, open_register(cfg.database_url)).file_batch(items)
    assert result.outcome is Outcome.CHANGED
    assert list(cfg.archive.rglob("*.pdf")) == [] and not list(cfg.archive.rglob(durable.TEMP_PREFIX + "*"))


def test_exempt_crash_after_commit_is_finished_without_a_recorded_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from naskahd import age

    officer = age.generate_identity()
    cfg = config.load(str(write_config(tmp_path / "t", recipients=[str(officer.recipient())])))
    letter = b"exempt letter " + os.urandom(3000)
    (cfg.drop / "dikecualikan" / "rahasia.pdf").write_bytes(letter)
    item = Ready("dikecualikan/rahasia.pdf", "exempt", Signature.of(os.lstat(cfg.drop / "dikecualikan" / "rahasia.pdf")))
    filer = Filer(cfg, open_register(cfg.database_url), [officer.recipient()])
    monkeypatch.setattr(durable, "rename_noreplace", lambda src, dst: (_ for _ in ()).throw(Crash()))
    with pytest.raises(Crash):
        filer.file_batch([item])
    monkeypatch.undo()
    for temp in cfg.archive.rglob(durable.TEMP_PREFIX + "*"):
        temp.unlink()
    assert Filer(cfg, open_register(cfg.database_url), [officer.recipient()]).reconcile() == []
    with open_register(cfg.database_url)() as s:
        (doc,) = s.scalars(select(Document)).all()
    # The path is recorded only as a tag keyed by the host secret (filing/keys.py): no name,
    # and no plain SHA-256 of the letter either.
    assert doc.state is DocumentState.FILED and doc.source_relpath.startswith(b"#") and b"rahasia" not in doc.source_relpath
    assert doc.sha256 != hashlib.sha256(letter).hexdigest()
    stored = (cfg.archive / doc.archive_path).read_bytes()
    assert hashlib.sha256(stored).hexdigest() == doc.ciphertext_sha256
    assert age.decrypt_bytes(stored, [officer]) == letter
    assert not (cfg.drop / "dikecualikan" / "rahasia.pdf").exists()


def test_the_same_content_twice_in_one_batch_is_registered_once(tmp_path: Path) -> None:
    cfg, contents = setup(tmp_path, n=2)
    (cfg.drop / "masuk" / "copy.pdf").write_bytes(contents["masuk/s0.pdf"])
    results = Filer(cfg, open_register(cfg.database_url)).file_batch(ready(cfg, [*contents, "masuk/copy.pdf"]))
    assert sorted(r.outcome.value for r in results) == ["duplicate", "filed", "filed"]
    dup = next(r for r in results if r.outcome is Outcome.DUPLICATE)
    assert dup.agenda == next(r.agenda for r in results if r.item.relpath == "masuk/s0.pdf")
    assert (cfg.drop / "duplikat" / "copy.pdf").read_bytes() == contents["masuk/s0.pdf"]
    check_invariants(cfg, contents)


def test_an_fsync_failure_at_the_end_of_step_1_fails_only_that_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Copies are fsynced together after the batch is written: one that cannot be made
    durable (EIO) is not registered, leaves no temp file, and is retried; the rest are filed."""
    import errno

    cfg, contents = setup(tmp_path, n=3)
    real_sync = durable.Staged.sync
    calls: list[int] = []

    def sync(self: durable.Staged, *, folder: bool = True) -> None:
        calls.append(1)
        if len(calls) == 2:
            self.file.close()
            raise OSError(errno.EIO, "Input/output error")
        real_sync(self, folder=folder)

    monkeypatch.setattr(durable.Staged, "sync", sync)
    filer = Filer(cfg, open_register(cfg.database_url))
    results = filer.file_batch(ready(cfg, list(contents)))
    filer.close()
    assert sorted(r.outcome.value for r in results) == ["failed", "filed", "filed"]
    failed = next(r for r in results if r.outcome is Outcome.FAILED)
    assert "Input/output error" in failed.detail
    assert (cfg.drop / failed.item.relpath).read_bytes() == contents[failed.item.relpath]
    docs = check_invariants(cfg, contents)
    assert len(docs) == 2


def test_a_bug_in_one_store_registers_nothing_and_leaves_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, contents = setup(tmp_path, n=4)
    filer = Filer(cfg, open_register(cfg.database_url))
    real_store = filer.store.store

    def store(item: Ready):  # noqa: ANN202
        if item.relpath.endswith("s2.pdf"):
            raise RuntimeError("a bug")
        return real_store(item)

    monkeypatch.setattr(filer.store, "store", store)
    with pytest.raises(RuntimeError, match="a bug"):
        filer.file_batch(ready(cfg, list(contents)))
    filer.close()
    assert check_invariants(cfg, contents) == []


def test_batches_begun_before_the_previous_one_is_finished(tmp_path: Path) -> None:
    """The daemon's order: begin N+1, then finish N. Gapless numbers, all filed once."""
    cfg, contents = setup(tmp_path, n=9)
    rels = list(contents)
    filer = Filer(cfg, open_register(cfg.database_url))
    first = filer.begin(ready(cfg, rels[:4]))
    second = filer.begin(ready(cfg, rels[4:]))
    results = filer.finish(first) + filer.finish(second)
    filer.close()
    assert [r.outcome for r in results] == [Outcome.FILED] * 9
    assert len(check_invariants(cfg, contents)) == 9


def test_a_failed_rename_leaves_that_row_staged_for_reconcile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Step 3 fails for one document: its row stays STAGED with its
    agenda number, its source stays; the others are filed; reconcile() finishes it."""
    import errno

    cfg, contents = setup(tmp_path, n=3)
    real = durable.rename_noreplace
    calls: list[int] = []

    def rename(src, dst):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.EIO, "Input/output error")
        return real(src, dst)

    monkeypatch.setattr(durable, "rename_noreplace", rename)
    filer = Filer(cfg, open_register(cfg.database_url))
    results = filer.file_batch(ready(cfg, list(contents)))
    filer.close()
    monkeypatch.undo()
    assert sorted(r.outcome.value for r in results) == ["failed", "filed", "filed"]
    failed = next(r for r in results if r.outcome is Outcome.FAILED)
    assert failed.agenda is not None and "Input/output error" in failed.detail
    assert (cfg.drop / failed.item.relpath).exists()
    with open_register(cfg.database_url)() as s:
        states = sorted(d.state.value for d in s.scalars(select(Document)))
    assert states == ["filed", "filed", "staged"]
    assert Filer(cfg, open_register(cfg.database_url)).reconcile() == []
    assert len(check_invariants(cfg, contents)) == 3
