"""Failed logins, slowed down and then refused, per account and per address.

Kept in the web process's memory: an attacker's guesses then cost no register writes (the
daemon keeps its write lock to itself), and a restart of the service, which only root can
do, is the administrator's own decision to clear them. Every failure is also in the audit
trail. After ``SLOW_AFTER`` failures in ``WINDOW`` each further attempt waits, doubling
from ``FIRST_DELAY`` seconds; after ``ACCOUNT_LIMIT`` failures for one account, or
``ADDRESS_LIMIT`` from one address, attempts are refused until the window has passed.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque

WINDOW = 15 * 60.0
SLOW_AFTER = 2
FIRST_DELAY = 0.25
MAX_DELAY = 8.0
ACCOUNT_LIMIT = 6
ADDRESS_LIMIT = 20


class Throttle:
    def __init__(self, clock=time.monotonic) -> None:  # type: ignore[no-untyped-def]
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def _count(self, key: str) -> int:
        q = self._failures.get(key)
        if not q:
            return 0
        horizon = self._clock() - WINDOW
        while q and q[0] < horizon:
            q.popleft()
        if not q:
            del self._failures[key]
            return 0
        return len(q)

    def check(self, account: str, address: str) -> tuple[bool, float, float]:
        """(refused, seconds to wait before trying the password, seconds until allowed again)."""
        with self._lock:
            by_account, by_address = self._count("u:" + account.lower()), self._count("a:" + address)
            if by_account >= ACCOUNT_LIMIT or by_address >= ADDRESS_LIMIT:
                keys = [k for k, n, lim in (("u:" + account.lower(), by_account, ACCOUNT_LIMIT),
                                            ("a:" + address, by_address, ADDRESS_LIMIT)) if n >= lim]
                retry = max(self._failures[k][0] + WINDOW - self._clock() for k in keys)
                return True, 0.0, max(retry, 1.0)
            n = max(by_account, by_address - ADDRESS_LIMIT // 2)
            delay = 0.0 if n < SLOW_AFTER else min(FIRST_DELAY * 2 ** (n - SLOW_AFTER), MAX_DELAY)
            return False, delay, 0.0

    def failed(self, account: str, address: str) -> None:
        now = self._clock()
        with self._lock:
            self._failures["u:" + account.lower()].append(now)
            self._failures["a:" + address].append(now)
            if len(self._failures) > 100_000:  # a flood of made-up names: forget the oldest
                for key in list(self._failures)[:50_000]:
                    del self._failures[key]

    def succeeded(self, account: str) -> None:
        with self._lock:
            self._failures.pop("u:" + account.lower(), None)
