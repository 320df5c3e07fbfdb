"""The status socket: `naskahd status` and `list` for people who may not read the state.

Archive and state are readable by the service's user only. A member of the readers group
(``naskahd-status``) asks the running daemon instead, over a Unix socket the daemon makes
group-writable for that group (connecting needs write permission on the socket file, so
the kernel, not naskahd, decides who may ask). A non-member is refused by the kernel and
told how to join. The daemon answers from the same code the commands run locally
(``status_cmd.gather``, ``list_cmd.rows``); exempt letters' names are withheld as always,
and ``--identity`` is refused over the socket (the identity would have to travel).

Where: ``$NASKAHD_STATUS_SOCKET``; else the daemon binds ``$RUNTIME_DIRECTORY/status.sock``
(systemd's ``RuntimeDirectory=naskahd``: ``/run/naskahd/status.sock``), or
``state/status.sock`` when run by hand; the commands try ``/run/naskahd/status.sock``,
then ``state/status.sock``.

Protocol: one JSON object per connection each way: ``{"command": "status"}`` or
``{"command": "list", "category": ..., "since": ...}`` → ``{"ok": true, "result": ...}``
or ``{"ok": false, "error": "..."}``.
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import socket
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from naskahd.errors import EXIT_NOT_RUNNING, NaskahdError
from naskahd.i18n import N_, _
from naskahd.log import get_logger

if TYPE_CHECKING:
    from naskahd.config import Config

READERS_GROUP = "naskahd-status"
SOCKET_NAME = "status.sock"
SYSTEM_SOCKET = Path("/run/naskahd") / SOCKET_NAME
MAX_REQUEST = 4096


class NotAllowed(NaskahdError):
    message = N_("you may not read naskahd's status ({detail}): ask an administrator to add you to the "
                 "{group} group (usermod -aG {group} USER, then log in again), or run it as root")


class NotRunning(NaskahdError):
    message = N_("naskahd is not running (no status socket at {path}); start it: systemctl start naskahd")
    exit_code = EXIT_NOT_RUNNING


def server_path(cfg: Config) -> Path:
    env = os.environ.get("NASKAHD_STATUS_SOCKET")
    if env:
        return Path(env)
    runtime = os.environ.get("RUNTIME_DIRECTORY")
    if runtime:
        return Path(runtime.split(":")[0]) / SOCKET_NAME
    return cfg.state / SOCKET_NAME


def client_paths(cfg: Config) -> list[Path]:
    env = os.environ.get("NASKAHD_STATUS_SOCKET")
    return [Path(env)] if env else [SYSTEM_SOCKET, cfg.state / SOCKET_NAME]


def needs_socket(cfg: Config) -> bool:
    """True when the state folder is there but this user may not read it (or the register).
    A missing one is the local commands' to explain (installation.py)."""
    try:
        os.stat(cfg.state)
    except PermissionError:
        return True
    except OSError:
        return False
    if not os.access(cfg.state, os.R_OK | os.X_OK):
        return True
    try:
        return not os.access(cfg.register_path, os.R_OK) and cfg.register_path.exists()
    except PermissionError:
        return True


def ask(cfg: Config, request: dict[str, Any], timeout: float = 30.0) -> Any:
    """Send ``request`` to the daemon; its result, or NotAllowed / NotRunning / NaskahdError."""
    tried = client_paths(cfg)
    for path in tried:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as s:
                s.settimeout(timeout)
                s.connect(str(path))
                s.sendall(json.dumps(request).encode() + b"\n")
                s.shutdown(socket.SHUT_WR)
                data = b"".join(iter(lambda: s.recv(65536), b""))
        except PermissionError as exc:
            raise NotAllowed(exc.strerror or "", group=READERS_GROUP) from None
        except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError):
            continue
        except OSError as exc:
            raise NaskahdError(_("the daemon did not answer on {path}: {error}").format(path=path, error=exc.strerror or exc)) from None
        try:
            answer = json.loads(data)
        except ValueError:
            raise NaskahdError(_("the daemon's answer on {path} was not understood").format(path=path)) from None
        if not answer.get("ok"):
            raise NaskahdError(str(answer.get("error", "?")))
        return answer["result"]
    raise NotRunning(path=" / ".join(str(p) for p in tried))


class StatusServer:
    """A helper thread answering one request at a time; ``config`` is read at each request."""

    def __init__(self, get_config: Any) -> None:
        self.get_config = get_config
        self.log = get_logger("statusd")
        self.path: Path | None = None
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        path = server_path(self.get_config())
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            with contextlib.suppress(FileNotFoundError):
                if path.is_socket():
                    path.unlink()  # left by a daemon killed earlier (the instance lock is ours)
            sock.bind(str(path))
            mode = 0o600
            with contextlib.suppress(KeyError, PermissionError):
                os.chown(path, -1, grp.getgrnam(READERS_GROUP).gr_gid)
                mode = 0o660
            os.chmod(path, mode)
            sock.listen(8)
        except OSError as exc:
            sock.close()
            self.log.warning("statusd.unavailable", path=str(path), error=exc.strerror or str(exc))
            return False
        self.path, self._sock = path, sock
        self._thread = threading.Thread(target=self._serve, name="naskahd-statusd", daemon=True)
        self._thread.start()
        self.log.info("statusd.listening", path=str(path), group=READERS_GROUP if mode == 0o660 else None)
        return True

    def stop(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()

    def _serve(self) -> None:
        while self._sock is not None:
            try:
                conn, _addr = self._sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(10)
                try:
                    answer = {"ok": True, "result": self.answer(_read_request(conn))}
                except NaskahdError as exc:
                    answer = {"ok": False, "error": exc.render()}
                except Exception as exc:  # one bad request must not end the thread
                    self.log.error("statusd.failed", error=str(exc))
                    answer = {"ok": False, "error": str(exc)}
                with contextlib.suppress(OSError):
                    conn.sendall(json.dumps(answer, ensure_ascii=False).encode())

    def answer(self, request: dict[str, Any]) -> Any:
        cfg = self.get_config()
        command = request.get("command")
        if command == "status":
            from naskahd.cli.status_cmd import gather

            return gather(cfg)
        if command == "list":
            from naskahd.cli.list_cmd import rows

            text = {k: v if isinstance(v := request.get(k), str) else None for k in ("category", "since", "until")}
            return rows(cfg, text["category"], text["since"], None, text["until"])
        raise NaskahdError(_("unknown request {command!r}").format(command=command))


def _read_request(conn: socket.socket) -> dict[str, Any]:
    data = b""
    while len(data) <= MAX_REQUEST:
        chunk = conn.recv(MAX_REQUEST)
        if not chunk:
            break
        data += chunk
    try:
        request = json.loads(data)
    except ValueError:
        raise NaskahdError(_("the request was not understood")) from None
    if not isinstance(request, dict):
        raise NaskahdError(_("the request was not understood"))
    return request
