"""``naskahd keygen / encrypt / decrypt`` as a user runs them: real subprocesses.

The bad-input list: each failure is a clear message naming the file and the problem,
exit code 4 (EXIT_CRYPTO), and no output file (or temp file) left behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from naskahd import age
from naskahd.durable import TEMP_PREFIX
from naskahd.errors import EXIT_CRYPTO, EXIT_USAGE


def naskahd(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, LANG="C.UTF-8", LANGUAGE="en")
    return subprocess.run(
        [sys.executable, "-m", "naskahd", *map(str, args)],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=120, stdin=subprocess.DEVNULL,
    )


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(TEMP_PREFIX))


@pytest.fixture()
def setup(tmp_path: Path) -> dict[str, Path | str]:
    """A passphrase-protected identity from `naskahd keygen`, and a 3-chunk file for it."""
    pw = tmp_path / "pw"
    pw.write_bytes(b"correct horse battery\n")
    key = tmp_path / "id.key"
    done = naskahd("keygen", "-o", key, "--passphrase-file", pw)
    assert done.returncode == 0, done.stderr
    recipient = done.stdout.strip()
    plain = tmp_path / "letter.pdf"
    plain.write_bytes(os.urandom(3 * 65536 + 123))
    done = naskahd("encrypt", plain, "-r", recipient)
    assert done.returncode == 0, done.stderr
    return {"dir": tmp_path, "pw": pw, "key": key, "recipient": recipient, "plain": plain,
            "enc": tmp_path / "letter.pdf.age"}


def assert_refused(done: subprocess.CompletedProcess[str], name: str, *words: str) -> None:
    assert done.returncode == EXIT_CRYPTO, (done.returncode, done.stderr)
    assert name in done.stderr, done.stderr
    for word in words:
        assert word in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_keygen_encrypt_decrypt_round_trip(setup: dict) -> None:
    d: Path = setup["dir"]
    key: Path = setup["key"]
    assert setup["recipient"].startswith("age1")
    assert key.stat().st_mode & 0o777 == 0o600
    assert key.read_bytes().startswith(b"-----BEGIN AGE ENCRYPTED FILE-----\n")
    assert b"AGE-SECRET-KEY" not in key.read_bytes()
    # The identity opens with naskahd's own parser.
    ids = age.parse_identity_file(key.read_bytes(), lambda: b"correct horse battery")
    assert str(ids[0].recipient()) == setup["recipient"]
    out = d / "out.pdf"
    done = naskahd("decrypt", setup["enc"], "-i", key, "--passphrase-file", setup["pw"], "-o", out)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == setup["plain"].read_bytes()
    assert out.stat().st_mode & 0o777 == 0o600
    assert leftovers(d) == []


def test_decrypt_default_name_and_output_dir(setup: dict, tmp_path: Path) -> None:
    d: Path = setup["dir"]
    setup["plain"].rename(d / "original.pdf")
    done = naskahd("decrypt", setup["enc"], "-i", setup["key"], "--passphrase-file", setup["pw"], cwd=d)
    assert done.returncode == 0, done.stderr
    assert (d / "letter.pdf").read_bytes() == (d / "original.pdf").read_bytes()
    outdir = tmp_path / "outdir"
    outdir.mkdir()
    done = naskahd("decrypt", setup["enc"], "-i", setup["key"], "--passphrase-file", setup["pw"],
                   "--output-dir", outdir)
    assert done.returncode == 0, done.stderr
    assert (outdir / "letter.pdf").read_bytes() == (d / "original.pdf").read_bytes()


def test_encrypt_several_files_to_several_recipients(tmp_path: Path) -> None:
    ids = [age.generate_identity() for _ in range(2)]
    files = []
    for n in (0, 1, 65536):
        f = tmp_path / f"f{n}.bin"
        f.write_bytes(os.urandom(n))
        files.append(f)
    outdir = tmp_path / "enc"
    outdir.mkdir()
    done = naskahd("encrypt", *files, "-r", ids[0].recipient(), "-r", ids[1].recipient(), "--output-dir", outdir)
    assert done.returncode == 0, done.stderr
    for f in files:
        blob = (outdir / (f.name + ".age")).read_bytes()
        for i in ids:
            assert age.decrypt_bytes(blob, [i]) == f.read_bytes()
    assert leftovers(outdir) == []


def test_plain_keygen_warns(tmp_path: Path) -> None:
    key = tmp_path / "plain.key"
    done = naskahd("keygen", "-o", key, "--plain")
    assert done.returncode == 0
    assert "warning" in done.stderr.lower() and "UNPROTECTED" in done.stderr
    ids = age.parse_identity_file(key.read_bytes())
    assert str(ids[0].recipient()) == done.stdout.strip()
    assert key.stat().st_mode & 0o777 == 0o600


def test_never_overwrites(setup: dict) -> None:
    d: Path = setup["dir"]
    before = setup["key"].read_bytes()
    done = naskahd("keygen", "-o", setup["key"], "--passphrase-file", setup["pw"])
    assert done.returncode != 0 and "already exists" in done.stderr
    assert setup["key"].read_bytes() == before
    enc_before = setup["enc"].read_bytes()
    done = naskahd("encrypt", setup["plain"], "-r", setup["recipient"])
    assert done.returncode != 0 and "already exists" in done.stderr
    assert setup["enc"].read_bytes() == enc_before
    done = naskahd("decrypt", setup["enc"], "-i", setup["key"], "--passphrase-file", setup["pw"],
                   "-o", setup["plain"])
    assert done.returncode != 0 and "already exists" in done.stderr
    assert leftovers(d) == []


def test_usage_errors(setup: dict) -> None:
    d: Path = setup["dir"]
    other = d / "other"
    other.write_bytes(b"x")
    done = naskahd("encrypt", setup["plain"], other, "-r", setup["recipient"], "-o", d / "x.age")
    assert done.returncode == EXIT_USAGE and "-o" in done.stderr
    done = naskahd("decrypt", other, "-i", setup["key"])
    assert done.returncode == EXIT_USAGE and ".age" in done.stderr
    done = naskahd("encrypt", setup["plain"], "-r", "age1notakey")
    # A bad -r is a bad argument (issue 18), not a decryption failure.
    assert done.returncode == EXIT_USAGE and "recipient 'age1notakey'" in done.stderr and "age1" in done.stderr
    done = naskahd("keygen", "-o", d / "new.key", "--plain", "--passphrase-file", setup["pw"])
    assert done.returncode == EXIT_USAGE and not (d / "new.key").exists()
    assert leftovers(d) == []


# --- the bad-input list -----------------------------------------------------------------


def test_wrong_identity(setup: dict, tmp_path: Path) -> None:
    d: Path = setup["dir"]
    stranger = d / "stranger.key"
    stranger.write_text(f"{age.generate_identity()}\n")
    done = naskahd("decrypt", setup["enc"], "-i", stranger, "-o", d / "out")
    assert_refused(done, "letter.pdf.age", "no identity matches", "Nothing was written")
    assert not (d / "out").exists() and leftovers(d) == []


@pytest.mark.parametrize("cut", [1, 65536, 3 * 65536])
def test_truncated(setup: dict, cut: int) -> None:
    d: Path = setup["dir"]
    enc: Path = setup["enc"]
    enc.write_bytes(enc.read_bytes()[:-cut])
    done = naskahd("decrypt", enc, "-i", setup["key"], "--passphrase-file", setup["pw"], "-o", d / "out")
    assert_refused(done, "letter.pdf.age", "truncated", "Nothing was written")
    assert not (d / "out").exists() and leftovers(d) == []


@pytest.mark.parametrize("where", ["header", "payload-start", "payload-end"])
def test_bit_flipped(setup: dict, where: str) -> None:
    d: Path = setup["dir"]
    enc: Path = setup["enc"]
    blob = bytearray(enc.read_bytes())
    # A flip near the end means three verified chunks were already written to the temp file.
    pos = {"header": 40, "payload-start": len(blob) - 3 * 65552 - 200, "payload-end": len(blob) - 5}[where]
    blob[pos] ^= 0x04
    enc.write_bytes(bytes(blob))
    done = naskahd("decrypt", enc, "-i", setup["key"], "--passphrase-file", setup["pw"], "-o", d / "out")
    assert done.returncode == EXIT_CRYPTO, done.stderr
    assert "letter.pdf.age" in done.stderr
    assert any(w in done.stderr for w in ("modified", "corrupt", "invalid age header", "damaged")), done.stderr
    assert not (d / "out").exists() and leftovers(d) == []


def test_not_an_age_file(setup: dict) -> None:
    d: Path = setup["dir"]
    fake = d / "scan.pdf.age"
    fake.write_bytes(b"%PDF-1.7\n" + os.urandom(5000))
    done = naskahd("decrypt", fake, "-i", setup["key"], "--passphrase-file", setup["pw"], cwd=d)
    assert_refused(done, "scan.pdf.age", "not an age file")
    assert not (d / "scan.pdf").exists() and leftovers(d) == []


def test_identity_wrong_passphrase(setup: dict) -> None:
    d: Path = setup["dir"]
    wrong = d / "wrong"
    wrong.write_text("Tr0ub4dor&3\n")
    done = naskahd("decrypt", setup["enc"], "-i", setup["key"], "--passphrase-file", wrong, "-o", d / "out")
    assert_refused(done, "id.key", "wrong passphrase")
    assert not (d / "out").exists() and leftovers(d) == []


def test_scrypt_work_factor_above_limit(tmp_path: Path) -> None:
    blob = age.encrypt_bytes(b"secret letter", [age.ScryptRecipient(b"pw", log2n=10)])
    high = tmp_path / "high.age"
    high.write_bytes(blob.replace(b" 10\n", b" 23\n", 1))
    pw = tmp_path / "pw"
    pw.write_text("pw\n")
    done = naskahd("decrypt", high, "--passphrase-file", pw, cwd=tmp_path)
    assert_refused(done, "high.age", "work factor", "above the limit")
    assert not (tmp_path / "high").exists() and leftovers(tmp_path) == []
    # The same for a protected identity file with too high a work factor.
    key = tmp_path / "high.key"
    key.write_bytes(age.encrypt_bytes(f"{age.generate_identity()}\n".encode(), [age.ScryptRecipient(b"pw", log2n=10)])
                    .replace(b" 10\n", b" 23\n", 1))
    done = naskahd("decrypt", high, "-i", key, "--passphrase-file", pw, cwd=tmp_path)
    assert_refused(done, "high.key", "work factor")


def test_passphrase_files(tmp_path: Path) -> None:
    data = os.urandom(70_000)
    f = tmp_path / "p.age"
    f.write_bytes(age.encrypt_bytes(data, [age.ScryptRecipient(b"open sesame", log2n=12)]))
    pw = tmp_path / "pw"
    pw.write_text("open sesame\n")
    done = naskahd("decrypt", f, "--passphrase-file", pw, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "p").read_bytes() == data
    (tmp_path / "p").unlink()
    pw.write_text("open says me\n")
    done = naskahd("decrypt", f, "--passphrase-file", pw, cwd=tmp_path)
    assert_refused(done, "p.age", "wrong passphrase")
    assert not (tmp_path / "p").exists() and leftovers(tmp_path) == []


def test_missing_input(tmp_path: Path) -> None:
    done = naskahd("decrypt", tmp_path / "nope.age", "-o", tmp_path / "out", "--passphrase-file", tmp_path / "pw")
    assert done.returncode != 0 and "nope.age" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_keygen_prompts_twice_on_a_terminal(tmp_path: Path) -> None:
    from conftest_age import run_in_pty

    key = tmp_path / "typed.key"
    argv = [sys.executable, "-m", "naskahd", "keygen", "-o", str(key)]
    code, out = run_in_pty(argv, [b"ketik dua kali", b"ketik dua kali"])
    assert code == 0, out
    recipient = out.strip().splitlines()[-1].strip()
    ids = age.parse_identity_file(key.read_bytes(), lambda: b"ketik dua kali")
    assert str(ids[0].recipient()) == recipient
    other = tmp_path / "mismatch.key"
    answers = [b"dua belas huruf", b"lain sekali ya", b"dua belas huruf", b"beda lagi nih", b"x1y2z3w4v5u6", b"u6v5w4"]
    code, out = run_in_pty([*argv[:-1], str(other)], answers)
    assert code == EXIT_USAGE and "differ" in out and "no usable passphrase after 3 tries" in out, out
    assert not other.exists() and leftovers(tmp_path) == []


def test_keygen_refuses_a_short_passphrase_and_asks_again(tmp_path: Path) -> None:
    from conftest_age import run_in_pty

    key = tmp_path / "short.key"
    argv = [sys.executable, "-m", "naskahd", "keygen", "-o", str(key)]
    code, out = run_in_pty(argv, [b"satu", b"kunci arsip kantor", b"kunci arsip kantor"])
    assert code == 0, out
    assert "too short: use at least 12 characters" in out, out
    assert "offline" in out and "[encryption] recipients" in out, out
    assert out.strip().splitlines()[-1].strip().startswith("age1")
    ids = age.parse_identity_file(key.read_bytes(), lambda: b"kunci arsip kantor")
    # --recipient-of prints the recipient of an existing identity, asking its passphrase.
    code, out = run_in_pty([sys.executable, "-m", "naskahd", "keygen", "--recipient-of", str(key)], [b"kunci arsip kantor"])
    assert code == 0, out
    assert out.strip().splitlines()[-1].strip() == str(ids[0].recipient())


def test_keygen_refuses_a_short_passphrase_file(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("pendek\n")
    done = naskahd("keygen", "-o", tmp_path / "k", "--passphrase-file", pw)
    assert done.returncode == EXIT_USAGE and "at least 12 characters" in done.stderr, done.stderr
    assert not (tmp_path / "k").exists()


def test_encrypt_starts_writeback_early(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's writer hands each full 8 MiB window to sync_file_range, and stops using it
    (the final fsync still makes the file durable) if the call fails."""
    from naskahd import durable
    from naskahd.cli import encrypt_cmd

    assert durable._sync_file_range() is not None or sys.platform != "linux"
    calls: list[tuple[int, int, int]] = []

    def fake(fd: int, offset: int, nbytes: int, flags: int) -> int:
        calls.append((offset, nbytes, flags))
        return 0

    window = encrypt_cmd._Writeback.WINDOW
    monkeypatch.setattr(durable, "_sync_file_range", lambda: fake)
    with open(tmp_path / "out", "wb", buffering=0) as f:
        writer = encrypt_cmd._Writeback(f)
        for _ in range(2 * window // (1 << 20) + 1):
            assert writer.write(b"\0" * (1 << 20)) == 1 << 20
    assert calls == [(0, window, 2), (window, window, 2)]
    assert (tmp_path / "out").stat().st_size == 2 * window + (1 << 20)

    monkeypatch.setattr(durable, "_sync_file_range", lambda: lambda *args: -1)
    with open(tmp_path / "out2", "wb", buffering=0) as f:
        writer = encrypt_cmd._Writeback(f)
        writer.write(b"\0" * window)
        assert writer._start_writeback is None
        writer.write(b"\0" * window)
    assert (tmp_path / "out2").stat().st_size == 2 * window
    monkeypatch.undo()

    class Recorder:
        sizes: list[int] = []

        def fileno(self) -> int:
            return -1

        def write(self, data: memoryview) -> int:
            n = min(len(data), 100_000)  # short writes must be retried
            self.sizes.append(n)
            return n

    writer = encrypt_cmd._Writeback(Recorder())  # type: ignore[arg-type]
    writer._start_writeback = None
    assert writer.write(memoryview(bytes(1 << 20))) == 1 << 20
    assert sum(Recorder.sizes) == 1 << 20 and max(Recorder.sizes) <= encrypt_cmd._Writeback.PIECE


def test_encrypt_large_file_round_trip(tmp_path: Path) -> None:
    """Past several writeback windows and pipeline batches, through the real CLI."""
    ident = age.generate_identity()
    key = tmp_path / "id.key"
    key.write_text(f"{ident}\n")
    plain = tmp_path / "big.bin"
    plain.write_bytes(os.urandom(20 * 1024 * 1024 + 12345))
    done = naskahd("encrypt", plain, "-r", str(ident.recipient()))
    assert done.returncode == 0, done.stderr
    assert age.decrypt_bytes((tmp_path / "big.bin.age").read_bytes(), [ident]) == plain.read_bytes()
    assert leftovers(tmp_path) == []


def test_decrypt_killed_midway_leaves_no_plaintext(tmp_path: Path) -> None:
    """SIGKILL while plaintext is being written: no file of any name is left in the output
    folder (the plaintext has no name until the whole file authenticated)."""
    import signal
    import time

    ident = age.generate_identity()
    key = tmp_path / "id.key"
    key.write_text(f"{ident}\n")
    blob = age.encrypt_bytes(os.urandom(4 * 1024 * 1024), [ident.recipient()])
    out = tmp_path / "out"
    out.mkdir()
    fifo = tmp_path / "in.age"
    os.mkfifo(fifo)
    env = dict(os.environ, LANG="C.UTF-8", LANGUAGE="en")
    proc = subprocess.Popen([sys.executable, "-m", "naskahd", "decrypt", str(fifo), "-i", str(key),
                             "--output-dir", str(out)], env=env, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        with open(fifo, "wb") as w:
            w.write(blob[: len(blob) // 2])  # half the file: plaintext chunks are being written
            w.flush()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # until it holds an output file in `out` with plaintext in it
                time.sleep(0.1)
                sizes = []
                for fd in Path(f"/proc/{proc.pid}/fd").iterdir():
                    try:  # O_TMPFILE shows as "out/#123 (deleted)"
                        if os.readlink(fd).startswith(f"{out}/"):
                            sizes.append(os.stat(fd).st_size)
                    except FileNotFoundError:  # closed meanwhile
                        pass
                if sizes and max(sizes) >= 1024 * 1024:
                    break
            else:
                pytest.fail("the decryptor wrote no plaintext into the output folder within 30 s")
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
    except BrokenPipeError:
        pass
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert sorted(os.listdir(out)) == []
