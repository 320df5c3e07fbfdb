"""The host secret: made once, 0600, never overwritten; keyed digests separate purposes."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from naskahd import hostsecret


def test_created_once_private_and_stable(tmp_path: Path) -> None:
    first = hostsecret.load(tmp_path)
    assert len(first) == hostsecret.SIZE
    assert stat.S_IMODE(hostsecret.path(tmp_path).stat().st_mode) == 0o600
    assert hostsecret.load(tmp_path) == first


def test_not_created_when_asked_not_to(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        hostsecret.load(tmp_path, create=False)
    assert not hostsecret.path(tmp_path).exists()


def test_wrong_size_is_refused(tmp_path: Path) -> None:
    hostsecret.path(tmp_path).write_bytes(b"short")
    with pytest.raises(ValueError, match="32 bytes"):
        hostsecret.load(tmp_path)


def test_purposes_do_not_share_tags() -> None:
    secret = bytes(32)
    a = hostsecret.keyed(secret, "drive-token", b"x")
    b = hostsecret.keyed(secret, "exempt-content", b"x")
    assert a != b
    assert hostsecret.keyed(bytes([1]) + bytes(31), "exempt-content", b"x") != b
