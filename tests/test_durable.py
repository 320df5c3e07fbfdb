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
