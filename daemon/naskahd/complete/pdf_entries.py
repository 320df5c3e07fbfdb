"""The entries of a PDF's cross-reference chain, kept as the rows the file holds.

An entry is (type, field 2, field 3) as in a cross-reference stream (PDF 1.7 §7.5.8.3
Table 18): 0 free, 1 (offset, generation), 2 (object stream, index). Sections are added
newest first and the newest entry of a number wins (§7.5.6). Rows are decoded when asked
for, not all turned into Python objects: a table of 500,000 objects costs its bytes (20 a
row), not a dictionary of tuples.
"""

from __future__ import annotations

import bisect
import heapq
import re
from collections.abc import Iterator

Entry = tuple[int, int, int]
_DIGITS = b"0123456789"
_ROWS20 = re.compile(rb"(?:\d{10} \d{5} [nf](?: \r| \n|\r\n|\r\r))*")
_FREE = (0, 0, 0)
MERGE_ABOVE = 16  # sections: up to this many are read in place, more are merged into a dictionary


class _Table:
    """A classic subsection of 20-byte rows (§7.5.4), checked as a whole (``valid``)."""

    def __init__(self, first: int, count: int, block: bytes) -> None:
        self.first, self.count, self.block = first, count, block

    @staticmethod
    def valid(block: bytes, count: int) -> bool:
        """``count`` rows of ``nnnnnnnnnn ggggg n`` and a two-byte line end, by columns."""
        if len(block) != 20 * count:
            return False
        if count < 256:  # one regex is quicker than fifteen column checks on a small table
            return _ROWS20.fullmatch(block) is not None
        spaces = b" " * count
        if block[10::20] != spaces or block[16::20] != spaces:
            return False
        if block[17::20].translate(None, b"nf") or block[18::20].translate(None, b" \r"):
            return False
        if block[19::20].translate(None, b"\r\n"):
            return False
        return not any(block[j::20].translate(None, _DIGITS) for j in (*range(10), *range(11, 16)))

    def get(self, num: int) -> Entry | None:
        k = num - self.first
        if not 0 <= k < self.count:
            return None
        return self._row(k)

    def _row(self, k: int) -> Entry:
        b = self.block
        i = 20 * k
        return (1, int(b[i : i + 10]), int(b[i + 11 : i + 16])) if b[i + 17] == 110 else _FREE

    def items(self) -> Iterator[tuple[int, Entry]]:
        for k in range(self.count):
            yield self.first + k, self._row(k)

    def compressed(self) -> Iterator[tuple[int, Entry]]:
        return iter(())  # a table lists no compressed objects

    def sample(self, spread: int, last: int) -> list[tuple[int, int, int]]:
        """``Entries.sample_in_use`` for one table, without decoding every row: the spread
        rows by position; the highest offsets by comparing the rows' zero-padded digits."""
        b, types = self.block, self.block[17::20]
        if types.count(b"n") <= spread + last:
            return list(self.in_use())
        picked, step = [], self.count / spread
        for i in range(spread):
            k = types.find(b"n", int(i * step))
            if k < 0:
                break
            picked.append(k)
        # The ``last``-th highest offset of an in-use row, as its 10 digits (they sort as the
        # numbers do), found a piece of rows at a time (bounded memory), then those rows.
        best: list[bytes] = []
        for c0 in range(0, 20 * self.count, 20 * 65536):
            c1 = min(20 * self.count, c0 + 20 * 65536)
            best = sorted(best + [b[i : i + 10] for i in range(c0, c1, 20) if b[i + 17] == 110])[-last:]
        threshold = best[0]
        top = [k for k in range(self.count) if b[20 * k : 20 * k + 10] >= threshold and types[k] == 110][-last:]
        return [(int(b[20 * k : 20 * k + 10]), self.first + k, int(b[20 * k + 11 : 20 * k + 16])) for k in picked + top]

    def in_use(self) -> Iterator[tuple[int, int, int]]:
        """(offset, number, generation) of every in-use row."""
        b, types = self.block, self.block[17::20]
        k = types.find(b"n")
        while k >= 0:
            i = 20 * k
            yield int(b[i : i + 10]), self.first + k, int(b[i + 11 : i + 16])
            k = types.find(b"n", k + 1)


class _Rows:
    """The decoded rows of a cross-reference stream (§7.5.8): runs of (first, count)."""

    def __init__(self, runs: list[tuple[int, int]], data: bytes, w: list[int]) -> None:
        self.data, self.w, self.row = data, w, sum(w)
        self.runs, self.at = runs, []
        pos = 0
        for _first, count in runs:
            self.at.append(pos)
            pos += count

    def _decode(self, k: int) -> Entry:
        d, (w0, w1, _w2), at = self.data, self.w, k * self.row
        t = int.from_bytes(d[at : at + w0], "big") if w0 else 1
        if t == 0:
            return _FREE
        return t, int.from_bytes(d[at + w0 : at + w0 + w1], "big"), int.from_bytes(d[at + w0 + w1 : at + self.row], "big")

    def get(self, num: int) -> Entry | None:
        for r, (first, count) in enumerate(self.runs):  # a stream has a few runs
            if first <= num < first + count:
                return self._decode(self.at[r] + num - first)
        return None

    def types(self) -> bytes | None:
        """The type column, one byte a row, when the stream stores it in one byte."""
        return self.data[0 :: self.row] if self.w[0] == 1 else None

    def sample(self, spread: int, last: int) -> list[tuple[int, int, int]] | None:
        """As ``_Table.sample``, by the columns of the rows (type in one byte, offsets
        big-endian: they sort as the numbers do); None if the layout does not allow it."""
        types = self.types()
        if types is None:
            return None
        d, row, w1 = self.data, self.row, self.w[1]
        n = len(types)
        picked, step = [], n / spread
        for i in range(spread):
            k = types.find(b"\x01", int(i * step))
            if k < 0:
                break
            picked.append(k)
        best: list[bytes] = []
        for c0 in range(0, n, 65536):
            ks = range(c0, min(n, c0 + 65536))
            best = sorted(best + [d[k * row + 1 : k * row + 1 + w1] for k in ks if types[k] == 1])[-last:]
        if not best:
            return []
        threshold = best[0]
        top = [k for k in range(n) if types[k] == 1 and d[k * row + 1 : k * row + 1 + w1] >= threshold][-last:]
        out = []
        for k in picked + top:
            r = bisect.bisect_right(self.at, k) - 1
            e = self._decode(k)
            out.append((e[1], self.runs[r][0] + k - self.at[r], e[2]))
        return out

    def compressed(self) -> Iterator[tuple[int, Entry]]:
        types = self.types()
        if types is not None and b"\x02" not in types:
            return
        for num, e in self.items():
            if e[0] == 2:
                yield num, e

    def items(self) -> Iterator[tuple[int, Entry]]:
        for r, (first, count) in enumerate(self.runs):
            for k in range(count):
                yield first + k, self._decode(self.at[r] + k)

    def in_use(self) -> Iterator[tuple[int, int, int]]:
        for num, e in self.items():
            if e[0] == 1:
                yield e[1], num, e[2]


def _count(part: _Table | _Rows | dict[int, Entry]) -> int:
    if isinstance(part, _Table):
        return part.count
    if isinstance(part, _Rows):
        return sum(c for _, c in part.runs)
    return len(part)


class Entries:
    """Sections newest first; ``get`` finds the newest entry of a number."""

    def __init__(self) -> None:
        self._parts: list[_Table | _Rows | dict[int, Entry]] = []
        self._merged: dict[int, Entry] | None = None
        self.total = 0  # rows listed over the chain (bounded by the caller)

    def add_table(self, first: int, count: int, block: bytes) -> None:
        self._add(_Table(first, count, block), count)

    def add_rows(self, runs: list[tuple[int, int]], data: bytes, w: list[int]) -> None:
        self._add(_Rows(runs, data, w), sum(c for _, c in runs))

    def add_dict(self, entries: dict[int, Entry]) -> None:
        self._add(entries, len(entries))

    def _add(self, part: _Table | _Rows | dict[int, Entry], count: int) -> None:
        self._parts.append(part)
        self._merged = None
        self.total += count

    def get(self, num: int) -> Entry | None:
        for part in self._parts:
            e = part.get(num)
            if e is not None:
                return e
        return None

    def items(self) -> Iterator[tuple[int, Entry]]:
        """Every number's newest entry, straight from the rows (an entry that a newer section
        lists again is skipped); a chain of more than MERGE_ABOVE sections is merged once
        into a dictionary instead (bounded by the chain's cap on entries)."""
        if len(self._parts) == 1:
            part = self._parts[0]
            yield from part.items()
            return
        if len(self._parts) <= MERGE_ABOVE:  # a big file with a few updates: no dictionary of it all
            for i, part in enumerate(self._parts):
                newer = self._parts[:i]
                for num, e in part.items():
                    if not any(p.get(num) is not None for p in newer):
                        yield num, e
            return
        if self._merged is None:
            merged: dict[int, Entry] = {}
            for part in self._parts:
                for num, e in part.items():
                    merged.setdefault(num, e)
            self._merged = merged
        yield from self._merged.items()

    def compressed(self) -> Iterator[tuple[int, Entry]]:
        """Every number whose newest entry is in an object stream."""
        for i, part in enumerate(self._parts):
            newer = self._parts[:i]
            found = part.compressed() if not isinstance(part, dict) else ((n, e) for n, e in part.items() if e[0] == 2)
            for num, e in found:
                if not any(p.get(num) is not None for p in newer):
                    yield num, e

    def in_use(self) -> Iterator[tuple[int, int, int]]:
        if len(self._parts) == 1 and not isinstance(self._parts[0], dict):
            yield from self._parts[0].in_use()
            return
        for num, e in self.items():
            if e[0] == 1:
                yield e[1], num, e[2]

    def _sample_by_part(self, spread: int, last: int) -> list[tuple[int, int, int]]:
        """Each section's own sample (its share of ``spread``, its ``last`` highest offsets),
        less the entries a newer section lists again."""
        out: list[tuple[int, int, int]] = []
        for i, part in enumerate(self._parts):
            newer = self._parts[:i]
            share = max(1, spread * _count(part) // max(1, self.total))
            sample = part.sample(share, last) if not isinstance(part, dict) else None
            if sample is None:
                sample = [(e[1], num, e[2]) for num, e in part.items() if e[0] == 1]
            out += [x for x in sample if not any(p.get(x[1]) is not None for p in newer)]
        return out

    def sample_in_use(self, spread: int, last: int) -> list[tuple[int, int, int]]:
        """All in-use entries if there are at most ``spread + last``; else ``spread`` of them
        spread over the table, plus the ``last`` with the highest offsets."""
        if self.total > spread + last and len(self._parts) <= MERGE_ABOVE:
            return self._sample_by_part(spread, last)
        everything: list[tuple[int, int, int]] = []
        for e in self.in_use():
            everything.append(e)
            if len(everything) > spread + last:
                break
        else:
            return everything
        step = max(1, self.total // spread)
        picked: list[tuple[int, int, int]] = []
        top: list[tuple[int, int, int]] = []
        for k, e in enumerate(self.in_use()):
            if k % step == 0 and len(picked) < spread:
                picked.append(e)
            if len(top) < last:
                heapq.heappush(top, e)
            elif e[0] > top[0][0]:
                heapq.heapreplace(top, e)
        return picked + top
