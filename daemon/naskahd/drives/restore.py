"""Rebuild a working installation from a backup drive alone (``naskahd restore``).

From ``naskah/.naskahd/`` on the drive: the register snapshot (checked against the
manifest's SHA-256), the configuration (paths rewritten to the new root; it holds no
secrets), and from the manifest where each document is on the drive. Every document's
file is copied into the new archive with the durable-write helper, hashed on the way and
compared with both the manifest and the register. The old host's drive registrations are
dropped (its host secret is not on the drive): the drive is registered again on the new
host, and its files already there are taken after a read-back check, not copied again.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from naskahd import durable
from naskahd.categories import DROP_FOLDER, EXEMPT
from naskahd.drives import layout
from naskahd.errors import NaskahdError
from naskahd.i18n import _


@dataclass
class Restored:
    documents: int = 0
    bytes: int = 0
    problems: list[str] = field(default_factory=list)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise NaskahdError(_("{path} is missing: this is not a naskahd backup drive, or its last sync did not finish").format(path=path)) from None


def _rewrite_paths(text: str, root: Path) -> str:
    for key in ("drop", "archive", "state"):
        line = f"{key} = {json.dumps(str(root / key))}"
        text, n = re.subn(rf"^{key}\s*=.*$", lambda _m, line=line: line, text, count=1, flags=re.M)
        if n == 0:
            text = re.sub(r"^\[paths\]\s*$", lambda m, line=line: m.group(0) + "\n" + line, text, count=1, flags=re.M)
    return text


def restore(source: Path, root: Path) -> Restored:
    from naskahd import config as config_mod
    from naskahd.register import open_register

    meta = source / layout.META
    docs, snap = layout.read_manifest(_read(source / layout.MANIFEST))
    if snap is None:
        raise NaskahdError(_("the drive's manifest names no register snapshot; sync the drive once more before restoring from it"))
    if root.exists() and any(root.iterdir()):
        raise NaskahdError(_("{path} is not empty: restore into a new folder (nothing is ever overwritten)").format(path=root))
    data = _read(source / layout.REGISTER)
    if hashlib.sha256(data).hexdigest() != snap["sha256"]:
        raise NaskahdError(_("the register snapshot on the drive does not match its manifest (damaged); nothing was restored"))
    try:
        cfg_text = (meta / "naskahd.toml").read_text(encoding="utf-8")
    except FileNotFoundError:
        cfg_text = config_mod.render_toml(root, [])
    for sub in ("drop", "archive", "state"):
        durable.makedirs(root / sub)
    for name in DROP_FOLDER.values():
        durable.makedirs(root / "drop" / name)
    durable.write_bytes(root / "naskahd.toml", _rewrite_paths(cfg_text, root.resolve()).encode("utf-8"), mode=0o640)
    cfg = config_mod.load(str(root / "naskahd.toml"))
    durable.write_bytes(cfg.register_path, data, mode=0o640)
    sessions = open_register(cfg.database_url)  # migrates a snapshot from an older release
    out = Restored()
    _copy_documents(source, cfg.archive, sessions, docs, out)
    from naskahd import installation

    installation.mark_restored(cfg, sessions)  # the same installation, on this host now
    return out


def _replay_manifest_rows(sessions, docs) -> None:  # type: ignore[no-untyped-def]
    """Documents copied after the snapshot was taken: their rows are in the manifest. The
    agenda counters are raised to the highest number restored, so none is given twice."""
    from sqlalchemy import func, insert, select

    from naskahd.register import AgendaCounter, Document

    with sessions.begin() as s:
        known = set(s.scalars(select(Document.agenda)))
        extra = [layout.decode_row(r["row"]) for a, r in docs.items() if a not in known and r.get("row")]
        if extra:
            s.execute(insert(Document.__table__), extra)
        for category, year, top in s.execute(select(Document.category, Document.year, func.max(Document.number)).group_by(Document.category, Document.year)):
            counter = s.get(AgendaCounter, (category, year))
            if counter is None:
                s.add(AgendaCounter(category=category, year=year, last_number=top))
            elif counter.last_number < top:
                counter.last_number = top


def _copy_documents(source: Path, archive: Path, sessions, docs, out: Restored) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import delete, select

    from naskahd.drives.plan import FINAL
    from naskahd.register import Copy, Document, Drive

    _replay_manifest_rows(sessions, docs)
    with sessions() as s:
        rows = list(s.scalars(select(Document).order_by(Document.id)))
    for d in rows:
        want = (d.ciphertext_size, d.ciphertext_sha256) if d.category == EXEMPT else (d.size, d.sha256)
        rec = docs.get(d.agenda)
        if rec is None:
            if d.state in FINAL:
                out.problems.append(_("{agenda} is in the register but not on the drive (filed after its last sync)").format(agenda=d.agenda))
            continue
        if (rec["size"], rec["sha256"]) != want or rec["archive_path"] != d.archive_path:
            out.problems.append(_("{agenda}: the manifest and the register disagree; not restored").format(agenda=d.agenda))
            continue
        target = archive / d.archive_path
        durable.makedirs(target.parent)
        h = hashlib.sha256()
        size = 0
        try:
            with open(source / layout.on_drive(rec["drive_path"]), "rb") as src, durable.create(target) as dst:
                while chunk := src.read(1 << 20):
                    h.update(chunk)
                    size += len(chunk)
                    dst.write(chunk)
                if (size, h.hexdigest()) != want:
                    raise ValueError
        except FileNotFoundError:
            out.problems.append(_("{agenda}: its file is missing on the drive").format(agenda=d.agenda))
            continue
        except ValueError:
            out.problems.append(_("{agenda}: its file on the drive is damaged (SHA-256 differs); not restored").format(agenda=d.agenda))
            continue
        out.documents += 1
        out.bytes += size
    with sessions.begin() as s:  # the old host's drives: their tokens cannot verify here
        s.execute(delete(Copy))
        s.execute(delete(Drive))



__all__ = ["Restored", "restore"]
