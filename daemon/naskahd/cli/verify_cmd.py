"""``naskahd verify [--archive] [--drive NAME] [--audit] [--anchors FILE] [--json]``.

Re-hashes the archive and/or the drives against the register, and checks the audit
trail's hash chain. With no option: the archive, every mounted registered drive and the
chain; with ``--audit`` alone: only the chain. Exit 1 on any missing, changed or
unexpected file, or a broken chain (the first broken row is named).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Any

from naskahd.errors import EXIT_ATTENTION, EXIT_OK, NaskahdError, UsageError
from naskahd.i18n import _


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("verify", help=_("re-hash the archive and the drives against the register, check the audit trail"))
    p.add_argument("--archive", action="store_true", help=_("check the archive"))
    p.add_argument("--drive", metavar="NAME", action="append", help=_("check this registered drive (may be repeated)"))
    p.add_argument("--audit", action="store_true", help=_("check the audit trail's hash chain"))
    p.add_argument("--anchors", metavar="FILE", action="append", default=[],
                   help=_("an anchor file (naskahd-audit-anchors.txt from a backup drive) whose heads must be in the chain"))
    p.add_argument("--json", action="store_true", help=_("machine-readable output"))
    p.set_defaults(func=run)


def _print(what: str, f: Any) -> None:
    if f.refused:
        print(_("{what}: refused: {why}").format(what=what, why=f.refused))
        return
    print(_("{what}: {n} file(s) checked, {missing} missing, {changed} changed, {unexpected} unexpected").format(
        what=what, n=f.checked, missing=len(f.missing), changed=len(f.changed), unexpected=len(f.unexpected)))
    for label, items in ((_("missing"), f.missing), (_("changed"), f.changed), (_("unexpected"), f.unexpected)):
        for item in items[:50]:
            print(f"  {label}: {item}")


def check_audit(sessions: Any, anchor_files: list[str]) -> dict[str, object]:
    from naskahd import audit

    anchors: list[audit.Head] = []
    for path in anchor_files:
        try:
            anchors += audit.read_anchors(path)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise UsageError(_("cannot read the anchor file {path}: {error}").format(path=path, error=exc)) from None
    with sessions() as s:
        result = audit.verify_chain(s, anchors)
    return {"ok": result.ok, "rows": result.rows, "head": str(result.head), "broken_row": result.broken_seq,
            "kind": result.kind, "problem": result.problem, "anchors": len(anchors)}


def _print_audit(info: dict[str, Any]) -> None:
    if info["ok"]:
        print(_("Audit trail intact: {rows} rows, head {head}").format(rows=info["rows"], head=info["head"]))
    else:
        print(_("Audit trail BROKEN at row {seq}: {problem}").format(seq=info["broken_row"], problem=info["problem"]))
        print(_("The rows before it ({rows}) hold; keep a copy of the register and tell the head of section."
                ).format(rows=info["rows"]))


def _withdraw(session: Any, drive_id: int, agendas: list[str]) -> None:
    from sqlalchemy import delete, select

    from naskahd.register import Copy, Document

    ids = select(Document.id).where(Document.agenda.in_(agendas))
    session.execute(delete(Copy).where(Copy.drive_id == drive_id, Copy.document_id.in_(ids)))


def _verify_drives(cfg: Any, sessions: Any, names: list[str] | None, archive_only: bool) -> dict[str, Any]:
    from sqlalchemy import select

    from naskahd import audit
    from naskahd.drives import copy, sync, verify
    from naskahd.register import Drive

    out: dict[str, Any] = {}
    with sessions() as s:
        registered = {d.name: d for d in s.scalars(select(Drive))}
    for name in names or ([] if archive_only else sorted(registered)):
        drive = registered.get(name)
        if drive is None:
            raise NaskahdError(_("no drive named {name} is registered ('naskahd drive list')").format(name=name))
        found = sync.find_mount(drive.uuid)
        if found is None:
            if names:
                raise NaskahdError(_("drive {name} is not mounted (plug it in; it is mounted at /media/naskahd/{name})").format(name=name))
            continue  # no option: every registered drive that is mounted
        mount, _node = found
        with copy.DriveRoot(mount) as root:
            why = sync.check_identity(cfg, drive, root)
            if why is not None:
                f = verify.Findings(refused=why)
            else:
                f = verify.verify_drive(root, Path(mount.mountpoint), drive, sessions)
                with sessions.begin() as s:
                    if f.ok:
                        row = s.get(Drive, drive.id)
                        if row is not None:
                            row.last_verified_at = dt.datetime.now(dt.UTC)
                    elif f.missing or f.changed:
                        # A copy found missing or changed is no verified backup any more: its
                        # record goes, so reports and the next sync see the document as lacking.
                        _withdraw(s, drive.id, [*f.missing, *f.changed])
                    # The verification run, for the backup report (drives/reporting.py).
                    audit.record(s, "drive.verified", actor=audit.cli_actor(), drive=name, checked=f.checked,
                                 failed=len(f.missing) + len(f.changed), unexpected=len(f.unexpected), ok=f.ok)
        out[name] = f
    return out


def run(args: argparse.Namespace) -> int:
    from naskahd import config, installation
    from naskahd.drives import verify

    cfg = config.load(args.config)
    # Never a register in place of a missing disk's; every page of it checked first.
    sessions = installation.open_checked(cfg, create=True, integrity=True)
    files = args.archive or bool(args.drive) or not args.audit  # --audit alone: only the chain
    do_audit = args.audit or bool(args.anchors) or not (args.archive or args.drive)
    results: dict[str, Any] = {}
    drives_out: dict[str, Any] = {}
    if files:
        if args.archive or not args.drive:
            results["archive"] = verify.verify_archive(cfg.archive, sessions)
        drives_out = _verify_drives(cfg, sessions, args.drive, args.archive)
    audit_info = check_audit(sessions, args.anchors) if do_audit else None
    ok = all(f.ok for f in [*results.values(), *drives_out.values()]) and (audit_info is None or bool(audit_info["ok"]))
    if args.json:
        out: dict[str, Any] = {"ok": ok}
        if files:
            out["drives"] = {n: f.as_json() for n, f in drives_out.items()}
        if "archive" in results:
            out["archive"] = results["archive"].as_json()
        if audit_info is not None:
            out["audit"] = audit_info
        print(json.dumps(out, ensure_ascii=False, indent=2))
    else:
        if "archive" in results:
            _print(_("archive"), results["archive"])
        for n, f in drives_out.items():
            _print(_("drive {name}").format(name=n), f)
        if audit_info is not None:
            _print_audit(audit_info)
    return EXIT_OK if ok else EXIT_ATTENTION
