"""What waits for a person in the drop folder: the review folder (``tinjau/``) and the
duplicates (``duplikat/``), and the two things a person does about them.

- ``move``: a review item goes back into the drop folder's category folder
  (``masuk/``, ``keluar/``, ``dikecualikan/``), where the running daemon files it through
  the normal filing path. Claimed first, the way ``filing/release.py`` claims a source:
  renamed into the holding folder *under the destination's name*, checked to be the file
  looked at, then renamed into place without ever overwriting. A crash in between leaves
  it in the holding folder, and start-up reconciliation puts it where it was going. An
  item that came from ``dikecualikan/`` only ever goes back to ``dikecualikan/``, and only
  when the rules still classify that folder as exempt (it would be filed unencrypted).
- ``mark_seen``: a duplicate a person has checked. Recorded in the register
  (``duplicates.seen_at``/``seen_by``) and the audit trail; it is then no longer listed as
  needing a person. The file is never deleted here: removing it is the person's decision.

Items are named by ``id``: an HMAC of the file's name under the host secret (never the
name itself, which for an exempt letter can reveal its subject, nor a plain hash of it,
which a guess could confirm). Exempt items' names are never returned.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from naskahd import naming
from naskahd.categories import CATEGORIES, DROP_FOLDER, EXEMPT
from naskahd.errors import LetterError
from naskahd.i18n import _

REVIEW, DUPLICATE = "review", "duplicate"


@dataclass(frozen=True)
class Entry:
    """A file waiting in the drop folder (internal: holds its path)."""

    id: str | None  # None: exempt, and the host secret is not readable here
    kind: str
    path: Path
    exempt: bool
    info: dict[str, Any]  # what ``items`` returns of it


def _keys(cfg: Any) -> Any:
    from naskahd.cli.status_cmd import _exempt_review_keys

    return _exempt_review_keys(cfg)


def _id(kind: str, keys: Any, relname: str, exempt: bool) -> str | None:
    if keys:
        return f"{kind[0]}-{keys.review_name(relname)[:40]}"
    return None if exempt else f"{kind[0]}-{naming.name_key(relname)[:40]}"


def _review_entries(cfg: Any, keys: Any, sessions: Any) -> list[Entry]:
    from sqlalchemy import select

    from naskahd import reasons
    from naskahd.cli.review_cmd import _files, _folder_of
    from naskahd.register import ReviewItem

    recorded: dict[str, Any] = {}
    if sessions is not None:
        with sessions() as s:
            for row in s.scalars(select(ReviewItem).order_by(ReviewItem.id)):
                recorded[row.name_sha256] = row  # the latest move of that name wins
    out = []
    for name, in_exempt_folder in _files(cfg.review_dir):
        base = name.rpartition("/")[2]
        row = (recorded.get(keys.review_name(base)) if in_exempt_folder and keys else None) \
            or recorded.get(naming.name_key(base)) or recorded.get(naming.name_key(name))
        exempt = in_exempt_folder or (row is not None and not row.source_relpath)
        source = naming.display_name(row.source_relpath) if row is not None and row.source_relpath else None
        ident = _id(REVIEW, keys, name, exempt)
        out.append(Entry(ident, REVIEW, cfg.review_dir / name, exempt, {
            "id": ident, "kind": REVIEW, "exempt": exempt,
            "name": None if exempt else naming.display_name(os.fsencode(name)),
            "from": _folder_of(source, exempt),
            "moved_at": row.moved_at.astimezone(dt.UTC).isoformat() if row is not None else None,
            "reason": reasons.render(row.reason) if row is not None else _("moved to review"),
            "reason_code": reasons.code_of(row.reason) if row is not None else None,
            "may_go_to": [EXEMPT] if exempt else list(CATEGORIES),
            "needs_person": True,
        }))
    return out


def _sha256(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        while chunk := os.read(fd, 1 << 20):
            digest.update(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)
    return digest.hexdigest()


def _duplicate_entries(cfg: Any, keys: Any, sessions: Any) -> list[Entry]:
    """Files in ``duplikat/``, each with its register row: by name for ordinary letters;
    an exempt one's name is not recorded, so it is found by its content's keyed hash."""
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from naskahd.register import Duplicate

    try:
        names = sorted(e.name for e in os.scandir(cfg.duplicates_dir) if e.is_file(follow_symlinks=False))
    except OSError:
        return []
    rows: list[Any] = []
    if sessions is not None:
        with sessions() as s:
            rows = list(s.scalars(select(Duplicate).options(selectinload(Duplicate.document)).order_by(Duplicate.id)))
    by_name = {r.moved_to: r for r in rows if r.moved_to}
    exempt_rows = [r for r in rows if not r.moved_to]
    out = []
    for name in names:
        row = by_name.get(name)
        exempt = row is None or row.document.category == EXEMPT
        if row is None and keys and exempt_rows:
            digest = _sha256(cfg.duplicates_dir / name)
            tag = keys.content(digest) if digest else None
            matching = [r for r in exempt_rows if tag and r.document.sha256 in (tag, digest)]
            row = next((r for r in matching if r.seen_at is None), matching[-1] if matching else None)
            if row is not None:
                exempt_rows.remove(row)
        ident = _id(DUPLICATE, keys, f"{DUPLICATE}/{name}", exempt)
        seen = row is not None and row.seen_at is not None
        out.append(Entry(ident, DUPLICATE, cfg.duplicates_dir / name, exempt, {
            "id": ident, "kind": DUPLICATE, "exempt": exempt,
            "name": None if exempt else naming.display_name(os.fsencode(name)),
            "duplicate_of": row.document.agenda if row is not None else None,
            "detected_at": row.detected_at.astimezone(dt.UTC).isoformat() if row is not None else None,
            "reason": (_("the same content as {agenda}, which is registered").format(agenda=row.document.agenda)
                       if row is not None else _("the same content as a registered letter")),
            "seen": seen, "seen_at": row.seen_at.astimezone(dt.UTC).isoformat() if seen else None,
            "seen_by": row.seen_by if seen else None,
            "needs_person": not seen,
            "_row": row.id if row is not None else None,
        }))
    return out


def _open(cfg: Any, *, create: bool = False) -> Any:
    """The register: for reading, None when it cannot be opened (the files are still
    listed); for a change, checked to be this installation's, and migrated."""
    from naskahd import installation
    from naskahd.errors import RegisterError
    from naskahd.register import open_register

    if create:
        return installation.open_checked(cfg, create=True)
    try:
        return open_register(cfg.database_url, create=False)
    except RegisterError:
        return None


def entries(cfg: Any, sessions: Any = None, kind: str | None = None) -> list[Entry]:
    """``sessions``: an open register (the web process keeps one: opening it again would
    check the whole file, ``register.db.damage_problem``, at every page), else opened here.
    ``kind``: only review items or only duplicates."""
    keys = _keys(cfg)
    sessions = sessions if sessions is not None else _open(cfg)
    return (_review_entries(cfg, keys, sessions) if kind in (None, REVIEW) else []) + \
        (_duplicate_entries(cfg, keys, sessions) if kind in (None, DUPLICATE) else [])


def items(cfg: Any, sessions: Any = None, kind: str | None = None) -> list[dict[str, Any]]:
    """Every file waiting in ``tinjau/`` and ``duplikat/`` (or of one ``kind``), review
    items first, each a dict safe for a browser: ``id``, ``kind`` (review | duplicate),
    ``exempt``, ``name`` (None for exempt), ``reason``, ``needs_person``; review items also
    ``from`` (the folder it came from), ``moved_at``, ``reason_code``, ``may_go_to``;
    duplicates ``duplicate_of``, ``detected_at``, ``seen``, ``seen_at``, ``seen_by``."""
    return [{k: v for k, v in e.info.items() if not k.startswith("_")} for e in entries(cfg, sessions, kind)]


def unseen_duplicates(cfg: Any, sessions: Any) -> int:
    """How many files in ``duplikat/`` no person has marked as seen yet (``status``)."""
    return sum(1 for e in _duplicate_entries(cfg, _keys(cfg), sessions) if e.info["needs_person"])


def id_of(cfg: Any, name: str) -> str | None:
    """The ``id`` of the file ``name`` in the review folder (``scan.pdf``,
    ``dikecualikan/scan.pdf``) or the duplicates folder: for the command line, whose user
    sees the folder. Never offered to the web: a name guessed there must confirm nothing."""
    wanted = name.strip().strip("/")
    for prefix in (f"{cfg.review_dir.name}/", f"{cfg.duplicates_dir.name}/"):
        wanted = wanted.removeprefix(prefix)
    for entry in entries(cfg):
        folder = cfg.review_dir if entry.kind == REVIEW else cfg.duplicates_dir
        if entry.path.relative_to(folder).as_posix() == wanted:
            if entry.id is None:
                raise LetterError(_("this exempt item can only be handled by a user who may read the host secret in "
                                    "{state} (the naskahd user, or root)").format(state=cfg.state), field="item")
            return entry.id
    return None


def _find(cfg: Any, item: Any, kind: str) -> Entry:
    wanted = item.get("id") if isinstance(item, dict) else item
    for entry in entries(cfg):
        if wanted and entry.id == wanted:
            if entry.kind != kind:
                break
            return entry
    else:
        raise LetterError(_("that item is no longer waiting in the review or duplicates folder; look at the list again"),
                          field="item")
    if kind == DUPLICATE:
        raise LetterError(_("only a duplicate can be marked as seen; move a review item into a category instead"), field="item")
    raise LetterError(_("a duplicate is not moved into a category: its content is registered already; mark it as seen"),
                      field="item")


def move(cfg: Any, item: Any, category: str, *, by: str) -> dict[str, Any]:
    """Move review item ``item`` (a dict from ``items`` or its ``id``) into the drop
    folder of ``category``, for the running daemon to file. Returns ``{"id", "category",
    "moved_to"}`` (``moved_to``: the drop-relative folder, plus the name if not exempt)."""
    from naskahd import audit, durable
    from naskahd.classify import classify
    from naskahd.filing.release import move_aside
    from naskahd.letters.details import check_by
    from naskahd.letters.search import category_of

    who = check_by(by)
    wanted = category_of(category)
    if not wanted:
        raise LetterError(_("give the category to move it into: one of {choices}").format(choices=", ".join(CATEGORIES)),
                          field="category")
    entry = _find(cfg, item, REVIEW)
    folder = DROP_FOLDER[wanted]
    if entry.exempt and wanted != EXEMPT:
        raise LetterError(_("this item came from {folder}/ (an exempt letter): it can only go back to {folder}/, "
                            "or it would be filed unencrypted; nothing was moved").format(folder=DROP_FOLDER[EXEMPT]),
                          field="category")
    base = entry.path.name
    if classify(f"{folder}/{base}", cfg.rules) != wanted:
        raise LetterError(_("the rules in {source} do not file {folder}/ as {category}, so the item would not be filed as "
                            "asked; fix the rules or move the file by hand; nothing was moved").format(
                                source=cfg.source, folder=folder, category=wanted), field="category")
    sessions = _open(cfg, create=True)  # refused before anything moves if the register cannot be used
    try:
        before = os.lstat(entry.path)
    except FileNotFoundError:
        raise LetterError(_("that item is no longer in the review folder; look at the list again"), field="item") from None
    if not stat.S_ISREG(before.st_mode):
        raise LetterError(_("only a regular file can be filed; this item is not one (a link, a folder or a device): "
                            "replace it with the scan itself"), field="item")
    # The claim: under the destination's name in the holding folder, so that a crash
    # leaves it where reconciliation puts it on: into the destination (reconcile.py).
    held = cfg.hold_dir / folder / base
    durable.makedirs(held.parent, mode=0o700)
    try:
        durable.rename_noreplace(entry.path, held)
    except FileNotFoundError:
        raise LetterError(_("that item is no longer in the review folder; look at the list again"), field="item") from None
    except FileExistsError:
        raise LetterError(_("a file of that name is being filed right now; try again in a minute"), field="item") from None
    after = os.lstat(held)
    if (after.st_ino, after.st_dev) != (before.st_ino, before.st_dev):
        # Replaced between the look and the rename: put it back, never overwriting.
        move_aside(held, entry.path.parent, base)
        raise LetterError(_("the item changed while it was being moved; look at the list again; nothing was moved"),
                          field="item")
    moved = move_aside(held, cfg.drop / folder, base)
    with sessions.begin() as s:
        audit.record(s, "review.moved", actor=who, to=wanted, exempt=entry.exempt,
                     reason=entry.info.get("reason_code"))
    return {"id": entry.id, "category": wanted,
            "moved_to": f"{folder}/" if entry.exempt else f"{folder}/{naming.display_name(os.fsencode(moved))}"}


def mark_seen(cfg: Any, item: Any, *, by: str) -> dict[str, Any]:
    """Record that a person checked duplicate ``item``: no longer listed as needing one.
    The file stays where it is. Returns ``{"id", "duplicate_of", "seen_at", "seen_by"}``."""
    from naskahd import audit
    from naskahd.letters.details import check_by
    from naskahd.register import Duplicate

    who = check_by(by)
    entry = _find(cfg, item, DUPLICATE)
    row_id = entry.info.get("_row")
    if row_id is None:
        raise LetterError(_("naskahd cannot tell which registered letter this file repeats (the host secret is not "
                            "readable here, or it has no register entry); check it by hand"), field="item")
    sessions = _open(cfg, create=True)
    with sessions.begin() as s:
        row = s.get(Duplicate, row_id)
        agenda = row.document.agenda
        if row.seen_at is None:  # seen once: marking it again changes nothing
            row.seen_at, row.seen_by = dt.datetime.now(dt.UTC), who
            audit.record(s, "duplicate.seen", actor=who, at=row.seen_at, duplicate_of=agenda, exempt=entry.exempt)
        return {"id": entry.id, "duplicate_of": agenda, "seen_at": row.seen_at.astimezone(dt.UTC).isoformat(),
                "seen_by": row.seen_by}
