"""Issue 22's crash campaign: the real daemon SIGKILLed at every step, invariants after
every kill and restart (tests/campaign/crash.py).

Short form (CI): ≥ 30 kills, every aim at least once (each syscall from READY and at
start-up, each log event, random times, each call of a sync to a loop-mounted ext4 drive).
Long form: ``pytest --long tests/test_crash_campaign.py`` (≥ 300 kills), or
``bench/campaign_crash.py``. The seed is printed; ``NASKAHD_CRASH_SEED=S`` replays it.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from campaign import crash
from conftest import require_root, require_tool
from drives_fixtures import Drives, drives, udevd  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.system, pytest.mark.slow]

SHORT_ROUNDS = 30
LONG_ROUNDS = 320


def _seed() -> int:
    given = os.environ.get("NASKAHD_CRASH_SEED")
    return int(given) if given else random.SystemRandom().randrange(1, 1 << 31)


def _campaign(tmp_path: Path, drives: Drives, rounds: int, files_per_round: int, status_every: int) -> None:
    require_root()
    for tool in ("strace", "age", "age-keygen", "mkfs.ext4"):
        require_tool(tool)
    seed = _seed()
    lines: list[str] = []

    def log(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    result = crash.run(tmp_path / "campaign", seed=seed, rounds=rounds, files_per_round=files_per_round,
                       drives=drives, status_every=status_every, log=log)
    summary = result.summary()
    print(summary)
    replay = f"replay: NASKAHD_CRASH_SEED={seed} pytest {'--long ' if rounds > SHORT_ROUNDS else ''}tests/test_crash_campaign.py"
    assert not result.violations, "\n".join([replay, *result.violations, "", *lines[-40:]])
    assert summary["kills"] >= rounds
    # the aims reached what they aimed at: an aimed kill that never fires proves nothing
    assert summary["aimed_hits"] >= 0.75 * summary["kills"], (replay, summary)
    aims = {k.aim.split("#")[0] for k in result.kills}
    for syscall, _n in crash.RUN_AIMS:
        assert f"run:{syscall}" in aims
    for syscall, _n in crash.DRIVE_AIMS:
        assert f"drive:{syscall}" in aims
    steps = result.steps()
    assert any(s.startswith("drive") for s in steps), steps
    assert any(s.startswith("start-up") for s in steps), steps


@pytest.mark.timeout(4 * 3600)  # the long form; the short one takes about two minutes
def test_crash_campaign(tmp_path: Path, drives: Drives, request: pytest.FixtureRequest) -> None:
    if request.config.getoption("--long"):
        _campaign(tmp_path, drives, LONG_ROUNDS, 5, status_every=1)
    else:  # `naskahd status` after every third restart and at the end (each costs a second of CPU)
        _campaign(tmp_path, drives, SHORT_ROUNDS, 4, status_every=3)
