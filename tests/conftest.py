"""Shared fixtures: a real naskahd tree, the real daemon as a subprocess, system-tool gating."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI") == "true"


try:  # property-based tests (tests/test_properties.py): hypothesis is a [test] dependency
    from hypothesis import HealthCheck, settings as _hypothesis_settings

    # No per-example deadline: two shared, busy cores make timings noise. Under CI=true the
    # examples are derandomized (a failure replays as it is) and fewer; locally random.
    _hypothesis_settings.register_profile(
        "ci", derandomize=True, deadline=None, max_examples=60, print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    _hypothesis_settings.register_profile(
        "dev", deadline=None, max_examples=100, suppress_health_check=[HealthCheck.too_slow])
    _hypothesis_settings.register_profile(  # HYPOTHESIS_PROFILE=thorough: a long local hunt
        "thorough", deadline=None, max_examples=2000, suppress_health_check=list(HealthCheck))
    _hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if IN_CI else "dev"))
except ImportError:  # pragma: no cover - a venv without the [test] extra
    pass


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--long", action="store_true", default=False,
                     help="also run the full-size campaigns (10,000 files, a 4 GiB file, ...)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--long"):  # full-size runs (a 4 GiB file, 10,000 files) outlast the default timeout
        for item in items:
            item.add_marker(pytest.mark.timeout(3600))


@pytest.fixture
def long_run(request: pytest.FixtureRequest) -> bool:
    """True with ``--long``: a test runs at full size instead of its CI scale."""
    return bool(request.config.getoption("--long"))


def require(condition: bool, reason: str) -> None:
    """Skip when a system part is missing, except under CI=true, where that is a failure."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI=true but {reason}: .ci/run must install it")
    pytest.skip(reason)


def require_tool(name: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"{name} is not installed")
    return path  # type: ignore[return-value]


def require_root() -> None:
    require(os.geteuid() == 0, "needs root (loop devices, capabilities)")


def naskahd_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "naskahd", *args]


def write_config(
    root: Path,
    *,
    settle: float = 0.4,
    incomplete_after: float = 600,
    rescan: float = 60,
    content_check: bool = True,
    mode: str = "auto",
    recipients: list[str] | None = None,
    extra: str = "",
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    cfg = root / "naskahd.toml"
    cfg.write_text(
        f"""
[paths]
drop = "drop"
archive = "archive"
state = "state"

[office]
name = "Test office"
timezone = "Asia/Jakarta"

[watch]
mode = "{mode}"
settle_seconds = {settle}
incomplete_after_seconds = {incomplete_after}
rescan_seconds = {rescan}
content_check = {str(content_check).lower()}

[encryption]
recipients = {json.dumps(recipients or [])}
{extra}
""",
        encoding="utf-8",
    )
    for sub in ("drop/masuk", "drop/keluar", "drop/dikecualikan", "archive", "state"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    from naskahd import installation

    ident = installation.new_id()  # as `naskahd init` does (the configuration may be invalid on purpose)
    for role in installation.ROLES:
        installation.mark(root / role, role, ident)
    return cfg


class Daemon:
    """The real daemon process on a tree; its JSON log lines are collected as they come."""

    def __init__(self, root: Path, config: Path, prefix: list[str] | None = None, env: dict[str, str] | None = None) -> None:
        self.root, self.config = root, config
        self.prefix = prefix or []
        self.env = {**os.environ, "LANG": "C.UTF-8", **(env or {})}
        self.events: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self.proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    @property
    def drop(self) -> Path:
        return self.root / "drop"

    @property
    def archive(self) -> Path:
        return self.root / "archive"

    @property
    def state(self) -> Path:
        return self.root / "state"

    def start(self, wait: bool = True) -> Daemon:
        with self._lock:  # events of an earlier run must not satisfy this run's waits
            self.events, self.raw = [], []
        self.proc = subprocess.Popen(
            self.prefix + naskahd_cmd("--config", str(self.config), "run", "--log-format", "json"),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=self.env, cwd=self.root,
        )
        threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()
        if wait:
            self.wait_event("daemon.started", timeout=30)
            self.wait_event("drop.scanned", timeout=30)
        return self

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            text = line.decode("utf-8", "replace").rstrip("\n")
            with self._lock:
                self.raw.append(text)
                try:
                    self.events.append(json.loads(text))
                except ValueError:
                    pass

    def find(self, name: str, **fields: Any) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self.events if e.get("event") == name and all(e.get(k) == v for k, v in fields.items())]

    def wait_event(self, name: str, timeout: float = 30, count: int = 1, **fields: Any) -> dict[str, Any]:
        found = wait_until(lambda: len(self.find(name, **fields)) >= count, timeout, f"{count}× {name} {fields}", self)
        assert found
        return self.find(name, **fields)[count - 1]

    def log_text(self) -> str:
        with self._lock:
            return "\n".join(self.raw)

    def stop(self) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        return rc

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def cli(self, *args: str, check: bool = False, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            naskahd_cmd("--config", str(self.config), *args), capture_output=True, text=True,
            env={**self.env, **(env or {})}, check=check, timeout=120,
        )

    def status(self) -> dict[str, Any]:
        out = self.cli("status", "--json")
        return dict(json.loads(out.stdout))

    def documents(self) -> list[dict[str, Any]]:
        out = self.cli("list", "--json", check=True)
        return list(json.loads(out.stdout))


def noise(n: int) -> bytes:
    """``n`` random bytes that cannot be the start of a PDF still being written. A short file
    whose last bytes are ``%``, ``%P``, ``%PD`` or ``%PDF`` (after a newline, or any junk)
    may be junk before a ``%PDF-`` header not yet written: the completeness check rightly
    waits for it (and sends it to review after ``incomplete_after``). Random bytes end so in
    about 3 of 65,536 files: one in three --long runs of test_hostile_input (10,000
    files at once) and one in eleven of test_daemon's burst of 2,000 waited for one."""
    return os.urandom(n - 1) + b"\n"


def wait_until(predicate: Callable[[], Any], timeout: float, what: str = "condition", daemon: Daemon | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if daemon is not None and daemon.proc is not None and daemon.proc.poll() is not None:
            raise AssertionError(f"daemon exited ({daemon.proc.returncode}) waiting for {what}:\n{daemon.log_text()[-4000:]}")
        time.sleep(0.05)
    log = daemon.log_text()[-4000:] if daemon else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{log}")


@pytest.fixture(autouse=True)
def _test_process_keeps_its_core_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """``naskahd.cli.main`` turns core dumps off for good (hardening.py). Tests that call it
    in-process would do that to pytest and to everything it starts later, and
    tests/test_hardening.py could no longer tell a process that turned them off from one
    that never had them. Subprocesses are not affected: they run the real thing."""
    monkeypatch.setattr("naskahd.hardening.no_core_dumps", lambda: None)


@pytest.fixture
def tree(tmp_path: Path) -> Callable[..., Path]:
    def make(**kwargs: Any) -> Path:
        return write_config(tmp_path / "naskahd", **kwargs)

    return make


@pytest.fixture
def daemon_factory(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    started: list[Daemon] = []

    def make(config: Path | None = None, *, start: bool = True, **kwargs: Any) -> Daemon:
        cfg = config or write_config(tmp_path / "naskahd", **kwargs)
        d = Daemon(cfg.parent, cfg)
        started.append(d)
        return d.start() if start else d

    yield make
    for d in started:
        d.stop()


def all_files(folder: Path) -> list[Path]:
    """Every file below ``folder``, but naskahd's own markers of an installation's roots."""
    from naskahd.config import ROOT_MARKER, ROOT_OWNER

    return sorted(p for p in folder.rglob("*") if (p.is_file() or p.is_symlink()) and p.name not in (ROOT_MARKER, ROOT_OWNER))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--long", action="store_true", default=False,
                     help="run the long forms of the campaigns (issue 22): hundreds of kills, minutes each")
