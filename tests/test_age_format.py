"""naskahd.age: round trips, verify_sealed, bech32 and identity-file parsing."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os

import pytest

from naskahd import age
from naskahd.errors import EXIT_CRYPTO, AgeError

SIZES = [0, 1, 65535, 65536, 65537, 200_000]
# Around the encryptor's 1 MiB batch (16 chunks): one batch is sealed inline, more go
# through the threaded pipeline, which holds back each batch's last chunk.
BATCH = 16 * 65536
LARGE_SIZES = [BATCH - 1, BATCH, BATCH + 1, 2 * BATCH - 65536, 2 * BATCH, 3 * BATCH + 12345]

# The example keys of the age spec ("The X25519 recipient type").
SPEC_IDENTITY = "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX"
SPEC_RECIPIENT = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj"


@pytest.fixture(scope="module")
def ident() -> age.X25519Identity:
    return age.generate_identity()


def _seal(data: bytes, recipients) -> tuple[bytes, age.Sealed]:
    out = io.BytesIO()
    sealed = age.encrypt_stream(io.BytesIO(data), out, recipients)
    return out.getvalue(), sealed


@pytest.mark.parametrize("size", SIZES + LARGE_SIZES)
def test_round_trip(size: int, ident: age.X25519Identity) -> None:
    data = os.urandom(size)
    blob, sealed = _seal(data, [ident.recipient()])
    assert blob.startswith(b"age-encryption.org/v1\n-> X25519 ")
    out = io.BytesIO()
    age.decrypt_stream(io.BytesIO(blob), out, [ident])
    assert out.getvalue() == data
    assert age.decrypt_bytes(age.encrypt_bytes(data, [ident.recipient()]), [ident]) == data
    assert sealed.plaintext_size == size
    assert sealed.ciphertext_size == len(blob)
    assert sealed.plaintext_sha256 == hashlib.sha256(data).hexdigest()
    assert sealed.ciphertext_sha256 == hashlib.sha256(blob).hexdigest()
    assert sealed.recipients == (str(ident.recipient()),)
    # "Payload": 64 KiB chunks, each + 16-byte tag; an empty payload is one empty chunk.
    chunks = max(1, -(-size // 65536))
    header_len = blob.index(b"\n---") + len("\n--- ") + 43 + 1
    assert len(blob) == header_len + 16 + size + 16 * chunks
    age.verify_sealed(io.BytesIO(blob), sealed)


@pytest.mark.parametrize("size", SIZES + LARGE_SIZES)
def test_round_trip_without_digests(size: int, ident: age.X25519Identity) -> None:
    data = os.urandom(size)
    out = io.BytesIO()
    sealed = age.encrypt_stream(io.BytesIO(data), out, [ident.recipient()], digests=False)
    blob = out.getvalue()
    assert age.decrypt_bytes(blob, [ident]) == data
    assert sealed.plaintext_sha256 is None and sealed.ciphertext_sha256 is None
    assert (sealed.plaintext_size, sealed.ciphertext_size) == (size, len(blob))


def test_no_digests_means_no_hashing(monkeypatch: pytest.MonkeyPatch, ident: age.X25519Identity) -> None:
    """digests=False creates no hash object and starts no hashing thread: only the writer
    and the helper that encrypts half of each batch."""
    import threading

    def refuse(*args: object) -> None:
        raise AssertionError("hashlib.sha256 called with digests=False")

    monkeypatch.setattr(hashlib, "sha256", refuse)
    started: list[str] = []
    real_start = threading.Thread.start

    def start(self: threading.Thread) -> None:
        started.append(self.name)
        real_start(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    age.encrypt_stream(io.BytesIO(os.urandom(3 * BATCH)), io.BytesIO(), [ident.recipient()], digests=False)
    assert sorted(started) == ["age-seal", "age-seal-helper"]


def test_verify_sealed_refuses_a_sealed_without_digests(ident: age.X25519Identity) -> None:
    out = io.BytesIO()
    sealed = age.encrypt_stream(io.BytesIO(b"surat"), out, [ident.recipient()], digests=False)
    with pytest.raises(ValueError, match="digests=False"):
        age.verify_sealed(io.BytesIO(out.getvalue()), sealed)
    # Half a Sealed is refused too: both digests are needed.
    _, full = _seal(b"surat", [ident.recipient()])
    with pytest.raises(ValueError, match="SHA-256 digests"):
        age.verify_sealed(io.BytesIO(out.getvalue()), dataclasses.replace(full, ciphertext_sha256=None))


def test_sealed_repr_hides_file_key(ident: age.X25519Identity) -> None:
    _, sealed = _seal(b"secret", [ident.recipient()])
    assert sealed.file_key.hex() not in repr(sealed)
    assert len(sealed.file_key) == 16


def test_multiple_recipients() -> None:
    ids = [age.generate_identity() for _ in range(3)]
    data = os.urandom(70_000)
    blob, sealed = _seal(data, [i.recipient() for i in ids])
    assert blob.count(b"\n-> X25519 ") == 3
    for i in ids:
        assert age.decrypt_bytes(blob, [i]) == data
    assert sealed.recipients == tuple(str(i.recipient()) for i in ids)
    # An identity list where only the last one matches.
    assert age.decrypt_bytes(blob, [age.generate_identity(), ids[2]]) == data


def test_wrong_identity(ident: age.X25519Identity) -> None:
    blob = age.encrypt_bytes(b"x", [ident.recipient()])
    with pytest.raises(AgeError, match="no identity matches") as info:
        age.decrypt_bytes(blob, [age.generate_identity()])
    assert info.value.exit_code == EXIT_CRYPTO


def test_no_recipients_refused() -> None:
    with pytest.raises(AgeError, match="no recipient"):
        age.encrypt_bytes(b"x", [])


def test_fresh_keys_per_file(ident: age.X25519Identity) -> None:
    a, sa = _seal(b"same", [ident.recipient()])
    b, sb = _seal(b"same", [ident.recipient()])
    assert a != b and sa.file_key != sb.file_key


@pytest.mark.parametrize("where", ["header", "nonce", "first", "last"])
def test_verify_sealed_catches_a_flipped_byte(where: str, ident: age.X25519Identity) -> None:
    blob, sealed = _seal(os.urandom(150_000), [ident.recipient()])
    header_len = blob.index(b"\n---") + len("\n--- ") + 43 + 1
    pos = {"header": 30, "nonce": header_len + 3, "first": header_len + 100, "last": len(blob) - 1}[where]
    bad = bytearray(blob)
    bad[pos] ^= 0x01
    with pytest.raises(AgeError):
        age.verify_sealed(io.BytesIO(bytes(bad)), sealed)
    with pytest.raises(AgeError):
        age.decrypt_bytes(bytes(bad), [ident])


@pytest.mark.parametrize("cut", [1, 16, 65536 + 16, 100_000])
def test_verify_sealed_catches_truncation(cut: int, ident: age.X25519Identity) -> None:
    blob, sealed = _seal(os.urandom(150_000), [ident.recipient()])
    with pytest.raises(AgeError):
        age.verify_sealed(io.BytesIO(blob[:-cut]), sealed)
    with pytest.raises(AgeError):
        age.decrypt_bytes(blob[:-cut], [ident])


def test_verify_sealed_catches_appended_data(ident: age.X25519Identity) -> None:
    blob, sealed = _seal(os.urandom(1000), [ident.recipient()])
    with pytest.raises(AgeError, match="failed authentication"):  # the short chunk grows
        age.verify_sealed(io.BytesIO(blob + b"\0"), sealed)
    blob, sealed = _seal(os.urandom(65536), [ident.recipient()])  # a full final chunk
    with pytest.raises(AgeError, match="after the end"):
        age.verify_sealed(io.BytesIO(blob + b"\0"), sealed)


def test_verify_sealed_wrong_file_key(ident: age.X25519Identity) -> None:
    blob, sealed = _seal(os.urandom(1000), [ident.recipient()])
    wrong = dataclasses.replace(sealed, file_key=os.urandom(16))
    with pytest.raises(AgeError, match="MAC"):
        age.verify_sealed(io.BytesIO(blob), wrong)


def test_verify_sealed_other_file(ident: age.X25519Identity) -> None:
    data = os.urandom(1000)
    _, sealed = _seal(data, [ident.recipient()])
    other, _ = _seal(data, [ident.recipient()])
    with pytest.raises(AgeError):
        age.verify_sealed(io.BytesIO(other), sealed)


def test_verify_sealed_hash_mismatch(ident: age.X25519Identity) -> None:
    blob, sealed = _seal(b"hello", [ident.recipient()])
    with pytest.raises(AgeError, match="does not match"):
        age.verify_sealed(io.BytesIO(blob), dataclasses.replace(sealed, plaintext_sha256="0" * 64))
    with pytest.raises(AgeError, match="does not match"):
        age.verify_sealed(io.BytesIO(blob), dataclasses.replace(sealed, ciphertext_sha256="0" * 64))


def test_spec_example_keys() -> None:
    ids = age.parse_identity_file(SPEC_IDENTITY.encode())
    assert str(ids[0]) == SPEC_IDENTITY
    assert str(ids[0].recipient()) == SPEC_RECIPIENT
    assert str(age.parse_recipient(SPEC_RECIPIENT)) == SPEC_RECIPIENT
    assert age.parse_recipient(SPEC_RECIPIENT.upper()) == age.parse_recipient(SPEC_RECIPIENT)


def test_generate_identity() -> None:
    ident = age.generate_identity()
    text = str(ident)
    assert text.startswith("AGE-SECRET-KEY-1") and text == text.upper()
    assert str(ident.recipient()).startswith("age1")
    assert text not in repr(ident)
    again = age.parse_identity_file(text.encode())[0]
    assert again.recipient() == ident.recipient()


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (SPEC_RECIPIENT[:-1] + ("q" if SPEC_RECIPIENT[-1] != "q" else "p"), "checksum"),
        (SPEC_RECIPIENT[:10] + SPEC_RECIPIENT[10:].upper(), "mixed"),
        ("age1" + "b" * 58, "invalid character"),
        ("age", "separator"),
        ("", "separator"),
        (SPEC_IDENTITY, "not an age X25519 public key"),
        ("age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqhmcgyd", ""),
    ],
)
def test_bad_recipients(value: str, reason: str) -> None:
    with pytest.raises(AgeError, match="invalid recipient") as info:
        age.parse_recipient(value)
    assert reason in str(info.value)
    assert value[:20] in str(info.value)  # names the bad value


def test_bech32_round_trip() -> None:
    for n in (0, 1, 31, 32, 33, 100):
        data = os.urandom(n)
        assert age.bech32_decode(age.bech32_encode("test", data)) == ("test", data)


def test_identity_file_with_comments_and_blank_lines() -> None:
    a, b = age.generate_identity(), age.generate_identity()
    text = f"# created: today\n# public key: {a.recipient()}\n{a}\n\n  \r\n{b}\r\n# end\n"
    ids = age.parse_identity_file(text.encode())
    assert [i.recipient() for i in ids] == [a.recipient(), b.recipient()]


def test_identity_file_errors_do_not_leak_secrets() -> None:
    good = str(age.generate_identity())
    bad = good[:-1] + ("Q" if good[-1] != "Q" else "P")
    with pytest.raises(AgeError, match="line 2") as info:
        age.parse_identity_file(f"# c\n{bad}\n".encode())
    assert bad not in str(info.value) and "checksum" in str(info.value)
    with pytest.raises(AgeError, match="no identity"):
        age.parse_identity_file(b"# only a comment\n\n")
    with pytest.raises(AgeError, match="only X25519"):
        age.parse_identity_file(SPEC_RECIPIENT.encode())
    with pytest.raises(AgeError, match="not text"):
        age.parse_identity_file(b"\xff\xfe\x00")


def test_passphrase_protected_identity_file() -> None:
    ident = age.generate_identity()
    plain = f"# public key: {ident.recipient()}\n{ident}\n".encode()
    calls: list[int] = []

    def ask() -> bytes:
        calls.append(1)
        return b"correct horse"

    for protected in (
        age.encrypt_bytes(plain, [age.ScryptRecipient(b"correct horse", log2n=10)]),
        age.armor(age.encrypt_bytes(plain, [age.ScryptRecipient(b"correct horse", log2n=10)])),
    ):
        ids = age.parse_identity_file(protected, ask)
        assert ids[0].recipient() == ident.recipient()
        with pytest.raises(AgeError, match="wrong passphrase"):
            age.parse_identity_file(protected, lambda: b"wrong")
        with pytest.raises(AgeError, match="no passphrase"):
            age.parse_identity_file(protected)
    assert len(calls) == 2
    # A plain identity file never asks.
    age.parse_identity_file(plain, ask)
    assert len(calls) == 2
    # An X25519-encrypted file is not a passphrase-protected identity file.
    with pytest.raises(AgeError, match="not with a passphrase"):
        age.parse_identity_file(age.encrypt_bytes(plain, [ident.recipient()]), ask)
    assert len(calls) == 2


def test_scrypt_files() -> None:
    data = os.urandom(70_000)
    blob = age.encrypt_bytes(data, [age.ScryptRecipient(b"pw", log2n=10)])
    assert b"\n-> scrypt " in blob and b" 10\n" in blob
    out = io.BytesIO()
    age.decrypt_stream(io.BytesIO(blob), out, [], passphrase=lambda: b"pw")
    assert out.getvalue() == data
    assert age.decrypt_bytes(blob, [age.ScryptIdentity(b"pw")]) == data
    with pytest.raises(AgeError, match="wrong passphrase"):
        age.decrypt_bytes(blob, [age.ScryptIdentity(b"nope")])
    with pytest.raises(AgeError, match="no passphrase was given"):
        age.decrypt_bytes(blob, [age.generate_identity()])
    with pytest.raises(AgeError, match="cannot be combined"):
        age.encrypt_bytes(data, [age.ScryptRecipient(b"pw"), age.generate_identity().recipient()])


def test_scrypt_work_factor_limit_checked_before_asking() -> None:
    blob = age.encrypt_bytes(b"x", [age.ScryptRecipient(b"pw", log2n=10)])
    high = blob.replace(b" 10\n", b" 23\n", 1)  # the MAC is checked only after unwrapping

    def ask() -> bytes:
        raise AssertionError("must not ask for a passphrase")

    with pytest.raises(AgeError, match="work factor 2\\^23 is above the limit"):
        age.decrypt_stream(io.BytesIO(high), io.BytesIO(), [], passphrase=ask)


def test_armored_input(ident: age.X25519Identity) -> None:
    data = os.urandom(5000)
    armored = age.armor(age.encrypt_bytes(data, [ident.recipient()]))
    assert armored.startswith(b"-----BEGIN AGE ENCRYPTED FILE-----\n")
    assert all(len(line) <= 64 for line in armored.splitlines())
    assert age.decrypt_bytes(armored, [ident]) == data
    assert age.decrypt_bytes(b"\n \t" + armored.replace(b"\n", b"\r\n") + b"\n\n", [ident]) == data
    with pytest.raises(AgeError, match="armor"):
        age.decrypt_bytes(armored + b"junk\n", [ident])


@pytest.mark.parametrize(
    ("blob", "reason"),
    [
        (b"", "not an age file"),
        (b"%PDF-1.7\n" + b"x" * 100, "not an age file"),
        (b"age-encryption.org/v2\n", "unsupported age version"),
        (b"age-encryption.org/v1\n", "truncated"),
        (b"age-encryption.org/v1\n--- " + b"A" * 43 + b"\n", "no recipient stanza"),
    ],
)
def test_not_age_files(blob: bytes, reason: str, ident: age.X25519Identity) -> None:
    with pytest.raises(AgeError, match=reason):
        age.decrypt_bytes(blob, [ident])


def test_streaming_from_unbuffered_files(tmp_path, ident: age.X25519Identity) -> None:
    data = os.urandom(3 * 65536 + 7)
    src = tmp_path / "plain"
    src.write_bytes(data)
    with open(src, "rb", buffering=0) as f, open(tmp_path / "enc", "wb", buffering=0) as g:
        sealed = age.encrypt_stream(f, g, [ident.recipient()])
    with open(tmp_path / "enc", "rb", buffering=0) as f:
        age.verify_sealed(f, sealed)
    with open(tmp_path / "enc", "rb", buffering=0) as f, open(tmp_path / "dec", "wb") as g:
        age.decrypt_stream(f, g, [ident])
    assert (tmp_path / "dec").read_bytes() == data


class _Zeros:
    """A large plaintext source that costs no memory: readinto fills with a pattern."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readinto(self, buf) -> int:
        n = min(len(buf), self.left, 300_000)  # odd sizes: short reads must be handled
        buf[:n] = b"\x5a" * n
        self.left -= n
        return n

    def read(self, size: int) -> bytes:
        n = min(size, self.left, 300_000)
        self.left -= n
        return b"\x5a" * n


class _Sink(io.RawIOBase):
    def __init__(self) -> None:
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        self.size += len(data)
        return len(data)


def test_memory_stays_flat(tmp_path, ident: age.X25519Identity) -> None:
    import tracemalloc

    size = 64 * 1024 * 1024
    enc = tmp_path / "big.age"
    tracemalloc.start()
    try:
        with open(enc, "wb", buffering=0) as f:
            sealed = age.encrypt_stream(_Zeros(size), f, [ident.recipient()])  # type: ignore[arg-type]
        encrypt_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        sink = _Sink()
        with open(enc, "rb") as f:
            age.decrypt_stream(f, sink, [ident])
        with open(enc, "rb") as f:
            age.verify_sealed(f, sealed)
        decrypt_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert sink.size == size == sealed.plaintext_size
    assert sealed.plaintext_sha256 == hashlib.sha256(b"\x5a" * size).hexdigest()
    assert encrypt_peak < 8 * 1024 * 1024, encrypt_peak  # the fixed batch buffers
    assert decrypt_peak < 2 * 1024 * 1024, decrypt_peak
