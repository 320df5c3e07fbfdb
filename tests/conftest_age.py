"""Helpers for the age tests (not a pytest conftest: imported by name)."""

from __future__ import annotations

import os
import select
import time


def run_in_pty(argv: list[str], answers: list[bytes], timeout: float = 120) -> tuple[int, str]:
    """Run ``argv`` on a pseudo-terminal; answer each passphrase prompt with the next answer."""
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # child: the pty is its controlling terminal
        try:
            env = dict(os.environ, LANG="C.UTF-8", LANGUAGE="en")
            os.execvpe(argv[0], argv, env)
        finally:
            os._exit(127)
    output = b""
    answered = 0
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                output += data
            prompts = output.lower().count(b"passphrase")
            if answered < len(answers) and prompts > answered:
                # Only the prompt lines count; echoing is off, so answers never show up.
                time.sleep(0.05)
                os.write(fd, answers[answered] + b"\n")
                answered += 1
        else:
            os.kill(pid, 9)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), output.decode("utf-8", "replace")
