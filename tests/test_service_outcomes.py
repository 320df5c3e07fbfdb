"""The daemon's handling of a batch's outcomes (service.Daemon._after), on pure state."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

from naskahd import config
from naskahd.filing import Outcome, Ready, Result
from naskahd.service import Daemon
from naskahd.settle import Signature

from conftest import write_config


def test_a_rewrite_that_arrived_during_the_batch_is_looked_at_again(tmp_path: Path) -> None:
    """Filed; meanwhile a new scan took the same name. Its event was folded into the
    candidate that is now forgotten: the daemon must look at it now, not at the next
    periodic scan (issue 15, smaller items)."""
    cfg = config.load(str(write_config(tmp_path / "t")))
    d = Daemon(cfg)
    d.filer = SimpleNamespace(discard_early=lambda rel: None)  # type: ignore[assignment]
    rel = "masuk/scan.pdf"
    path = cfg.drop / rel
    path.write_bytes(b"first letter")
    taken = Signature.of(os.lstat(path))
    d.settler.touch(rel, taken, 0.0)
    os.unlink(path)  # filed and removed ...
    path.write_bytes(b"a second letter, longer")  # ... and a new one arrived under its name
    d._after(Result(Ready(rel, "inbound", taken), Outcome.FILED, agenda="0001/M/2026"))
    cand = d.settler.candidates.get(rel)
    assert cand is not None and cand.signature == Signature.of(os.lstat(path))


def test_a_filed_file_that_is_gone_is_forgotten(tmp_path: Path) -> None:
    cfg = config.load(str(write_config(tmp_path / "t")))
    d = Daemon(cfg)
    d.filer = SimpleNamespace(discard_early=lambda rel: None)  # type: ignore[assignment]
    rel = "masuk/scan.pdf"
    d.settler.touch(rel, Signature(1, 1, 1, 1), 0.0)
    d._after(Result(Ready(rel, "inbound", Signature(1, 1, 1, 1)), Outcome.FILED))
    assert rel not in d.settler.candidates


def test_the_status_summary_names_the_newest_verified_backup(tmp_path: Path) -> None:
    import datetime as dt

    from naskahd.register import Drive, open_register
    from naskahd.summary import Summary

    cfg = config.load(str(write_config(tmp_path / "t")))
    sessions = open_register(cfg.database_url)
    daemon = SimpleNamespace(config=cfg, filer=SimpleNamespace(sessions=sessions), settler=[], last_backup=None)
    assert Summary().line(daemon).endswith("last backup -")  # type: ignore[arg-type]
    with sessions.begin() as s:
        s.add(Drive(name="safe1", uuid="u1", token_id="t", registered_at=dt.datetime.now(dt.UTC),
                    last_verified_at=dt.datetime(2026, 12, 1, 3, 4, tzinfo=dt.UTC)))
    assert Summary().line(daemon).endswith("last backup 2026-12-01 10:04")  # type: ignore[arg-type]  (Asia/Jakarta)


def test_every_setting_a_reload_can_change_has_a_name() -> None:
    """A reload names what changed (reload.KEYS); a setting missing there stopped the
    daemon's loop with a KeyError when it changed (office.place, backup.max_age_days, ...)."""
    import dataclasses

    from naskahd import reload
    from naskahd.config import Config

    fields = {f.name for f in dataclasses.fields(Config)}
    assert fields - set(reload._NOT_SETTINGS) <= set(reload.KEYS), fields - set(reload._NOT_SETTINGS) - set(reload.KEYS)


def test_a_completeness_reason_is_stored_once_and_shown_in_each_readers_language() -> None:
    """Issue 18: reasons are stored as a template with its values, not as text in the
    daemon's language; the completeness check's reasons (issue 16) too."""
    from naskahd import i18n, reasons
    from naskahd.complete import check_fd  # noqa: F401  (the package that marks these templates)
    from naskahd.complete.base import Reason

    why = Reason.of("object {num} lies past the end of the file (not written yet)", num=4096)
    stored = reasons.encode_template(why.template, **dict(why.params))
    nested = reasons.encode("still_incomplete", seconds=600, reason=reasons.nested(stored))
    try:
        i18n.setup("en")
        english, inner_en = reasons.render(nested), reasons.render(stored)
        i18n.setup("id")
        indonesian, inner_id = reasons.render(nested), reasons.render(stored)
    finally:
        i18n.setup("en")
    assert inner_en == "object 4096 lies past the end of the file (not written yet)"
    assert "4096" in inner_id and inner_id != inner_en  # the completeness reason itself, in Indonesian
    assert inner_en in english and inner_id in indonesian


def test_a_drop_folder_made_again_that_cannot_be_watched_is_adopted_again_later(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Issue 22: watching the drop folder made again fails (it went again, or no inotify
    watch is left): the daemon's loop goes on, and the next check adopts the folder again."""
    import shutil

    from naskahd import watch
    from naskahd.log import get_logger
    from naskahd.rootwatch import DropWatch

    cfg = config.load(str(write_config(tmp_path / "t")))
    d = Daemon(cfg)
    d.drop_watch = DropWatch(cfg, get_logger("test"), "id-of-the-test")
    d.watcher = SimpleNamespace(stop=lambda: None)  # type: ignore[assignment]
    shutil.rmtree(cfg.drop)
    cfg.drop.mkdir()

    class NoWatch:
        def __init__(self, *_args: object) -> None:
            pass

        def start(self) -> None:
            raise OSError(28, "inotify watch limit reached")

        def stop(self) -> None:
            pass

    monkeypatch.setattr(watch, "Watcher", NoWatch)
    assert d.drop_watch.check()
    d._watch_again()  # must not raise
    d.drop_watch._checked = 0.0
    assert d.drop_watch.check(), "adopted again at the next check"
    d.drop_watch.close()
