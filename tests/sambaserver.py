"""A private, real Samba server for tests, and clients that write to it like a scanner does.

``SambaServer`` runs its own ``smbd`` in the foreground on a free loopback port, with every
directory Samba writes (private, lock, state, cache, pid, ncalrpc, logs) under ``workdir``,
so it never touches the machine's own Samba and leaves nothing behind. It exports one
share, ``drop``, pointing at ``share_dir`` (or, given ``share_section``, exactly that
section, e.g. the shipped ``etc/samba/naskahd.conf``, see ``shipped_share``); a user (the current Unix user, normally root)
gets a random password in a private passdb, and guests are mapped to that same user so
``smbclient -N`` works too.

Writers:
  * ``smb_put``: the real ``smbclient`` CLI (``put``), as a person copying a file would.
  * ``smb_write_paced``: smbprotocol, one open handle written piece by piece with pauses,
    as a network scanner writes a multi-page PDF page by page.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

SHARE = "drop"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def missing_tools() -> list[str]:
    return [t for t in ("smbd", "smbclient", "smbpasswd") if _which(t) is None]


def _which(tool: str) -> str | None:
    # smbd lives in /usr/sbin, which a non-login PATH may lack.
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin:/usr/bin")


class SambaServer:
    """``with SambaServer(share, work) as srv:`` -- a running smbd serving ``share`` as //127.0.0.1/drop."""

    def __init__(self, share_dir: Path, workdir: Path, *, start_timeout: float = 20.0, share_section: str | None = None) -> None:
        self.share_dir = Path(share_dir).resolve()
        self.workdir = Path(workdir).resolve()
        self.start_timeout = start_timeout
        self.host = "127.0.0.1"
        self.port = 0
        self.user = pwd.getpwuid(os.geteuid()).pw_name
        self.password = secrets.token_hex(12)
        self.conf = self.workdir / "smb.conf"
        self.proc: subprocess.Popen[bytes] | None = None
        self.share_section = share_section
        self.share = SHARE
        if share_section is not None:
            self.share = share_section.split("[", 1)[1].split("]", 1)[0]

    # -- configuration ---------------------------------------------------------------------
    def _dirs(self) -> dict[str, Path]:
        return {name: self.workdir / name for name in ("private", "lock", "state", "cache", "pid", "ncalrpc", "log", "binddns")}

    def write_config(self) -> Path:
        d = self._dirs()
        for path in d.values():
            path.mkdir(parents=True, exist_ok=True)
        d["private"].chmod(0o700)
        self.conf.write_text(
            f"""[global]
    server role = standalone server
    workgroup = NASKAHTEST
    netbios name = NASKAHTEST
    smb ports = {self.port}
    interfaces = 127.0.0.1
    bind interfaces only = yes
    disable netbios = yes
    private dir = {d['private']}
    lock directory = {d['lock']}
    state directory = {d['state']}
    cache directory = {d['cache']}
    pid directory = {d['pid']}
    ncalrpc dir = {d['ncalrpc']}
    binddns dir = {d['binddns']}
    passdb backend = tdbsam:{d['private']}/passdb.tdb
    log file = {d['log']}/log.%m
    logging = file
    log level = 1
    max log size = 0
    load printers = no
    printing = bsd
    printcap name = /dev/null
    disable spoolss = yes
    usershare path =
    server min protocol = SMB2_02
    map to guest = Bad User
    guest account = {self.user}
    kernel oplocks = no
    kernel share modes = no

""" + (self.share_section if self.share_section is not None else f"""[{SHARE}]
    path = {self.share_dir}
    read only = no
    guest ok = yes
    create mask = 0644
"""),
            encoding="utf-8",
        )
        return self.conf

    def _add_user(self) -> None:
        smbpasswd = _which("smbpasswd")
        assert smbpasswd is not None
        subprocess.run(
            [smbpasswd, "-c", str(self.conf), "-a", "-s", self.user],
            input=f"{self.password}\n{self.password}\n".encode(), check=True, capture_output=True, timeout=30,
        )

    # -- life cycle --------------------------------------------------------------------------
    def start(self) -> SambaServer:
        smbd = _which("smbd")
        if smbd is None:
            raise FileNotFoundError("smbd is not installed")
        self.share_dir.mkdir(parents=True, exist_ok=True)
        last_error = ""
        for _attempt in range(3):  # the free port can be taken between probe and bind
            self.port = free_port()
            self.write_config()
            self._add_user()
            log = open(self.workdir / "smbd.stdout", "ab")  # noqa: SIM115 - owned by the child
            self.proc = subprocess.Popen(
                [smbd, "--foreground", "--no-process-group", "--debug-stdout", f"--configfile={self.conf}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() kills smbd and its children
            )
            log.close()
            if self._wait_listening():
                return self
            last_error = self.log_tail()
            self.stop()
        raise RuntimeError(f"smbd did not start listening on 127.0.0.1:\n{last_error}")

    def _wait_listening(self) -> bool:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                return False
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), timeout=0.5):
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        # smbd forks one child per connection (and helpers); they share its process group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        # Children may outlive the parent briefly; make sure the group is gone.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

    def __enter__(self) -> SambaServer:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def log_tail(self, chars: int = 4000) -> str:
        parts = []
        for f in [self.workdir / "smbd.stdout", *sorted((self.workdir / "log").glob("log.*"))]:
            with contextlib.suppress(OSError):
                parts.append(f"== {f.name}\n" + f.read_text(errors="replace")[-chars:])
        return "\n".join(parts)

    @property
    def unc(self) -> str:
        return f"//{self.host}/{self.share}"

    def smbstatus(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``smbstatus`` against this server's private lock database."""
        tool = _which("smbstatus") or "smbstatus"
        return subprocess.run([tool, f"--configfile={self.conf}", *args], capture_output=True, text=True, timeout=30)


# -- clients -----------------------------------------------------------------------------------
def smb_put(server: SambaServer, remote_path: str, local_file: Path, *, guest: bool = False) -> None:
    """Copy ``local_file`` to ``remote_path`` (relative to the share) with the smbclient CLI."""
    tool = _which("smbclient")
    assert tool is not None
    remote_dir, _, name = remote_path.replace("\\", "/").rpartition("/")
    commands = (f'cd "{remote_dir}"; ' if remote_dir else "") + f'put "{local_file}" "{name}"'
    auth = ["-N"] if guest else ["-U", f"{server.user}%{server.password}"]
    out = subprocess.run(
        [tool, server.unc, "-p", str(server.port), *auth, "-m", "SMB3", "-c", commands],
        capture_output=True, text=True, timeout=60,
    )
    # smbclient exits 0 even when a command fails; it reports NT_STATUS_* on stdout/stderr.
    if out.returncode != 0 or "NT_STATUS_" in out.stdout + out.stderr:
        raise OSError(f"smbclient put failed ({out.returncode}): {out.stdout}{out.stderr}")


def _unc_path(server: SambaServer, remote_path: str) -> str:
    return rf"\\{server.host}\{server.share}" + "\\" + remote_path.replace("/", "\\").lstrip("\\")


@contextlib.contextmanager
def smb_session(server: SambaServer) -> Iterator[None]:
    """An smbprotocol session to ``server``; torn down on exit so smbd's child can end."""
    import smbclient  # smbprotocol's high-level module (not the CLI)

    smbclient.register_session(server.host, username=server.user, password=server.password, port=server.port)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            smbclient.delete_session(server.host, port=server.port)


def smb_write_paced(
    server: SambaServer, remote_path: str, chunks: list[bytes], pause: float, *, after_chunk: object = None
) -> None:
    """Write ``chunks`` to ``remote_path`` through ONE open SMB handle, pausing between them.

    The handle stays open throughout, as a scanner keeps its file open between pages.
    ``after_chunk(i)`` (optional callable) runs after chunk ``i`` was flushed, handle still open.
    """
    import smbclient

    with smb_session(server), smbclient.open_file(
        _unc_path(server, remote_path), mode="wb", port=server.port, buffering=0
    ) as f:
        for i, chunk in enumerate(chunks):
            f.write(chunk)
            f.flush()  # SMB2 FLUSH: on the server's disk before the pause
            if callable(after_chunk):
                after_chunk(i)
            if i < len(chunks) - 1:
                time.sleep(pause)


def shipped_share(path: Path, drop: Path, user: str, group: str) -> str:
    """The share section of the shipped ``etc/samba/naskahd.conf``, exactly, with only its
    folder and its user and group names mapped to this test's (``path``, ``force user``,
    ``force group``, ``valid users``): the service's user and the staff group do not exist
    on a test machine."""
    text = path.read_text(encoding="utf-8")
    section = text[text.index("\n["):].lstrip("\n")
    section = section.replace("/srv/naskahd/drop", str(drop))
    section = section.replace("force user = naskahd", f"force user = {user}")
    return section.replace("naskahd-staff", group)
