"""``naskahd duplicates [--json]``: files set aside in ``drop/duplikat/`` because their
content is already registered, each with the agenda number it duplicates.

Nothing is registered twice: a duplicate keeps only a row pointing at the first document.
Once a person has checked one, it can be deleted. Exempt letters' names are withheld.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from naskahd.i18n import _


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("duplicates", help=_("list the files set aside as duplicates, with the number each repeats"))
    p.add_argument("--json", action="store_true", help=_("machine-readable output"))
    p.set_defaults(func=run)


def gather(cfg: Any) -> list[dict[str, Any]]:
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from naskahd import naming
    from naskahd.categories import DROP_FOLDER, EXEMPT
    from naskahd.config import DUPLICATES_FOLDER
    from naskahd.register import Duplicate, open_register

    sessions = open_register(cfg.database_url, create=False)
    out = []
    with sessions() as s:
        query = select(Duplicate).options(selectinload(Duplicate.document)).order_by(Duplicate.id)
        for d in s.scalars(query):
            exempt = d.document.category == EXEMPT or not d.moved_to
            source = naming.display_name(d.source_relpath) if d.source_relpath and not exempt else None
            out.append({
                "duplicate_of": d.document.agenda,
                "category": d.document.category,
                "name": None if exempt else d.moved_to,
                "moved_to": f"{DUPLICATES_FOLDER}/{d.moved_to}" if not exempt else None,
                "from": source if source else (DROP_FOLDER[EXEMPT] + "/" if exempt else None),
                "still_there": (cfg.duplicates_dir / d.moved_to).exists() if not exempt and d.moved_to else None,
                "detected_at": d.detected_at.isoformat(),
            })
    return out


def run(args: argparse.Namespace) -> int:
    import datetime as dt

    from naskahd import config, naming

    cfg = config.load(args.config)
    items = gather(cfg)
    if args.json:
        print(json.dumps(items, ensure_ascii=False, indent=2))
        return 0
    if not items:
        print(_("No duplicates have been set aside."))
        return 0
    print(_("Files set aside in {folder} because their content is already registered (nothing was registered "
            "twice; once checked, they can be deleted):").format(folder=cfg.duplicates_dir))
    for item in items:
        when = dt.datetime.fromisoformat(item["detected_at"]).astimezone(cfg.timezone).strftime("%Y-%m-%d %H:%M")
        name = item["name"] if item["name"] is not None else _("{withheld} (exempt letter)").format(
            withheld=_(naming.WITHHELD))
        line = _("- {name}: the same content as {agenda}, seen {when}").format(name=name, agenda=item["duplicate_of"], when=when)
        if item["still_there"] is False:
            line += " " + _("(no longer in the folder)")
        print(line)
    return 0
