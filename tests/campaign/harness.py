"""The real daemon for the campaigns: ``python -m naskahd run`` as a subprocess on a tree,
optionally under strace with a SIGKILL injected at the N-th call of a system call.

    d = CampaignDaemon(cfg_path, logs=root / "logs", tmp=root / "tmp")
    d.start(inject=Inject("fsync", 7))   # strace -f -e inject=fsync:signal=KILL:when=7
    d.wait_ready(60)                      # READY=1 on our own $NOTIFY_SOCKET (sd_notify)
    d.wait_exit(10) / d.kill()            # SIGKILL to the daemon itself, never to strace
    health(cfg_path)                      # `naskahd status --json`: [] when healthy

The daemon's log (JSON lines) is appended to ``logs/daemon.log`` (searched for leaks) and
parsed as it comes; ``$TMPDIR`` is ``tmp`` (searched for leaks too). The strace output
(``-y``: descriptors shown with their paths) says which call was hit: ``killed_at``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def naskahd_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "naskahd", *args]


@dataclass(frozen=True)
class Inject:
    """SIGKILL at the ``when``-th call (per thread, as strace counts) of ``syscall``."""

    syscall: str
    when: int

    def describe(self) -> str:
        return f"{self.syscall}#{self.when}"


class Notify:
    """An abstract datagram socket standing in for systemd's ``$NOTIFY_SOCKET``."""

    def __init__(self) -> None:
        self.name = f"@naskahd-campaign-{secrets.token_hex(6)}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.bind("\0" + self.name[1:])
        self.messages: list[tuple[float, str]] = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            with self.cond:
                self.messages.append((time.monotonic(), data.decode("utf-8", "replace")))
                self.cond.notify_all()

    def ready_since(self, t0: float) -> float | None:
        with self.cond:
            for t, msg in self.messages:
                if t >= t0 and "READY=1" in msg.splitlines():
                    return t
        return None

    def close(self) -> None:
        self.sock.close()


class CampaignDaemon:
    def __init__(self, config: Path, *, logs: Path, tmp: Path, traces: Path | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.config = config
        self.logs, self.tmp = logs, tmp
        # strace's own output names exempt files: kept apart from the logs searched for leaks
        self.traces = traces or logs.parent / "traces"
        self.traces.mkdir(parents=True, exist_ok=True)
        logs.mkdir(parents=True, exist_ok=True)
        tmp.mkdir(parents=True, exist_ok=True)
        self.log_path = logs / "daemon.log"
        self.notify = Notify()
        self.env = {**os.environ, "LANG": "C.UTF-8", "LANGUAGE": "en", "TMPDIR": str(tmp),
                    "NOTIFY_SOCKET": self.notify.name, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.inject: Inject | None = None
        self.strace_out: Path | None = None
        self.started_at = 0.0
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.runs = 0

    # -- life ---------------------------------------------------------------------------------
    def start(self, inject: Inject | None = None) -> None:
        assert self.proc is None
        self.runs += 1
        with self._lock:
            self.events = []
        prefix: list[str] = []
        self.inject = inject
        if inject is not None:
            strace = shutil.which("strace")
            assert strace, "strace is not installed"
            self.strace_out = self.traces / f"strace-{self.runs}.txt"
            prefix = [strace, "-f", "-qq", "-y", "-o", str(self.strace_out),
                      "-e", f"trace={inject.syscall}", "-e", f"inject={inject.syscall}:signal=KILL:when={inject.when}"]
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            prefix + naskahd_cmd("--config", str(self.config), "run", "--log-format", "json"),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=self.env, cwd=self.config.parent,
        )
        threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stderr is not None
        with open(self.log_path, "ab") as log:
            for line in proc.stderr:
                log.write(line)
                log.flush()
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                with self._lock:
                    self.events.append(ev)

    def daemon_pid(self) -> int | None:
        """The naskahd process itself (under strace: strace's child)."""
        if self.proc is None or self.proc.poll() is not None:
            return None
        if self.inject is None:
            return self.proc.pid
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
            except OSError:
                return None
            if children:
                return int(children[0])
            time.sleep(0.01)
        return None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the daemon (never strace first: its tracee would be let go, not killed)."""
        if self.proc is None:
            return
        pid = self.daemon_pid()
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def wait_exit(self, timeout: float) -> bool:
        """True when the daemon died (an injected kill) within ``timeout``."""
        assert self.proc is not None
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        self.proc = None
        return True

    def stop(self) -> int:
        """SIGTERM, as systemd stops it; the exit code."""
        if self.proc is None:
            return 0
        pid = self.daemon_pid()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.kill()
            return -9
        self.proc = None
        return rc

    def wait_ready(self, timeout: float) -> float:
        """Seconds from the start to READY=1; AssertionError when it does not come."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            t = self.notify.ready_since(self.started_at)
            if t is not None:
                return t - self.started_at
            if self.proc is None or self.proc.poll() is not None:
                raise AssertionError(f"the daemon exited before READY=1:\n{self.log_tail()}")
            time.sleep(0.02)
        raise AssertionError(f"no READY=1 within {timeout}s:\n{self.log_tail()}")

    def close(self) -> None:
        if self.proc is not None:
            self.kill()
        self.notify.close()

    # -- what happened ------------------------------------------------------------------------
    def find(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self.events if e.get("event") == name]

    def wait_for(self, predicate: Callable[[], Any], timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = predicate()
            if got:
                return got
            if not self.alive():
                return None
            time.sleep(0.01)
        return None

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def killed_at(self) -> str | None:
        """The system call the injected SIGKILL hit, as strace printed it (paths via -y)."""
        if self.strace_out is None or not self.strace_out.exists():
            return None
        import re

        lines = self.strace_out.read_text(errors="replace").splitlines()
        for i, line in enumerate(lines):
            m = re.match(r"^(\d+)\s+(.*) = \?$", line)
            if not m:
                continue
            pid, call = m.groups()
            if not call.startswith("<..."):
                return call
            for earlier in reversed(lines[:i]):  # a call another thread's line interrupted
                if earlier.startswith(pid + " ") and earlier.endswith("<unfinished ...>"):
                    return earlier.split(None, 1)[1].removesuffix("<unfinished ...>").strip()
            return call
        return None


def status(config: Path, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    return status_started(config, env)()


def status_started(config: Path, env: dict[str, str] | None = None) -> Callable[[], tuple[int, dict[str, Any]]]:
    """`naskahd status --json` started now; the returned function waits for (exit code, JSON)."""
    proc = subprocess.Popen(naskahd_cmd("--config", str(config), "status", "--json"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "LANG": "C.UTF-8", "LANGUAGE": "en", **(env or {})})

    def result() -> tuple[int, dict[str, Any]]:
        out, err = proc.communicate(timeout=120)
        try:
            return proc.returncode, dict(json.loads(out))
        except ValueError:
            return proc.returncode, {"problems": [f"status printed no JSON: {err[-500:]}"]}

    return result


def health(config: Path, *, review_expected: bool = False) -> list[str]:
    """Why `naskahd status --json` does not show a healthy running daemon ([] when it does).
    Files the workload sent to review on purpose are allowed (``review_expected``)."""
    return judge(*status(config), review_expected=review_expected)


def judge(rc: int, st: dict[str, Any], *, review_expected: bool = False) -> list[str]:
    bad: list[str] = []
    if not st.get("daemon", {}).get("running"):
        bad.append("status: the daemon is not running")
    problems = [p for p in st.get("problems", []) if not (review_expected and p.startswith("needs review:"))]
    bad += [f"status: {p}" for p in problems]
    if not problems and rc not in (0, 1 if review_expected else 0):
        bad.append(f"status: exit code {rc}")
    return bad
