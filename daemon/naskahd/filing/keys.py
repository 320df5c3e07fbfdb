"""What the register and the logs keep of an exempt letter, keyed by the host secret.

An exempt letter's plain SHA-256 and drop path would let anyone holding a candidate
document (or guessing a name) confirm that it was filed. The register keeps instead
HMAC-SHA256 tags under the host secret (``hostsecret.py``), which confirm nothing to
someone without the host, yet still find duplicates and the scan a half-filed row was
made from. The content tag is taken over the plaintext's SHA-256 (already computed while
encrypting), so no second pass over the plaintext is needed.

Rows made before this existed hold the plain SHA-256 and an empty path: ``matches``
accepts either form, and such rows are still found by size and content.
"""

from __future__ import annotations

from pathlib import Path

from naskahd import hostsecret

PATH_TAG = b"#"  # source_relpath of an exempt row: '#' + hex tag (never a real drop path)


class ExemptKeys:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    @classmethod
    def of(cls, state: Path) -> ExemptKeys:
        return cls(hostsecret.load(state))

    @classmethod
    def of_existing(cls, state: Path) -> ExemptKeys:
        """For readers (``status``): never creates the secret; OSError if it is not readable."""
        return cls(hostsecret.load(state, create=False))

    def content(self, plaintext_sha256: str) -> str:
        return hostsecret.keyed(self._secret, "exempt-content", bytes.fromhex(plaintext_sha256))

    def path(self, relpath: str) -> bytes:
        tag = hostsecret.keyed(self._secret, "exempt-path", relpath.encode("utf-8", "surrogateescape"))
        return PATH_TAG + tag.encode()

    def review_name(self, name: str) -> str:
        """How the register refers to an exempt item in ``tinjau/dikecualikan/`` (not by a
        plain hash of its name, which a guess could confirm)."""
        return hostsecret.keyed(self._secret, "exempt-review-name", name.encode("utf-8", "surrogateescape"))

    def matches(self, recorded_sha256: str, plaintext_sha256: str) -> bool:
        """Does an exempt row's recorded content key belong to this plaintext digest?"""
        return recorded_sha256 in (self.content(plaintext_sha256), plaintext_sha256)
