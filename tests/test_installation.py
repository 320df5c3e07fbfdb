"""Issue 15 items 4 and 6: a missing disk is never replaced by an empty folder; two daemons
never share a drop folder or an archive."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from naskahd import config, installation

from conftest import Daemon, naskahd_cmd, write_config


def run_refused(cfg: Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``naskahd run`` that must refuse at once (it would otherwise run until killed)."""
    return subprocess.run(naskahd_cmd("--config", str(cfg), "run", "--log-format", "json"), capture_output=True,
                          text=True, timeout=60, cwd=cwd, env={**os.environ, "LANG": "C.UTF-8"})


def filed_tree(daemon_factory, tmp_path: Path) -> Daemon:  # type: ignore[no-untyped-def]
    d: Daemon = daemon_factory()
    (d.drop / "masuk" / "a.pdf").write_bytes(os.urandom(3000))
    d.wait_event("document.registered")
    d.stop()
    return d


def test_an_archive_disk_that_is_not_mounted_is_refused(daemon_factory, tmp_path: Path) -> None:
    d = filed_tree(daemon_factory, tmp_path)
    shutil.rmtree(d.archive)
    d.archive.mkdir()  # the empty mount point the disk would hide
    (d.drop / "masuk" / "b.pdf").write_bytes(b"letter b")
    out = run_refused(d.config)
    assert out.returncode == 1, out.stderr
    assert str(d.archive) in out.stderr and "mount" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
    assert list(d.archive.iterdir()) == []  # nothing filed onto the root filesystem
    assert (d.drop / "masuk" / "b.pdf").exists()


def test_a_missing_archive_folder_is_not_created(daemon_factory, tmp_path: Path) -> None:
    d = filed_tree(daemon_factory, tmp_path)
    shutil.rmtree(d.archive)
    out = run_refused(d.config)
    assert out.returncode == 1 and "does not exist" in out.stderr and "mount" in out.stderr
    assert not d.archive.exists()


def test_a_state_disk_that_is_not_mounted_never_issues_numbers_again(daemon_factory, tmp_path: Path) -> None:
    d = filed_tree(daemon_factory, tmp_path)
    shutil.rmtree(d.state)
    d.state.mkdir()
    out = run_refused(d.config)
    assert out.returncode == 1 and str(d.state) in out.stderr
    assert list(d.state.iterdir()) == []  # no fresh register


def test_a_register_missing_while_the_archive_has_documents_is_refused(daemon_factory, tmp_path: Path) -> None:
    d = filed_tree(daemon_factory, tmp_path)
    for p in d.state.glob("register.sqlite3*"):
        p.unlink()
    out = run_refused(d.config)
    assert out.returncode == 1 and "register" in out.stderr and "restore" in out.stderr
    assert not (d.state / "register.sqlite3").exists()


def test_a_register_of_another_installation_is_refused(daemon_factory, tmp_path: Path) -> None:
    d = filed_tree(daemon_factory, tmp_path)
    other = daemon_factory(write_config(tmp_path / "other"), start=False)
    other.start()
    other.stop()
    for p in d.state.glob("register.sqlite3*"):
        p.unlink()
    shutil.copy(other.state / "register.sqlite3", d.state / "register.sqlite3")
    out = run_refused(d.config)
    assert out.returncode == 1 and "another installation" in out.stderr


def test_status_says_what_is_wrong_with_a_root(daemon_factory, tmp_path: Path) -> None:
    d = filed_tree(daemon_factory, tmp_path)
    shutil.rmtree(d.archive)
    out = d.cli("status")
    assert out.returncode != 0 and str(d.archive) in out.stdout + out.stderr
    assert "Traceback" not in out.stderr


def test_init_marks_every_root_with_one_installation_id(tmp_path: Path) -> None:
    root = tmp_path / "inst"
    out = subprocess.run(naskahd_cmd("init", "--root", str(root)), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    cfg = config.load(str(root / "naskahd.toml"))
    ids = {installation.read_marker(p)["installation"] for p in (cfg.drop, cfg.archive, cfg.state)}  # type: ignore[index]
    assert len(ids) == 1
    assert installation.open_checked(cfg, create=False) is not None


def test_the_embedded_default_initialises_its_own_root_the_first_time(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NASKAHD_CONFIG"}
    if Path("/etc/naskahd/naskahd.toml").exists():
        pytest.skip("this machine has a system configuration, which takes precedence")
    proc = subprocess.Popen(naskahd_cmd("run", "--log-format", "json"), cwd=tmp_path, env={**env, "LANG": "C.UTF-8"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        seen = ""
        for line in proc.stderr:
            seen += line
            if "daemon.started" in line:
                break
        assert "installation.created" in seen
        assert installation.read_marker(tmp_path / "naskahd-data" / "archive") is not None
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_an_installation_from_before_markers_is_adopted(daemon_factory, tmp_path: Path) -> None:
    d = filed_tree(daemon_factory, tmp_path)
    for root in (d.drop, d.archive, d.state):
        (root / installation.MARKER).unlink()
    import sqlite3

    with sqlite3.connect(d.state / "register.sqlite3") as db:
        db.execute("DELETE FROM installation")
    d.start()
    d.wait_event("installation.adopted")
    (d.drop / "masuk" / "c.pdf").write_bytes(os.urandom(3000))
    d.wait_event("document.registered", count=1, path="masuk/c.pdf")
    assert len(d.documents()) == 2


def test_item6_a_second_daemon_on_the_same_drop_folder_is_refused(daemon_factory, tmp_path: Path) -> None:
    first: Daemon = daemon_factory()
    second_cfg = tmp_path / "naskahd" / "second.toml"  # paths are relative to the file
    text = first.config.read_text().replace('state = "state"', 'state = "state2"')
    second_cfg.write_text(text)
    (tmp_path / "naskahd" / "state2").mkdir()
    installation.write_markers(config.load(str(second_cfg)), installation.read_marker(first.drop)["installation"])  # type: ignore[index]
    out = run_refused(second_cfg)
    assert out.returncode == 1, out.stderr
    assert str(first.proc.pid) in out.stderr and str(first.config) in out.stderr  # type: ignore[union-attr]
