"""The age v1 conformance vectors (C2SP/CCTV subset) through naskahd's decrypt path.

Each vector: success exactly where expected, and the SHA-256 of all plaintext released
(also before a failure) equals ``payload``. See the vectors' README for the format.
"""

from __future__ import annotations

import hashlib
import io
import os
import zlib
from pathlib import Path

import pytest

from naskahd import age
from naskahd.errors import AgeError

VECTORS = Path(
    os.environ.get("NASKAHD_AGE_VECTORS")
    or Path(__file__).resolve().parents[2] / "shared" / "age-vectors"
)


def _vector_files() -> list[Path]:
    if not VECTORS.is_dir():
        return []
    return sorted(p for p in VECTORS.iterdir() if p.is_file() and p.name != "README.md" and not p.name.startswith("."))


def _params() -> list:
    files = _vector_files()
    if files:
        return [pytest.param(p, id=p.name) for p in files]
    return [pytest.param(None, id="vectors-missing")]


def _parse(path: Path) -> tuple[dict[str, list[str]], bytes]:
    raw = path.read_bytes()
    head, _, body = raw.partition(b"\n\n")
    meta: dict[str, list[str]] = {}
    for line in head.decode("utf-8").splitlines():
        key, _, value = line.partition(": ")
        meta.setdefault(key, []).append(value)
    if meta.get("compressed") == ["zlib"]:
        body = zlib.decompress(body)
    return meta, body


class _Recorder(io.RawIOBase):
    """Hashes what the decryptor releases, as it is released."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        self.hash.update(data)
        return len(data)


def test_vectors_present() -> None:
    if not _vector_files():
        message = f"age conformance vectors not found in {VECTORS} (set NASKAHD_AGE_VECTORS)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; they are required under CI=true")
        pytest.skip(message)
    assert len(_vector_files()) >= 50


@pytest.mark.parametrize("path", _params())
def test_vector(path: Path | None) -> None:
    if path is None:
        message = f"age conformance vectors not found in {VECTORS} (set NASKAHD_AGE_VECTORS)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; they are required under CI=true")
        pytest.skip(message)
    meta, body = _parse(path)
    identities: list[age.Identity] = []
    for text in meta.get("identity", []):
        identities.extend(age.parse_identity_file(text.encode()))
    for text in meta.get("passphrase", []):
        identities.append(age.ScryptIdentity(text.encode()))
    expect = meta["expect"][0]
    out = _Recorder()
    error: AgeError | None = None
    try:
        age.decrypt_stream(io.BytesIO(body), out, identities)
    except AgeError as exc:
        error = exc
    if expect == "success":
        assert error is None, f"{path.name}: expected success, got: {error}"
    else:
        assert error is not None, f"{path.name}: expected {expect}, but decryption succeeded"
        assert str(error)  # a message for a person
    if "payload" in meta:
        assert out.hash.hexdigest() == meta["payload"][0], f"{path.name}: released plaintext differs"
    elif expect != "success":
        # No payload key: nothing may be released at all.
        assert out.hash.hexdigest() == hashlib.sha256(b"").hexdigest()
    if expect == "no match":
        assert "no identity matches" in str(error) or "wrong passphrase" in str(error)
    if expect == "HMAC failure":
        assert "MAC" in str(error)
    if expect == "armor failure":
        assert "armor" in str(error) or "not an age file" in str(error)
