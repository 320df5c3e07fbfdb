"""Interoperability with the real ``age`` CLI, both ways.

age reads passphrases only from a terminal, so passphrase prompts are answered through a
pseudo-terminal (``pty``). Without an ``age`` binary these tests skip, except under
CI=true, where that is a failure.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest_age import run_in_pty

from naskahd import age

pytestmark = pytest.mark.system

SIZES = [0, 1, 65535, 65536, 65537, 10 * 1024 * 1024]


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        reason = f"the {tool} command is not installed"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="module")
def age_bin() -> str:
    return _require("age")


@pytest.fixture(scope="module")
def keypair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A plain identity file from age-keygen, and its recipient."""
    folder = tmp_path_factory.mktemp("keys")
    key = folder / "age.key"
    subprocess.run([_require("age-keygen"), "-o", str(key)], check=True, capture_output=True)
    recipient = subprocess.run(["age-keygen", "-y", str(key)], check=True, capture_output=True, text=True)
    return key, recipient.stdout.strip()


def naskahd(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, LANG="C.UTF-8", LANGUAGE="en")
    return subprocess.run([sys.executable, "-m", "naskahd", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("size", SIZES, ids=[str(s) for s in SIZES])
def test_naskahd_files_open_with_age(size: int, age_bin: str, keypair: tuple[Path, str], tmp_path: Path) -> None:
    key, recipient = keypair
    plain = tmp_path / "doc.bin"
    plain.write_bytes(os.urandom(size))
    done = naskahd("encrypt", plain, "-r", recipient, "-r", str(age.generate_identity().recipient()))
    assert done.returncode == 0, done.stderr
    # To stdout: age 1.1 creates no -o file for an empty plaintext.
    res = subprocess.run([age_bin, "-d", "-i", str(key), str(tmp_path / "doc.bin.age")], capture_output=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout == plain.read_bytes()


@pytest.mark.parametrize("size", [0, 1, 65536, 16 * 65536 + 1, 5 * 1024 * 1024 + 3],
                         ids=["0", "1", "65536", "batch+1", "5MiB+3"])
def test_encrypt_stream_without_digests_opens_with_age(
    size: int, age_bin: str, keypair: tuple[Path, str], tmp_path: Path
) -> None:
    key, recipient = keypair
    data = os.urandom(size)
    enc = tmp_path / "doc.age"
    with open(enc, "xb", buffering=0) as dst:
        sealed = age.encrypt_stream(io.BytesIO(data), dst, [age.parse_recipient(recipient)], digests=False)
    assert sealed.plaintext_sha256 is None and sealed.ciphertext_sha256 is None
    assert sealed.ciphertext_size == enc.stat().st_size
    res = subprocess.run([age_bin, "-d", "-i", str(key), str(enc)], capture_output=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout == data
    with open(enc, "rb") as f, pytest.raises(ValueError, match="digests"):
        age.verify_sealed(f, sealed)


@pytest.mark.parametrize("armor", [False, True], ids=["binary", "armored"])
@pytest.mark.parametrize("size", [0, 1, 65536, 200_000])
def test_age_recipient_files_open_with_naskahd(
    size: int, armor: bool, age_bin: str, keypair: tuple[Path, str], tmp_path: Path
) -> None:
    key, recipient = keypair
    plain = tmp_path / "doc.bin"
    plain.write_bytes(os.urandom(size))
    enc = tmp_path / "doc.bin.age"
    subprocess.run([age_bin, *(["-a"] if armor else []), "-r", recipient, "-o", str(enc), str(plain)], check=True)
    if armor:
        assert enc.read_bytes().startswith(b"-----BEGIN AGE ENCRYPTED FILE-----")
    done = naskahd("decrypt", enc, "-i", key, "-o", tmp_path / "out.bin")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out.bin").read_bytes() == plain.read_bytes()


@pytest.mark.parametrize("armor", [False, True], ids=["binary", "armored"])
def test_age_passphrase_files_open_with_naskahd(armor: bool, age_bin: str, tmp_path: Path) -> None:
    plain = tmp_path / "doc.bin"
    plain.write_bytes(os.urandom(100_000))
    enc = tmp_path / "doc.bin.age"
    code, out = run_in_pty([age_bin, "-p", *(["-a"] if armor else []), "-o", str(enc), str(plain)],
                           [b"tiga kata rahasia", b"tiga kata rahasia"])
    assert code == 0, out
    blob = enc.read_bytes()
    if armor:
        assert blob.startswith(b"-----BEGIN AGE ENCRYPTED FILE-----\n")
    else:
        assert b"\n-> scrypt " in blob
    pw = tmp_path / "pw"
    pw.write_text("tiga kata rahasia\n")
    done = naskahd("decrypt", enc, "--passphrase-file", pw, "-o", tmp_path / "a.bin")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "a.bin").read_bytes() == plain.read_bytes()
    # And at naskahd's own prompt, on a terminal.
    code, out = run_in_pty([sys.executable, "-m", "naskahd", "decrypt", str(enc), "-o", str(tmp_path / "b.bin")],
                           [b"tiga kata rahasia"])
    assert code == 0, out
    assert (tmp_path / "b.bin").read_bytes() == plain.read_bytes()


def test_naskahd_keygen_identity_opens_with_age(age_bin: str, tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("kunci arsip kantor\n")
    key = tmp_path / "office.key"
    done = naskahd("keygen", "-o", key, "--passphrase-file", pw)
    assert done.returncode == 0, done.stderr
    recipient = done.stdout.strip()
    # naskahd's own parser opens it.
    ids = age.parse_identity_file(key.read_bytes(), lambda: b"kunci arsip kantor")
    assert str(ids[0].recipient()) == recipient
    # age encrypts to the recipient, and opens with the protected identity on a terminal.
    plain = tmp_path / "doc.bin"
    plain.write_bytes(os.urandom(70_000))
    enc = tmp_path / "doc.bin.age"
    subprocess.run([age_bin, "-r", recipient, "-o", str(enc), str(plain)], check=True)
    out = tmp_path / "out.bin"
    code, text = run_in_pty([age_bin, "-d", "-i", str(key), "-o", str(out), str(enc)], [b"kunci arsip kantor"])
    assert code == 0, text
    assert out.read_bytes() == plain.read_bytes()
    # A wrong passphrase is refused by age too.
    out.unlink()
    code, text = run_in_pty([age_bin, "-d", "-i", str(key), "-o", str(out), str(enc)], [b"salah"])
    assert code != 0
    # The keygen identity at naskahd's prompt (no --passphrase-file), on a terminal.
    code, text = run_in_pty([sys.executable, "-m", "naskahd", "decrypt", str(enc), "-i", str(key),
                             "-o", str(out)], [b"kunci arsip kantor"])
    assert code == 0, text
    assert out.read_bytes() == plain.read_bytes()
