"""The invariants every campaign checks after each kill, power cut or fault (issue 22).

Stable API (other campaign branches merge this one to reuse it)::

    from campaign.invariants import check, tally, KINDS

    violations = check(cfg_path, dropped={relpath: bytes_or_sha256_hex, ...},
                       exempt_markers=[b"...", ...], drives=[mountpoint, ...],
                       identity=officer_key_path, logs=[log_file], temp_dirs=[tmpdir],
                       settled=False)
    assert not violations, "\n".join(violations)
    counts = tally(violations)   # {"lost": 0, "duplicated": 0, "corrupt": 0, "leak": 0, ...}

Each violation is a line ``"<kind>: <what, where>"``, kind one of ``KINDS``. ``dropped``
maps each file the test put into the drop folder (drop-relative POSIX path) to its bytes
or their SHA-256, or to a list of them when the path was used again for another file. Its category is the configuration's rules' (``classify``); a path no rule
matches is expected in review.

What is checked, by design (docs/architecture.md "A document's life"):

- every dropped content is somewhere: still in the drop folder (its folder, ``tinjau/``,
  ``duplikat/``, or the holding folder ``.naskahd-hold/``, which start-up reconciliation
  empties) or registered once; a registered row's archive file matches its register
  hash (exempt: the ``.age`` file matches ``ciphertext_sha256``; with ``identity`` it is
  also decrypted by the real ``age`` and its plaintext hashed). A STAGED row (a crash
  between the commit and step 5) must still be recoverable: its final file or its temp
  file matches, or its source is still in the drop folder;
- agenda numbers are gapless per category and year, and each counter equals its highest
  number;
- no archive file that no row owns (temp files ``.naskahd-tmp-*`` only while not
  settled), no two archive files with one content;
- no exempt plaintext outside the drop folder: every marker (bytes planted in each exempt
  plaintext, and the exempt letters' names) is searched in the contents and the names of
  every file under the archive, the state folder (register, WAL, heartbeat), the logs,
  the temp folders and each drive;
- every ``copies`` row of a drive given in ``drives``: the drive's file exists and its
  SHA-256 and size are the register's (the ``.age`` file's for exempt letters).

``settled=True`` is for a daemon that has finished (every category folder empty, or
stopped cleanly): then no row may be STAGED, no temp file or held file may be left, and
a registered content may not still wait in a category folder, a file a rule files may not
be in review, and a file in ``duplikat/`` must have its content registered.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KINDS = ("lost", "duplicated", "corrupt", "leak", "gap", "backup", "leftover")
TEMP_PREFIX = ".naskahd-tmp-"
CHUNK = 1 << 20

_hash_cache: dict[tuple[str, int, int, int, int], str] = {}


def sha256_of(path: Path) -> str:
    """SHA-256 of a file (cached by path, inode, size, mtime, ctime: the drop folder and the
    archive are hashed again after every kill)."""
    st = os.lstat(path)
    key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    got = _hash_cache.get(key)
    if got is None:
        h = hashlib.sha256()
        with open(path, "rb", buffering=0) as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
        got = _hash_cache[key] = h.hexdigest()
    return got


def _digest(value: bytes | str) -> str:
    if isinstance(value, bytes):
        return hashlib.sha256(value).hexdigest()
    assert len(value) == 64, "dropped values are bytes or a SHA-256 hex digest"
    return value.lower()


def tally(violations: Iterable[str]) -> dict[str, int]:
    """How many violations of each kind (every kind present, 0 when none)."""
    counts = Counter(v.split(":", 1)[0] for v in violations)
    return {k: counts.get(k, 0) for k in KINDS}


def _files(top: Path) -> list[Path]:
    """Every regular file below ``top`` (symlinks not followed), but installation markers."""
    from naskahd.config import ROOT_MARKER, ROOT_OWNER

    out: list[Path] = []
    if not top.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        for name in filenames:
            p = Path(dirpath) / name
            if name in (ROOT_MARKER, ROOT_OWNER) or not p.is_file() or p.is_symlink():
                continue
            out.append(p)
    return out


@dataclass
class _Row:
    id: int
    agenda: str
    category: str
    year: int
    number: int
    archive_path: str
    temp_name: str | None
    size: int
    sha256: str
    ciphertext_sha256: str | None
    ciphertext_size: int | None
    state: str


def _load(config: Any) -> Any:
    from naskahd.config import Config, load

    return config if isinstance(config, Config) else load(str(config))


def _connect(cfg: Any) -> sqlite3.Connection | None:
    """The register read with plain SQL (a checker independent of the daemon's models); a
    register a crash left with a WAL is read as SQLite recovers it."""
    path = cfg.register_path
    if not path.exists():
        return None
    con = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=30)
    con.execute("PRAGMA busy_timeout=30000")
    return con


def _rows(con: sqlite3.Connection) -> list[_Row]:
    cols = "id, agenda, category, year, number, archive_path, temp_name, size, sha256, ciphertext_sha256, ciphertext_size, state"
    return [_Row(*r) for r in con.execute(f"SELECT {cols} FROM documents ORDER BY id")]


def _plain_key(cfg: Any) -> Any:
    """plaintext SHA-256 → the sha256 an exempt row records (HMAC under the host secret)."""
    from naskahd.filing.keys import ExemptKeys

    try:
        keys = ExemptKeys.of_existing(cfg.state)
    except (OSError, ValueError):
        return None
    return keys.content


def _where(cfg: Any, path: Path) -> str:
    """Which part of the drop folder a file is in: waiting, review, duplicate or held."""
    from naskahd.config import DUPLICATES_FOLDER, HOLD_FOLDER, REVIEW_FOLDER

    first = path.relative_to(cfg.drop).parts[0]
    return {REVIEW_FOLDER: "review", DUPLICATES_FOLDER: "duplicate", HOLD_FOLDER: "held"}.get(first, "waiting")


def _decrypts_to(age_file: Path, identity: Path, plain_sha: str) -> str | None:
    """None when the real ``age`` opens ``age_file`` with ``identity`` to ``plain_sha``."""
    age = shutil.which("age")
    if age is None:
        return "the age CLI is not installed (needed to decrypt exempt letters)"
    out = subprocess.run([age, "-d", "-i", str(identity), str(age_file)], capture_output=True, timeout=120)
    if out.returncode != 0:
        return f"age -d failed: {out.stderr.decode(errors='replace').strip()}"
    got = hashlib.sha256(out.stdout).hexdigest()
    return None if got == plain_sha else f"decrypts to {got[:12]}…, dropped {plain_sha[:12]}…"


def check(
    config: Any,
    *,
    dropped: Mapping[str, bytes | str | Sequence[bytes | str]],
    exempt_markers: Sequence[bytes] = (),
    drives: Sequence[Path] = (),
    identity: Path | None = None,
    logs: Sequence[Path] = (),
    temp_dirs: Sequence[Path] = (),
    settled: bool = False,
) -> list[str]:
    """Every violated invariant, one line each (``"<kind>: ..."``); [] when all hold.

    ``config``: the configuration file (or a loaded ``Config``). See the module's docstring.
    """
    from naskahd.categories import EXEMPT
    from naskahd.classify import classify

    cfg = _load(config)
    bad: list[str] = []
    # The drop folder first, then the register: a daemon that runs removes a source only
    # after its row is committed, so a file gone from the walk is in the rows read after it.
    in_drop: dict[str, list[tuple[str, Path]]] = defaultdict(list)
    for p in _files(cfg.drop):
        try:
            in_drop[sha256_of(p)].append((_where(cfg, p), p))
        except OSError:
            continue  # the daemon took it between the walk and the read
    if settled:
        for p in _files(cfg.hold_dir):
            bad.append(f"leftover: {p.relative_to(cfg.drop)} is still in the holding folder")
    rows, counters, copies = _register(cfg, with_copies=bool(drives))

    key_of = _plain_key(cfg)
    by_sha = {r.sha256: r for r in rows}
    expected: dict[str, tuple[str, bool]] = {}  # plain sha → (a relpath, exempt?)
    reused: set[str] = set()  # paths dropped more than once (a scanner that reuses its names)
    for rel, value in dropped.items():
        values = [value] if isinstance(value, (bytes, str)) else list(value)
        if len(values) > 1:
            reused.add(rel)
        for v in values:
            expected.setdefault(_digest(v), (rel, classify(rel, cfg.rules) == EXEMPT))
    owned: set[int] = set()

    for plain, (rel, exempt) in expected.items():
        recorded = plain
        if exempt:
            recorded = key_of(plain) if key_of is not None else "(no host secret)"
        row = by_sha.get(recorded)
        places = in_drop.get(plain, [])
        shown = "an exempt letter" if exempt else rel
        filed_by_rule = classify(rel, cfg.rules) is not None
        # A name taken again while its first scan waited in the holding folder sends the held
        # one to review by design (release.put_back never overwrites).
        if settled and filed_by_rule and rel not in reused and any(w == "review" for w, _p in places):
            bad.append(f"leftover: {shown} went to review, though a rule files it")
        if row is None:
            if not places:
                bad.append(f"lost: {shown} ({plain[:12]}…) is neither in the drop folder nor registered")
            elif settled and any(w == "duplicate" for w, _p in places):
                bad.append(f"lost: {shown} was moved to duplikat/ but its content is not registered")
            elif settled and any(w == "waiting" for w, _p in places) and filed_by_rule:
                bad.append(f"leftover: {shown} still waits in the drop folder, unregistered")
            continue
        owned.add(row.id)
        bad += _check_row(cfg, row, plain, exempt, places, identity, settled, shown)

    # -- the register as a whole -------------------------------------------------------------
    known = {key_of(p) if (e and key_of) else p for p, (_r, e) in expected.items()}
    for r in rows:
        if r.id not in owned and r.sha256 not in known:
            bad.append(f"corrupt: register row {r.agenda} is for content that was never dropped")
    bad += _gapless(rows, counters)
    bad += _archive(cfg, rows, settled, lambda: _register(cfg, with_copies=False)[0])
    if drives:
        bad += _drives(rows, copies, drives)
    roots = [cfg.archive, cfg.state, *drives, *logs, *temp_dirs]
    bad += _leaks(roots, exempt_markers)
    return bad


def _register(cfg: Any, *, with_copies: bool) -> tuple[list[_Row], dict[tuple[str, int], int], list[Any]]:
    """(documents, agenda counters, drive copies) in one read transaction."""
    con = _connect(cfg)
    if con is None:
        return [], {}, []
    try:
        con.execute("BEGIN")
        rows = _rows(con)
        counters = {(c, y): n for c, y, n in con.execute("SELECT category, year, last_number FROM agenda_counters")}
        copies = _copies(con) if with_copies else []
        con.execute("COMMIT")
    finally:
        con.close()
    return rows, counters, copies


def _check_row(cfg: Any, row: _Row, plain: str, exempt: bool, places: list[tuple[str, Path]],
               identity: Path | None, settled: bool, shown: str) -> list[str]:
    bad: list[str] = []
    final = cfg.archive / row.archive_path
    want = row.ciphertext_sha256 if exempt else row.sha256
    temp = final.parent / row.temp_name if row.temp_name else None
    # the temp file before the final name: a running daemon renames one into the other
    temp_ok = temp is not None and temp.is_file() and _sha_or_none(temp) == want
    final_ok = final.is_file() and _sha_or_none(final) == want
    if row.state in ("filed", "source_stuck"):
        if not final.is_file():
            bad.append(f"lost: {row.agenda} is {row.state} but {row.archive_path} is missing")
        elif not final_ok:
            bad.append(f"corrupt: {row.agenda}'s archive file {row.archive_path} does not match its register hash")
        elif exempt and identity is not None:
            why = _decrypts_to(final, identity, plain)
            if why:
                bad.append(f"corrupt: {row.agenda}'s .age file: {why}")
        if not exempt and final_ok and final.stat().st_size != row.size:
            bad.append(f"corrupt: {row.agenda}'s size {final.stat().st_size} is not the register's {row.size}")
        waiting = [p for w, p in places if w in ("waiting", "held")]
        if settled and waiting and row.state == "filed":
            bad.append(f"duplicated: {row.agenda} is filed but {shown} is still in the drop folder")
    elif row.state == "staged":
        if settled:
            bad.append(f"leftover: {row.agenda} is still STAGED after the daemon finished")
        if not (final_ok or temp_ok or places):
            bad.append(f"lost: {row.agenda} is STAGED with neither its archive file nor its source")
    else:
        bad.append(f"corrupt: {row.agenda} has an unknown state {row.state!r}")
    return bad


def _sha_or_none(path: Path) -> str | None:
    try:
        return sha256_of(path)
    except OSError:
        return None


def _gapless(rows: list[_Row], counters: Mapping[tuple[str, int], int]) -> list[str]:
    bad: list[str] = []
    numbers: dict[tuple[str, int], list[int]] = defaultdict(list)
    for r in rows:
        numbers[(r.category, r.year)].append(r.number)
    for (category, year), got in sorted(numbers.items()):
        got.sort()
        if got != list(range(1, len(got) + 1)):
            missing = sorted(set(range(1, got[-1] + 1)) - set(got))[:5]
            twice = [n for n, c in Counter(got).items() if c > 1][:5]
            bad.append(f"gap: {category} {year}: numbers missing {missing}, given twice {twice}")
        if counters.get((category, year)) != got[-1]:
            bad.append(f"gap: {category} {year}: counter {counters.get((category, year))} but highest number {got[-1]}")
    for (category, year), n in counters.items():
        if n and (category, year) not in numbers:
            bad.append(f"gap: {category} {year}: counter {n} but no document")
    return bad


def _archive(cfg: Any, rows: list[_Row], settled: bool, reread: Any) -> list[str]:
    bad: list[str] = []
    finals = {r.archive_path for r in rows}
    contents: dict[str, list[str]] = defaultdict(list)
    unknown: list[str] = []
    for p in _files(cfg.archive):
        rel = p.relative_to(cfg.archive).as_posix()
        if p.name.startswith(TEMP_PREFIX):
            if settled:
                bad.append(f"leftover: temp file {rel} in the archive after the daemon finished")
            continue
        if rel not in finals:
            unknown.append(rel)
        digest = _sha_or_none(p)
        if digest is not None:
            contents[digest].append(rel)
    if unknown:  # a running daemon may have committed and renamed since the rows were read
        finals = {r.archive_path for r in reread()}
        bad += [f"corrupt: archive file {rel} belongs to no register row" for rel in unknown if rel not in finals]
    for digest, names in contents.items():
        if len(names) > 1:
            bad.append(f"duplicated: one content ({digest[:12]}…) is archived {len(names)} times: {names[:3]}")
    return bad


def _copies(con: sqlite3.Connection) -> list[tuple[str, int, str, int, str]]:
    """(drive token id, document id, drive_path, size, sha256) of every recorded copy."""
    try:
        return list(con.execute(
            "SELECT d.token_id, c.document_id, c.drive_path, c.size, c.sha256 FROM copies c JOIN drives d ON d.id = c.drive_id"))
    except sqlite3.OperationalError:  # a register from before drives
        return []


def _drives(rows: list[_Row], copies: list[tuple[str, int, str, int, str]], mounts: Sequence[Path]) -> list[str]:
    import json

    bad: list[str] = []
    docs = {r.id: r for r in rows}
    by_token: dict[str, Path] = {}
    for mp in mounts:
        try:
            by_token[json.loads((mp / "naskah/.naskahd/token.json").read_bytes())["drive_id"]] = mp
        except (OSError, ValueError, KeyError):
            bad.append(f"backup: {mp} has no readable identity token")
    for token_id, doc_id, drive_path, size, digest in copies:
        mp = by_token.get(token_id)
        if mp is None:
            continue  # a drive not given (not plugged in)
        doc = docs.get(doc_id)
        want = (doc.ciphertext_sha256 or doc.sha256) if doc else None
        on = mp / "naskah" / drive_path
        if doc is None:
            bad.append(f"backup: a copy on {mp} is recorded for document id {doc_id}, which is not registered")
        elif digest != want:
            bad.append(f"backup: {doc.agenda}'s copy on {mp} is recorded with a hash that is not the register's")
        elif not on.is_file():
            bad.append(f"backup: {doc.agenda} is recorded as backed up on {mp} but {drive_path} is missing")
        elif on.stat().st_size != size or sha256_of(on) != want:
            bad.append(f"backup: {doc.agenda} is recorded as backed up on {mp} but its copy does not match")
    return bad


def _leaks(roots: Sequence[Path], markers: Sequence[bytes]) -> list[str]:
    """Every file (contents and name) under ``roots`` that holds one of ``markers``."""
    markers = [m for m in markers if m]
    if not markers:
        return []
    prefix = os.path.commonprefix(list(markers))
    width = max(len(m) for m in markers)
    probe = set(markers)
    bad: list[str] = []
    seen: set[tuple[int, int]] = set()
    for root in roots:
        files = [root] if root.is_file() else _files(root)
        for p in files:
            try:
                st = p.stat()
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            name = os.fsencode(p.name)
            if any(m in name for m in markers):
                bad.append(f"leak: an exempt letter's marker is in the name of {p}")
            try:
                hit = _holds(p, markers, probe, prefix, width)
            except OSError:
                continue
            if hit:
                bad.append(f"leak: exempt plaintext (marker {hit[:8]!r}…) found in {p}")
    return bad


def _holds(path: Path, markers: Sequence[bytes], probe: set[bytes], prefix: bytes, width: int) -> bytes | None:
    """The first marker found in the file, read in chunks that overlap by a marker's length."""
    tail = b""
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(CHUNK):
            data = tail + chunk
            if len(prefix) >= 4:
                at = data.find(prefix)
                while at >= 0:
                    for m in probe:
                        if data.startswith(m, at):
                            return m
                    at = data.find(prefix, at + 1)
            else:
                for m in markers:
                    if m in data:
                        return m
            tail = data[-(width - 1):] if width > 1 else b""
    return None
