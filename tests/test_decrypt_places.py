"""Issue 15 item 7: `naskahd decrypt` never writes plaintext into the archive, the state or
drop folder, a folder carrying naskahd's root marker, or a backup drive.

Real subprocesses; each refusal is exit code 2 (bad argument), names the folder and what
to do, and leaves nothing behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import all_files, write_config
from naskahd import age
from naskahd.errors import EXIT_USAGE
from naskahd.places import MARKER_NAME, inside_protected

PLAIN = b"%PDF-1.7\n" + os.urandom(70_000)


def naskahd(*args: str | Path, cwd: Path, lang: str = "en") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "NASKAHD_CONFIG"}
    env.update(LANG="C.UTF-8", LANGUAGE=lang)
    return subprocess.run([sys.executable, "-m", "naskahd", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120, stdin=subprocess.DEVNULL)


@pytest.fixture()
def key(tmp_path: Path) -> tuple[Path, age.X25519Identity]:
    identity = age.generate_identity()
    path = tmp_path / "officer.key"
    path.write_text(f"{identity}\n")
    path.chmod(0o600)
    return path, identity


def sealed(folder: Path, identity: age.X25519Identity, name: str = "0007-K-2026.pdf.age") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(age.encrypt_bytes(PLAIN, [identity.recipient()]))
    return path


def files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in all_files(folder))


def assert_refused(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == EXIT_USAGE, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    for word in words:
        assert word in done.stderr, done.stderr
    assert "-o FILE or --output-dir DIR" in done.stderr, done.stderr


def test_default_output_is_the_current_folder_not_beside_the_age_file(tmp_path: Path, key) -> None:
    path, identity = key
    enc = sealed(tmp_path / "elsewhere", identity)
    work = tmp_path / "work"
    work.mkdir()
    done = naskahd("decrypt", enc, "-i", path, cwd=work)
    assert done.returncode == 0, done.stderr
    assert (work / "0007-K-2026.pdf").read_bytes() == PLAIN
    assert not (enc.parent / "0007-K-2026.pdf").exists()


def test_configured_archive_state_and_drop_are_refused(tmp_path: Path, key) -> None:
    path, identity = key
    cfg = write_config(tmp_path / "naskahd")
    root = cfg.parent
    enc = sealed(root / "archive" / "dikecualikan" / "2026", identity)
    before = files(root)
    # The officer went into the archive to decrypt: the default (current folder) is refused.
    done = naskahd("--config", cfg, "decrypt", enc, "-i", path, cwd=enc.parent)
    assert_refused(done, str(root / "archive"), "change to a folder of your own")
    for output, folder in ((["-o", root / "archive" / "x.pdf"], root / "archive"),
                           (["--output-dir", root / "state"], root / "state"),
                           (["-o", root / "drop" / "masuk" / "x.pdf"], root / "drop"),
                           (["--output-dir", root / "archive"], root / "archive")):
        done = naskahd("--config", cfg, "decrypt", enc, "-i", path, *output, cwd=tmp_path)
        assert_refused(done, str(folder), "choose a folder of your own")
    assert files(root) == before
    # Outside them it works.
    done = naskahd("--config", cfg, "decrypt", enc, "-i", path, "-o", tmp_path / "mine.pdf", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "mine.pdf").read_bytes() == PLAIN


def test_a_symlink_into_the_archive_is_seen_through(tmp_path: Path, key) -> None:
    path, identity = key
    cfg = write_config(tmp_path / "naskahd")
    enc = sealed(tmp_path / "in", identity)
    (tmp_path / "shortcut").symlink_to(cfg.parent / "archive")
    done = naskahd("--config", cfg, "decrypt", enc, "-i", path, "--output-dir", tmp_path / "shortcut", cwd=tmp_path)
    assert_refused(done, str(cfg.parent / "archive"))
    assert files(cfg.parent / "archive") == []


def test_a_folder_with_the_root_marker_is_refused_without_a_configuration(tmp_path: Path, key) -> None:
    path, identity = key
    other = tmp_path / "other-office" / "archive"
    (other / "masuk").mkdir(parents=True)
    (other / MARKER_NAME).write_text("installation = test\n")
    enc = sealed(tmp_path / "in", identity)
    done = naskahd("decrypt", enc, "-i", path, "-o", other / "masuk" / "x.pdf", cwd=tmp_path)
    assert_refused(done, str(other), MARKER_NAME)
    done = naskahd("decrypt", enc, "-i", path, cwd=other / "masuk")
    assert_refused(done, str(other), "change to a folder of your own")
    assert [p.name for p in other.rglob("*") if p.is_file()] == [MARKER_NAME]


def test_a_backup_drive_is_refused(tmp_path: Path, key) -> None:
    path, identity = key
    drive = tmp_path / "media" / "BACKUP1"
    (drive / "naskah" / ".naskahd").mkdir(parents=True)
    (drive / "naskah" / "dikecualikan").mkdir()
    (drive / "lain").mkdir()
    enc = sealed(drive / "naskah" / "dikecualikan", identity)
    done = naskahd("decrypt", enc, "-i", path, cwd=enc.parent)
    assert_refused(done, str(drive / "naskah"))
    done = naskahd("decrypt", enc, "-i", path, "--output-dir", drive / "lain", cwd=tmp_path)
    assert_refused(done, str(drive))
    assert not (drive / "lain" / "0007-K-2026.pdf").exists()
    assert not (drive / "naskah" / "dikecualikan" / "0007-K-2026.pdf").exists()


def test_the_refusal_speaks_indonesian(tmp_path: Path, key) -> None:
    path, identity = key
    cfg = write_config(tmp_path / "naskahd")
    enc = sealed(cfg.parent / "archive" / "dikecualikan", identity)
    done = naskahd("--lang", "id", "--config", cfg, "decrypt", enc, "-i", path, cwd=enc.parent)
    assert done.returncode == EXIT_USAGE, done.stderr
    assert "arsip" in done.stderr and "menolak" in done.stderr, done.stderr


def test_inside_protected_is_none_for_an_ordinary_folder(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "naskahd")
    from naskahd import config

    loaded = config.load(str(cfg))
    assert inside_protected(tmp_path / "home" / "x.pdf", loaded) is None
    assert inside_protected(cfg.parent / "archive" / "a" / "b.pdf", loaded) is not None
    # A sibling whose name only starts like the archive's is not inside it.
    assert inside_protected(cfg.parent / "archive2" / "b.pdf", loaded) is None
