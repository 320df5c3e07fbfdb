import os
from pathlib import Path

import pytest

from naskahd import durable


def test_create_publishes_only_complete_content(tmp_path: Path) -> None:
    target = tmp_path / "a.bin"
    with durable.create(target) as f:
        f.write(b"hello")
        assert not target.exists()
    assert target.read_bytes() == b"hello"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_never_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "a.bin"
    target.write_bytes(b"original")
    with pytest.raises(FileExistsError):
        durable.write_bytes(target, b"new")
    assert target.read_bytes() == b"original"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]
    durable.write_bytes(target, b"new", overwrite=True)
    assert target.read_bytes() == b"new"


def test_a_failure_inside_the_block_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), durable.create(tmp_path / "a.bin") as f:
        f.write(b"partial")
        raise RuntimeError
    assert list(tmp_path.iterdir()) == []


def test_rename_noreplace(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"a")
    (tmp_path / "b").write_bytes(b"b")
    with pytest.raises(FileExistsError):
        durable.rename_noreplace(tmp_path / "a", tmp_path / "b")
    durable.rename_noreplace(tmp_path / "a", tmp_path / "c")
    assert sorted(os.listdir(tmp_path)) == ["b", "c"]


def test_makedirs(tmp_path: Path) -> None:
    durable.makedirs(tmp_path / "x" / "y" / "z")
    assert (tmp_path / "x" / "y" / "z").is_dir()


def test_create_unnamed_has_no_name_until_complete(tmp_path: Path) -> None:
    target = tmp_path / "plain.pdf"
    with durable.create_unnamed(target) as f:
        f.write(b"page 1")
        assert os.listdir(tmp_path) == []  # nothing to leave behind if killed now
    assert target.read_bytes() == b"page 1" and target.stat().st_mode & 0o777 == 0o600
    with pytest.raises(RuntimeError), durable.create_unnamed(tmp_path / "other.pdf") as f:
        f.write(b"half")
        raise RuntimeError("tampered chunk")
    assert os.listdir(tmp_path) == ["plain.pdf"]
    with pytest.raises(FileExistsError), durable.create_unnamed(target) as f:
        f.write(b"another letter")
    assert target.read_bytes() == b"page 1" and os.listdir(tmp_path) == ["plain.pdf"]


def test_create_unnamed_falls_back_to_a_temp_file_without_o_tmpfile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """exFAT and some FUSE filesystems refuse O_TMPFILE: a named temp file, removed on errors."""
    import errno

    real_open = os.open

    def no_tmpfile(path, flags, *args, **kwargs):  # type: ignore[no-untyped-def]
        if flags & os.O_TMPFILE == os.O_TMPFILE:
            raise OSError(errno.EOPNOTSUPP, "Operation not supported")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(durable.os, "open", no_tmpfile)
    target = tmp_path / "plain.pdf"
    with durable.create_unnamed(target) as f:
        f.write(b"page 1")
        assert [n for n in os.listdir(tmp_path) if n.startswith(durable.TEMP_PREFIX)]
    assert target.read_bytes() == b"page 1" and os.listdir(tmp_path) == ["plain.pdf"]
    with pytest.raises(RuntimeError), durable.create_unnamed(tmp_path / "other.pdf") as f:
        raise RuntimeError("tampered chunk")
    assert os.listdir(tmp_path) == ["plain.pdf"]
