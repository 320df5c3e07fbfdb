"""The power-loss campaign, short run (issue 22; tests/campaign/power.py, the long run is
bench/campaign_power.py): archive and state on powerfs, power cut at aimed calls, remount
with only what was durable, restart, every invariant checked. Seeded: a failure names its
round, its cut point and the call it hit, and replays with the same seed.

    NASKAHD_POWER_SEED=7 .venv/bin/python -m pytest -q tests/test_power_loss.py
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import require, require_root, require_tool
from powerfs import available

pytestmark = [pytest.mark.system, pytest.mark.slow]

SEED = int(os.environ.get("NASKAHD_POWER_SEED", "20261201"))


def _needs() -> None:
    require_root()
    require_tool("age-keygen")
    require_tool("fusermount3")
    require(available() is None, f"powerfs cannot run: {available()}")


@pytest.mark.timeout(600)
def test_power_cuts_at_each_durability_step_lose_nothing(tmp_path: Path) -> None:
    from campaign import power

    _needs()
    lines: list[str] = []
    assert len(power.SHORT) == 9
    result = power.run(tmp_path / "tree", seed=SEED, cuts=len(power.SHORT), files=3, settle_timeout=60, log=lines.append,
                       points=power.SHORT)
    figures = result.figures()
    print(figures)
    assert not result.violations, "\n".join(result.violations) + f"\nseed {SEED}; rounds:\n" + "\n".join(lines)
    assert figures["cuts"] == len(power.SHORT)
    assert figures["fired"] >= len(power.SHORT) // 2, f"most aimed cuts must hit their call: {lines}"


@pytest.mark.timeout(300)
def test_power_cuts_during_the_first_start_lose_nothing(tmp_path: Path) -> None:
    from campaign import power

    _needs()
    result = power.run_first_start(tmp_path, seed=SEED, cuts=2, files=3)
    assert not result.violations, "\n".join(result.violations) + f"\nseed {SEED}"
    assert result.figures()["fired"] == 2


@pytest.mark.timeout(300)
@pytest.mark.parametrize("mutation", ["no copy fsync", "no folder fsync"])
def test_the_campaign_catches_a_daemon_with_an_fsync_taken_away(tmp_path: Path, mutation: str) -> None:
    """The campaign can fail: the same daemon with one fsync removed (a sitecustomize.py on
    its path) loses letters at a power cut once all is filed, and the checker says so."""
    from campaign import power

    _needs()
    idle = tuple(p for p in power.POINTS if p.label == "after everything was filed")
    result = power.run(tmp_path / "tree", seed=SEED, cuts=1, files=4, settle_timeout=60, points=idle,
                       env=power.mutated_env(tmp_path, mutation))
    found = [v for v in result.violations if "lost:" in v or "corrupt:" in v]
    assert found, f"{mutation}: the power cut went unnoticed: {result.violations}"


@pytest.mark.timeout(400)
def test_power_cuts_during_a_sync_never_record_a_copy_the_drive_lost(tmp_path: Path) -> None:
    """The drive is an ext4 image on powerfs behind a loop device (its flushes are powerfs
    fsyncs): register and drive lose power together, mid-sync."""
    from campaign import power_drive

    _needs()
    require_tool("mkfs.ext4")
    require_tool("losetup")
    result = power_drive.run_drive(tmp_path / "tree", seed=SEED, cuts=1, files=6)
    assert not result.violations, "\n".join(result.violations) + f"\nseed {SEED}"
    assert result.figures()["fired"] == 1


def test_a_temp_file_a_cut_left_in_the_state_folder_is_removed_at_start(daemon_factory) -> None:  # type: ignore[no-untyped-def]
    """A power cut (or a SIGKILL) between a state file's durable temp file and its rename (the
    heartbeat, rewritten all the time) left ``state/.naskahd-tmp-*`` behind for good: the
    campaign found them piling up. The next start removes them, and nothing else."""
    from naskahd import durable

    d = daemon_factory(start=False)
    orphan = d.state / f"{durable.TEMP_PREFIX}0123456789abcdef"
    orphan.write_bytes(b'{"running": true}'.ljust(4096))
    other = d.state / "notes.txt"
    other.write_text("a person's file")
    d.start()
    assert not orphan.exists()
    assert other.read_text() == "a person's file"
