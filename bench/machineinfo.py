"""What the benchmark scripts record about the machine they ran on."""

from __future__ import annotations

from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def has_journal(fstype: str, device: str) -> bool | None:
    """For ext3/ext4: does the filesystem on ``device`` have a journal? (A jbd2 entry
    in /proc/fs/jbd2 exists only for mounted journals.) None for other filesystems.

    It matters for the filing figures: without a journal, ext4 skips recently deleted
    inodes when it creates a file, and a burst that deletes sources while it creates
    archive copies pays for that (docs/benchmarks-filing.md, Machine).
    """
    if fstype not in ("ext3", "ext4") or not device.startswith("/dev/"):
        return None
    name = Path(device).resolve().name
    try:
        return any(entry.name.rsplit("-", 1)[0] == name for entry in Path("/proc/fs/jbd2").iterdir())
    except OSError:
        return False  # no /proc/fs/jbd2 at all: no journal is mounted
