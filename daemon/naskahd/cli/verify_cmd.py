"""``naskahd verify [--audit] [--anchors FILE] [--json]``: is the audit trail's chain whole?

Exit 0 when it is, 1 naming the first broken row. (``--archive`` and ``--drive`` come with
the drives issue; without any of them, every check runs.)
"""

from __future__ import annotations

import argparse
import json

from naskahd.errors import EXIT_ATTENTION, EXIT_OK, UsageError
from naskahd.i18n import _


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("verify", help=_("check the audit trail's hash chain (and, with the drives, the copies)"))
    p.add_argument("--audit", action="store_true", help=_("check only the audit trail's hash chain"))
    p.add_argument("--anchors", metavar="FILE", action="append", default=[],
                   help=_("an anchor file (naskahd-audit-anchors.txt from a backup drive) whose heads must be in the chain"))
    p.add_argument("--json", action="store_true", help=_("machine-readable output"))
    p.set_defaults(func=run)


def check_audit(cfg: object, anchor_files: list[str]) -> dict[str, object]:
    from naskahd import audit, installation

    anchors: list[audit.Head] = []
    for path in anchor_files:
        try:
            anchors += audit.read_anchors(path)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise UsageError(_("cannot read the anchor file {path}: {error}").format(path=path, error=exc)) from None
    sessions = installation.open_checked(cfg, create=False)  # type: ignore[arg-type]
    with sessions() as s:
        result = audit.verify_chain(s, anchors)
    return {"ok": result.ok, "rows": result.rows, "head": str(result.head), "broken_row": result.broken_seq,
            "kind": result.kind, "problem": result.problem, "anchors": len(anchors)}


def run(args: argparse.Namespace) -> int:
    from naskahd import config

    cfg = config.load(args.config)
    info = check_audit(cfg, args.anchors)
    if args.json:
        print(json.dumps({"audit": info}, ensure_ascii=False, indent=2))
    elif info["ok"]:
        print(_("Audit trail intact: {rows} rows, head {head}").format(rows=info["rows"], head=info["head"]))
    else:
        print(_("Audit trail BROKEN at row {seq}: {problem}").format(seq=info["broken_row"], problem=info["problem"]))
        print(_("The rows before it ({rows}) hold; keep a copy of the register and tell the head of section."
                ).format(rows=info["rows"]))
    return EXIT_OK if info["ok"] else EXIT_ATTENTION
