"""A new operator's first hour (issue 18): every command, used wrongly, answers with a
message and its exit code; never a traceback, never English in Indonesian, nothing half-made.

Each case runs the real CLI with no terminal (stdin=/dev/null), in Indonesian and in
English; ``$NASKAHD_I18N_MISSING`` collects every message the Indonesian catalog lacks.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import naskahd_cmd, require_root, require_tool, write_config

VALID = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
SSH = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC0o5sN8m6CfY9iNHiZbJ4d2zD1y2dBz8Qmvx5aNdYwq kasi@laptop"


def run(*args: str | Path, lang: str = "id", cwd: Path | None = None, prefix: list[str] | None = None,
        env: dict[str, str] | None = None, missing: Path | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG", "NASKAHD_CONFIG")}
    clean["LANG"] = "id_ID.UTF-8" if lang == "id" else "C.UTF-8"
    if missing is not None:
        clean["NASKAHD_I18N_MISSING"] = str(missing)
    clean.update(env or {})
    argv = [*(prefix or []), *naskahd_cmd(*map(str, args))]
    return subprocess.run(argv, capture_output=True, text=True, env=clean, cwd=cwd, timeout=120,
                          stdin=subprocess.DEVNULL, start_new_session=True)  # no controlling terminal


def assert_clean(proc: subprocess.CompletedProcess[str], code: int | None = None) -> None:
    text = proc.stdout + proc.stderr
    assert "Traceback" not in text and "unexpected error" not in text and "kesalahan tak terduga" not in text, text
    if code is not None:
        assert proc.returncode == code, (proc.returncode, text)
    if proc.returncode != 0:
        assert proc.stderr.strip(), "a refusal says why"


ENGLISH_IN_INDONESIAN = ("usage:", "options:", "show this help", "error:", "must be of type", "the following arguments",
                         "invalid choice", "Permission denied", "No such file", "Read-only file system")


def assert_indonesian(proc: subprocess.CompletedProcess[str]) -> None:
    text = proc.stdout + proc.stderr
    for english in ENGLISH_IN_INDONESIAN:
        assert english not in text, f"English {english!r} in Indonesian output:\n{text}"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    cfg = write_config(tmp_path / "root")
    subprocess.run(naskahd_cmd("--config", str(cfg), "list"), check=False, capture_output=True)
    return tmp_path


def cases(tmp: Path) -> list[tuple[list[str | Path], int]]:
    cfg = tmp / "root" / "naskahd.toml"
    plain = tmp / "surat.pdf"
    plain.write_bytes(b"%PDF-1.4 a letter")
    notage = tmp / "x.age"
    notage.write_bytes(b"not an age file")
    afile = tmp / "a-file"
    afile.write_text("x")
    return [
        (["--lang", "fr", "status"], 2),
        (["status", "--lang", "xx"], 2),
        (["encrpyt"], 2),
        ([], 2),
        (["--config", cfg, "status", "--bogus"], 2),
        (["--config", cfg, "list", "--category", "rahasia"], 2),
        (["--config", cfg, "list", "--since", "kemarin"], 2),
        (["--config", cfg, "list", "--since", "2026-02-01", "--until", "2026-01-01"], 2),
        (["--config", tmp / "missing.toml", "status"], 78),
        (["--config", tmp / "missing.toml", "list"], 78),
        (["--config", tmp / "missing.toml", "run"], 78),
        (["--config", tmp, "status"], 78),  # a folder given as the configuration file
        (["--config", cfg, "list", "-i", tmp / "no-such.key"], 4),
        (["--config", cfg, "list", "-i", afile], 4),
        (["encrypt", plain, "-r", "age1bad"], 2),
        (["encrypt", plain, "-r", SSH], 2),
        (["encrypt", tmp / "absent.pdf", "-r", VALID], 1),
        (["encrypt", plain], 2),
        (["decrypt", notage, "-i", tmp / "no-such.key"], 4),
        (["decrypt", tmp / "absent.age", "-i", afile], 4),
        (["decrypt", notage, "-o", tmp / "out.pdf"], 4),
        (["decrypt", plain], 2),
        (["keygen"], 2),
        (["keygen", "-o", tmp / "k1"], 2),  # no terminal to ask the passphrase
        (["keygen", "-o", tmp / "no" / "such" / "k"], 1),
        (["keygen", "--recipient-of", tmp / "no-such.key"], 4),
        (["init"], 2),
        (["init", "--root", afile], 2),
        (["init", "--root", tmp / "new1", "-r", "age1notavalidkey"], 2),
        (["init", "--root", tmp / "new2", "-r", SSH], 2),
        (["init", "--root", tmp / "root"], 78),  # already there
    ]


@pytest.mark.parametrize("lang", ["id", "en"])
def test_every_command_used_wrongly_answers_without_a_traceback(home: Path, lang: str) -> None:
    missing = home / "missing-msgids.txt"
    for args, code in cases(home):
        proc = run(*args, lang=lang, missing=missing)
        assert_clean(proc, code)
        if lang == "id":
            assert_indonesian(proc)
    assert not (home / "new1").exists() and not (home / "new2").exists(), "init left something behind"
    assert not (home / "k1").exists()
    if lang == "id":
        lacking = missing.read_text(encoding="utf-8").splitlines() if missing.exists() else []
        assert not lacking, "shown to a person but not in the Indonesian catalog (make catalogs):\n  " + "\n  ".join(sorted(set(lacking)))


def test_decrypt_and_list_identity_without_a_terminal(tmp_path: Path) -> None:
    """A protected identity, no terminal, no --passphrase-file: EOFError used to escape."""
    pw = tmp_path / "pw"
    pw.write_text("kunci arsip kantor\n")
    key = tmp_path / "k.key"
    made = run("keygen", "-o", key, "--passphrase-file", pw)
    assert_clean(made, 0)
    recipient = made.stdout.strip()
    plain = tmp_path / "a.pdf"
    plain.write_bytes(b"letter")
    assert_clean(run("encrypt", plain, "-r", recipient), 0)
    for lang, words in (("id", "tidak ada terminal"), ("en", "no terminal")):
        out = run("decrypt", tmp_path / "a.pdf.age", "-i", key, "-o", tmp_path / f"out-{lang}", lang=lang)
        assert_clean(out, 2)
        assert words in out.stderr and "--passphrase-file" in out.stderr, out.stderr
        assert not (tmp_path / f"out-{lang}").exists()
        cfg = write_config(tmp_path / "root")
        listed = run("--config", cfg, "list", "-i", key, lang=lang)
        assert_clean(listed, 2)
        assert words in listed.stderr
        keygen = run("keygen", "-o", tmp_path / f"new-{lang}", lang=lang)
        assert_clean(keygen, 2)
        assert words in keygen.stderr and not (tmp_path / f"new-{lang}").exists()


def test_init_refuses_a_bad_recipient_before_writing_anything(tmp_path: Path) -> None:
    for lang, words in (("id", "bukan kunci publik age yang sah"), ("en", "not a valid age public key")):
        root = tmp_path / f"kantor-{lang}"
        out = run("init", "--root", root, "-r", "age1notavalidkey", lang=lang)
        assert_clean(out, 2)
        assert words in out.stderr and "age1notavalidkey" in out.stderr, out.stderr
        assert "naskahd.toml" not in out.stderr  # no error "in" a file that was never written
        assert not root.exists()
    ssh = run("init", "--root", tmp_path / "k", "-r", SSH, lang="en")
    assert "this is an SSH key, naskahd needs an age public key (age1…)" in ssh.stderr
    assert "ini kunci SSH, naskahd memerlukan kunci publik age (age1…)" in run(
        "init", "--root", tmp_path / "k", "-r", SSH).stderr


def test_init_on_a_file_and_without_permission(tmp_path: Path) -> None:
    afile = tmp_path / "file"
    afile.write_text("x")
    out = run("init", "--root", afile / "sub", lang="en")
    assert_clean(out, 2)
    assert "is a file, not a folder" in out.stderr
    require_root()
    setpriv = require_tool("setpriv")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]
    for lang, words in (("id", "izin ditolak untuk pengguna root"), ("en", "permission denied for the user root")):
        out = run("init", "--root", locked / "kantor", lang=lang, prefix=prefix)
        assert_clean(out, 1)
        assert words in out.stderr and str(locked) in out.stderr and "chmod" in out.stderr, out.stderr
        assert not (locked / "kantor").exists()


def test_init_prints_the_command_as_it_will_work(tmp_path: Path) -> None:
    out = run("init", "--root", tmp_path / "kantor", lang="en", cwd=tmp_path)
    assert_clean(out, 0)
    line = next(x for x in out.stdout.splitlines() if x.startswith("Start the daemon with: "))
    command = line.split(": ", 1)[1]
    import shlex

    argv = shlex.split(command)
    argv[argv.index("run")] = "status"
    check = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=60,
                           env={**os.environ, "LANG": "C.UTF-8"})
    assert check.returncode == 3 and "NOT running" in check.stdout, (command, check.stdout, check.stderr)


def test_global_options_after_the_command(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "root")
    before = run("--config", cfg, "status", "--json", lang="en")
    after = run("status", "--json", "--config", cfg, "--lang", "id", lang="en")
    assert before.returncode == after.returncode == 3, after.stderr
    words = run("status", "--config", cfg, "--lang", "id", lang="en")
    assert "TIDAK berjalan" in words.stdout, words.stdout
    # Given before the command, --lang is not undone by the command's own default.
    assert "TIDAK berjalan" in run("--lang", "id", "status", "--config", cfg, lang="en").stdout


def test_unknown_language_is_refused_with_the_list(tmp_path: Path) -> None:
    for lang, words in (("en", "unknown language 'fr'; known languages: id, en"),
                        ("id", "bahasa 'fr' tidak dikenal; bahasa yang dikenal: id, en")):
        out = run("--lang", "fr", "status", lang=lang)
        assert_clean(out, 2)
        assert words in out.stderr, out.stderr


def test_argparse_text_in_indonesian() -> None:
    out = run("list", "--help")
    assert out.returncode == 0
    assert "penggunaan: naskahd list" in out.stdout and "pilihan:" in out.stdout, out.stdout
    assert "tampilkan bantuan ini lalu keluar" in out.stdout
    bad = run("list", "--category", "rahasia")
    assert "penggunaan:" in bad.stderr and "naskahd list: kesalahan: argumen --category" in bad.stderr, bad.stderr
    assert "masuk, keluar, dikecualikan" in bad.stderr
    english = run("list", "--help", lang="en")
    assert "usage: naskahd list" in english.stdout and "options:" in english.stdout
