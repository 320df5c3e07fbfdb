"""Issue 15 item 10: no naskahd process can dump core (early copies' plaintext, file keys).

Every process is started here with core dumps explicitly allowed (soft and hard
RLIMIT_CORE raised, dumpable 1, checked), so the tests fail when naskahd does not turn
them off itself, whatever this machine's defaults are.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Daemon, write_config

# Execs its arguments with core dumps allowed: the hard limit raised when permitted
# (root), else the soft limit raised to the hard one.
ALLOW_CORES = [sys.executable, "-c", (
    "import os, resource, sys\n"
    "try:\n"
    "    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))\n"
    "except (ValueError, OSError):\n"
    "    hard = resource.getrlimit(resource.RLIMIT_CORE)[1]\n"
    "    resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))\n"
    "os.execvp(sys.argv[1], sys.argv[1:])\n"
)]

REPORT = (
    "import resource, sys\n"
    "from naskahd import hardening\n"
    "before = (hardening.dumpable(), resource.getrlimit(resource.RLIMIT_CORE))\n"
    "if sys.argv[1] == 'main':\n"
    "    from naskahd.cli import main\n"
    "    try:\n"
    "        main(['--version'])\n"
    "    except SystemExit:\n"
    "        pass\n"
    "print((before, (hardening.dumpable(), resource.getrlimit(resource.RLIMIT_CORE))))\n"
)


def core_limits(pid: int) -> tuple[str, str]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max core file size"):
            soft, hard = line.split()[4:6]
            return soft, hard
    raise AssertionError(f"no core limit line in /proc/{pid}/limits")


def report(mode: str) -> tuple[tuple[int, tuple[int, int]], tuple[int, tuple[int, int]]]:
    done = subprocess.run([*ALLOW_CORES, sys.executable, "-c", REPORT, mode], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    before, after = eval(done.stdout.splitlines()[-1])  # noqa: S307 - our own repr of ints and tuples
    assert before[0] == 1 and before[1][0] != 0, f"precondition: the child starts dumpable with cores allowed: {before}"
    return before, after


def test_the_cli_entry_point_turns_core_dumps_off() -> None:
    _before, after = report("plain")
    assert after[0] == 1  # nothing but naskahd.cli.main turns them off
    _before, after = report("main")
    assert after == (0, (0, 0)), "naskahd.cli.main must set PR_SET_DUMPABLE 0 and RLIMIT_CORE (0, 0)"


@pytest.mark.system
def test_the_running_daemon_has_core_size_zero(tmp_path: Path) -> None:
    probe = subprocess.run([*ALLOW_CORES, "sh", "-c", "ulimit -c"], capture_output=True, text=True, timeout=30)
    assert probe.stdout.strip() not in ("", "0"), f"precondition: cores allowed in the child ({probe.stdout!r})"
    cfg = write_config(tmp_path / "naskahd")
    d = Daemon(cfg.parent, cfg, prefix=ALLOW_CORES)
    try:
        d.start()
        assert d.proc is not None
        assert core_limits(d.proc.pid) == ("0", "0")
    finally:
        d.stop()

