"""``naskahd review [--json]``: the files in the review folder (``drop/tinjau/``), each with
the folder it came from, when it was moved there and why.

A person fixes the cause and moves the file back into ``masuk/``, ``keluar/`` or
``dikecualikan/``. An exempt letter's name is withheld (it can reveal its subject); the file
itself is still there for a person to see.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from naskahd.i18n import _


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("review", help=_("list the files waiting for a person in the review folder, and why"))
    p.add_argument("--json", action="store_true", help=_("machine-readable output"))
    p.set_defaults(func=run)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    move = actions.add_parser("move", help=_("move a file from the review folder into masuk/, keluar/ or dikecualikan/, "
                                             "for the daemon to file it"))
    move.add_argument("name", metavar="NAME", help=_("the file's name in the review folder (as 'naskahd review' shows it; "
                                                     "an exempt one as dikecualikan/NAME)"))
    move.add_argument("--to", required=True, metavar="CATEGORY",
                      help=_("inbound (masuk), outbound (keluar) or exempt (dikecualikan)"))
    seen = actions.add_parser("seen", help=_("mark a duplicate as checked by a person (the file is left where it is)"))
    seen.add_argument("name", metavar="NAME", help=_("the file's name in the duplicates folder"))
    for a in (move, seen):
        a.add_argument("--by", metavar="NAME", default=None, help=_("who does it (default: the login name, as cli:NAME)"))
        a.add_argument("--json", action="store_true", help=_("machine-readable output"))
    move.set_defaults(func=run_move)
    seen.set_defaults(func=run_seen)


def _item(args: argparse.Namespace) -> tuple[Any, str]:
    from naskahd import config
    from naskahd.errors import LetterError
    from naskahd.letters import triage

    cfg = config.load(args.config)
    ident = triage.id_of(cfg, args.name)
    if ident is None:
        raise LetterError(_("{name} is not waiting in the review folder {review} nor in the duplicates folder {duplicates}; "
                            "see 'naskahd review' and 'naskahd duplicates'").format(
                                name=cfg.withheld(args.name), review=cfg.review_dir, duplicates=cfg.duplicates_dir))
    return cfg, ident


def run_move(args: argparse.Namespace) -> int:
    from naskahd import audit
    from naskahd.letters import triage

    cfg, ident = _item(args)
    result = triage.move(cfg, ident, args.to, by=args.by or audit.cli_actor())
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        print(_("Moved into {folder}: the daemon files it as a {category} letter.").format(
            folder=cfg.drop / result["moved_to"], category=result["category"]))
    return 0


def run_seen(args: argparse.Namespace) -> int:
    from naskahd import audit
    from naskahd.letters import triage

    cfg, ident = _item(args)
    result = triage.mark_seen(cfg, ident, by=args.by or audit.cli_actor())
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        print(_("Marked as seen by {by}: the duplicate of {agenda} no longer needs anyone (the file is still in the "
                "duplicates folder; delete it when you no longer need it).").format(by=result["seen_by"], agenda=result["duplicate_of"]))
    return 0


def _files(review_dir: Path) -> list[tuple[str, bool]]:
    """(name inside the review folder, exempt?) of every file there; exempt ones may sit in
    a ``dikecualikan/`` subfolder."""
    from naskahd.categories import DROP_FOLDER, EXEMPT

    found: list[tuple[str, bool]] = []
    try:
        entries = sorted(os.scandir(review_dir), key=lambda e: e.name)
    except OSError:
        return []
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            if entry.name == DROP_FOLDER[EXEMPT]:
                try:
                    found += [(f"{entry.name}/{e.name}", True) for e in sorted(os.scandir(entry.path), key=lambda e: e.name)
                              if not e.is_dir(follow_symlinks=False)]
                except OSError:
                    pass
            continue
        found.append((entry.name, False))
    return found


def _folder_of(source: str | None, exempt: bool) -> str | None:
    """The drop subfolder a file came from (``masuk/sub/``, ``./`` for the drop folder itself)."""
    from naskahd.categories import DROP_FOLDER, EXEMPT

    if exempt:
        return DROP_FOLDER[EXEMPT] + "/"
    if source is None:
        return None
    return source.rpartition("/")[0] + "/" if "/" in source else "./"


def gather(cfg: Any) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from naskahd import naming, reasons
    from naskahd.errors import RegisterError
    from naskahd.register import ReviewItem, open_register

    items: dict[str, Any] = {}
    try:
        sessions = open_register(cfg.database_url, create=False)
    except RegisterError:
        sessions = None
    if sessions is not None:
        with sessions() as s:
            for item in s.scalars(select(ReviewItem).order_by(ReviewItem.id)):
                items[item.name_sha256] = item  # the latest move of that name wins
    keys = None  # exempt items are recorded under a key of the host secret (filing/keys.py)
    out = []
    for name, in_exempt_folder in _files(cfg.review_dir):
        base = name.rpartition("/")[2]
        if in_exempt_folder and keys is None:
            from naskahd.cli.status_cmd import _exempt_review_keys

            keys = _exempt_review_keys(cfg) or False
        exempt_key = keys.review_name(base) if in_exempt_folder and keys else None
        item = items.get(exempt_key) if exempt_key else None
        item = item or items.get(naming.name_key(base)) or items.get(naming.name_key(name))
        exempt = in_exempt_folder or (item is not None and not item.source_relpath)
        source = naming.display_name(item.source_relpath) if item is not None and item.source_relpath else None
        out.append({
            "name": None if exempt else naming.display_name(os.fsencode(name)),
            "exempt": exempt,
            "from": _folder_of(source, exempt),
            "moved_at": item.moved_at.isoformat() if item is not None else None,
            "reason": reasons.render(item.reason) if item is not None else _("moved to review"),
            "reason_code": reasons.code_of(item.reason) if item is not None else None,
        })
    return out


def run(args: argparse.Namespace) -> int:
    import datetime as dt

    from naskahd import config, naming

    cfg = config.load(args.config)
    try:
        os.scandir(cfg.review_dir).close()
    except FileNotFoundError:
        pass
    except OSError as exc:  # "nothing waits" would be wrong: the folder cannot be looked at
        from naskahd.cli.status_cmd import _folder_problem

        print(f"naskahd: {_folder_problem(cfg.review_dir, exc)}", file=sys.stderr)
        return 1
    items = gather(cfg)
    if args.json:
        print(json.dumps(items, ensure_ascii=False, indent=2))
        return 0
    if not items:
        print(_("Nothing waits in the review folder {folder}.").format(folder=cfg.review_dir))
        return 0
    print(_("{n} file(s) wait in the review folder {folder}; fix the cause, then move each into masuk/, keluar/ "
            "or dikecualikan/:").format(n=len(items), folder=cfg.review_dir))
    for item in items:
        when = (dt.datetime.fromisoformat(item["moved_at"]).astimezone(cfg.timezone).strftime("%Y-%m-%d %H:%M")
                if item["moved_at"] else "-")
        name = item["name"] if item["name"] is not None else _("{withheld} (exempt letter)").format(
            withheld=_(naming.WITHHELD))
        print(_("- {name}").format(name=name))
        print(_("    from {folder}, moved at {when}").format(folder=item["from"] or "?", when=when))
        print(_("    why: {reason}").format(reason=item["reason"]))
    return 0
