"""systemd's notify protocol (sd_notify(3)), spoken directly: one datagram per message.

``$NOTIFY_SOCKET`` is a path or, starting with ``@``, an abstract socket. Without it (run
by hand, or under another supervisor) every call is a no-op. ``WATCHDOG_USEC`` (and
``WATCHDOG_PID``, when set, naming this process) turns on the watchdog: ``tick()`` pings
at half that interval. The pings come from the main loop only, so a loop stuck anywhere,
including waiting on a helper thread that hangs, stops them and systemd restarts the
service. The variables are removed from the environment, so that children (smbstatus)
do not talk to systemd in naskahd's name.
"""

from __future__ import annotations

import os
import socket
import time

from naskahd.log import get_logger


class Notifier:
    def __init__(self, environ: dict[str, str] | None = None, *, unset: bool = True) -> None:
        env = os.environ if environ is None else environ
        self.address = _address(env.get("NOTIFY_SOCKET", ""))
        self.interval: float | None = None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.interval = int(usec) / 2e6
        if unset and environ is None:
            for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
                os.environ.pop(name, None)
        self._sock: socket.socket | None = None
        self._next_ping = 0.0
        self._status = ""
        self._warned = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *fields: str) -> bool:
        """Send ``KEY=value`` lines in one datagram. False if there is no socket or it failed."""
        if self.address is None:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto("\n".join(fields).encode("utf-8"), self.address)
            return True
        except OSError as exc:
            if not self._warned:  # once: the daemon files on whether systemd hears or not
                get_logger("notify").warning("notify.failed", error=exc.strerror or str(exc))
                self._warned = True
            return False

    def ready(self, status: str | None = None) -> None:
        self.send("READY=1", *self._status_field(status))
        self._next_ping = 0.0

    def reloading(self) -> None:
        # MONOTONIC_USEC lets systemd ≥ 253 (Type=notify-reload) match this to the request.
        self.send("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")

    def stopping(self) -> None:
        self.send("STOPPING=1")

    def status(self, text: str) -> None:
        """STATUS= only when it changed (``systemctl status`` shows the newest)."""
        if text != self._status:
            self.send(*self._status_field(text))

    def _status_field(self, text: str | None) -> list[str]:
        if text is None:
            return []
        self._status = text.replace("\n", " ")
        return [f"STATUS={self._status}"]

    def tick(self, now: float | None = None) -> None:
        """From the main loop, as often as it likes: WATCHDOG=1 at half the interval."""
        if self.interval is None:
            return
        now = time.monotonic() if now is None else now
        if now >= self._next_ping:
            self.send("WATCHDOG=1")
            self._next_ping = now + self.interval

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _address(value: str) -> str | bytes | None:
    if not value or value[0] not in "/@":
        return None
    if value[0] == "@":
        return b"\0" + value[1:].encode()  # abstract namespace
    return value
