"""A seeded mix of real scans to drop: inbound, outbound and exempt letters, small and
multi-megabyte, some written slowly, some renamed in, a few duplicates and strays for review.

    items = generate(seed, 40)
    dropper = drop(items, cfg_root / "drop", staging=cfg_root / "staging", seed=seed)
    dropper.wait()                       # the slow writers finish
    check(..., dropped=expected(items), exempt_markers=markers(items))

Every file is a complete PDF (``tests/pdfs.py``: a real cross-reference table), so the
content check takes it once whole and never before. Each exempt plaintext carries a random
marker (``MARKER_PREFIX`` + hex) in clear, and its name another, for the leak search.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pdfs

MARKER_PREFIX = b"NSKSECRET"  # never in random bytes of the ordinary scans (checked)
FOLDERS = {"inbound": "masuk", "outbound": "keluar", "exempt": "dikecualikan"}


@dataclass
class Item:
    relpath: str  # where it ends up, relative to the drop folder
    data: bytes
    kind: str  # inbound | outbound | exempt | review | duplicate
    how: str  # plain | slow | part (written as .part, renamed) | moved (written outside, renamed in)
    markers: tuple[bytes, ...] = ()  # exempt: the content's and the name's markers
    done: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)


def marker(rng: random.Random) -> bytes:
    return MARKER_PREFIX + rng.randbytes(10).hex().encode()


def scan_pdf(rng: random.Random, size: int, secret: bytes = b"") -> bytes:
    """A complete PDF of about ``size`` bytes: a page tree and one stream of random bytes
    (a scanned image's weight); ``secret`` in clear in the page's text."""
    objects = pdfs.page_tree(rng.randint(1, 3))
    n = max(objects) + 1
    filler = rng.randbytes(max(0, size - 900))
    while MARKER_PREFIX in filler:  # an ordinary scan must never look like a leak
        filler = rng.randbytes(len(filler))
    objects[n] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(filler), filler)
    if secret:
        text = b"BT /F1 12 Tf 72 700 Td (RAHASIA " + secret + b") Tj ET"
        objects[n + 1] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text)
    return pdfs.build(objects, xref="table")


def _size(rng: random.Random, big_share: float, big_mb: float) -> int:
    if rng.random() < big_share:
        return int(rng.uniform(1.0, big_mb) * (1 << 20))
    return rng.randint(2_000, 200_000)


def generate(seed: int, n: int, *, big_share: float = 0.08, big_mb: float = 4.0, slow_share: float = 0.1,
             rename_share: float = 0.2, exempt_share: float = 0.25, duplicate_share: float = 0.05,
             review_share: float = 0.03, prefix: str = "") -> list[Item]:
    """``n`` files, the same for the same seed. ``prefix`` keeps names of several rounds apart."""
    rng = random.Random(seed)
    items: list[Item] = []
    for i in range(n):
        roll = rng.random()
        how_roll = rng.random()
        how = "slow" if how_roll < slow_share else (rng.choice(["part", "moved"]) if how_roll < slow_share + rename_share else "plain")
        stem = f"{prefix}{i:04d} surat {rng.randbytes(3).hex()}"
        if roll < duplicate_share and items:
            first = rng.choice([x for x in items if x.kind in ("inbound", "outbound")] or [items[0]])
            if first.kind in ("inbound", "outbound"):
                items.append(Item(f"{FOLDERS[first.kind]}/{stem} salinan.pdf", first.data, "duplicate", how))
                continue
        if roll < duplicate_share + review_share:
            items.append(Item(f"{stem} tanpa folder.pdf", scan_pdf(rng, _size(rng, 0, big_mb)), "review", how))
            continue
        if roll < duplicate_share + review_share + exempt_share:
            secret, name_secret = marker(rng), marker(rng)
            data = scan_pdf(rng, _size(rng, big_share, big_mb), secret)
            rel = f"dikecualikan/{prefix}{i:04d} {name_secret.decode()}.pdf"
            items.append(Item(rel, data, "exempt", how, (secret, name_secret)))
            continue
        kind = "inbound" if rng.random() < 0.6 else "outbound"
        sub = rng.choice(["", "", "", "scanner-2/"])
        items.append(Item(f"{FOLDERS[kind]}/{sub}{stem}.pdf", scan_pdf(rng, _size(rng, big_share, big_mb)), kind, how))
    return items


def expected(items: Sequence[Item]) -> dict[str, list[bytes]]:
    """``dropped`` for ``invariants.check`` (a path used twice maps to both contents)."""
    out: dict[str, list[bytes]] = {}
    for it in items:
        out.setdefault(it.relpath, []).append(it.data)
    return out


def markers(items: Sequence[Item]) -> list[bytes]:
    return [m for it in items for m in it.markers]


class Dropper:
    """Writes the items; slow ones on threads (a chunk, a pause shorter than the settle time)."""

    def __init__(self, items: Sequence[Item], drop: Path, staging: Path, seed: int, pause: float = 0.15) -> None:
        self.items, self.drop, self.staging = list(items), drop, staging
        self.rng = random.Random(seed ^ 0x5EED)
        self.pause = pause
        self.threads: list[threading.Thread] = []

    def run(self) -> Dropper:
        self.staging.mkdir(parents=True, exist_ok=True)
        for it in self.items:
            if it.how == "slow":
                t = threading.Thread(target=self._slow, args=(it, self.rng.randint(3, 8)), daemon=True)
                t.start()
                self.threads.append(t)
            else:
                self._write(it)
        return self

    def _target(self, it: Item) -> Path:
        path = self.drop / it.relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def _write(self, it: Item) -> None:
        path = self._target(it)
        if it.how == "part":
            tmp = path.with_name(path.name + ".part")  # ignored (`*.part`) until renamed
            tmp.write_bytes(it.data)
            os.rename(tmp, path)
        elif it.how == "moved":
            tmp = self.staging / f"{os.getpid()}-{id(it)}"
            tmp.write_bytes(it.data)
            os.rename(tmp, path)
        else:
            path.write_bytes(it.data)
        it.done.set()

    def _slow(self, it: Item, pieces: int) -> None:
        path = self._target(it)
        step = max(1, len(it.data) // pieces)
        with open(path, "wb") as f:
            for at in range(0, len(it.data), step):
                f.write(it.data[at:at + step])
                f.flush()
                time.sleep(self.pause)
        it.done.set()

    def wait(self, timeout: float = 120) -> None:
        for t in self.threads:
            t.join(timeout)


def drop(items: Sequence[Item], drop_dir: Path, *, staging: Path, seed: int, pause: float = 0.15) -> Dropper:
    return Dropper(items, drop_dir, staging, seed, pause).run()
