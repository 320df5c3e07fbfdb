"""``naskahd list [--category C] [--since DATE] [--until DATE] [--json] [--identity FILE]``: the register.

``--category`` takes the register's names (inbound, outbound, exempt) or the drop folders'
Indonesian ones (masuk, keluar, dikecualikan).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import Any

from naskahd.categories import CATEGORIES, DROP_FOLDER, EXEMPT
from naskahd.errors import UsageError
from naskahd.i18n import _


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("list", help=_("list registered documents"))
    p.add_argument("--category", type=_category, metavar="CATEGORY",
                   help=_("only this category: masuk, keluar, dikecualikan (or inbound, outbound, exempt)"))
    p.add_argument("--since", metavar="DATE", help=_("only documents received on or after DATE (YYYY-MM-DD, office time)"))
    p.add_argument("--until", metavar="DATE", help=_("only documents received on or before DATE (YYYY-MM-DD, office time)"))
    p.add_argument("--json", action="store_true", help=_("machine-readable output"))
    p.add_argument("--identity", "-i", metavar="FILE", help=_("age identity that reveals exempt documents' original names"))
    p.add_argument("--passphrase-file", metavar="FILE", help=_("passphrase of a protected identity file"))
    p.set_defaults(func=run)


def _category(value: str) -> str:
    by_folder = {folder: category for category, folder in DROP_FOLDER.items()}
    text = value.strip().lower()
    if text in CATEGORIES:
        return text
    if text in by_folder:
        return by_folder[text]
    raise argparse.ArgumentTypeError(_("unknown category {value!r}; use one of: {choices}").format(
        value=value, choices=", ".join([*DROP_FOLDER.values(), *CATEGORIES])))


def _day(option: str, text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UsageError(_("{option} {value!r} is not a date; write it as YYYY-MM-DD").format(
            option=option, value=text)) from None


def _since(cfg: Any, text: str) -> dt.datetime:
    """The first instant of the office-time day ``text``, in UTC."""
    return dt.datetime.combine(_day("--since", text), dt.time(), tzinfo=cfg.timezone).astimezone(dt.UTC)


def _until(cfg: Any, text: str) -> dt.datetime:
    """The first instant after the office-time day ``text``, in UTC (the day is included)."""
    day = _day("--until", text) + dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(), tzinfo=cfg.timezone).astimezone(dt.UTC)


def _identities(args: argparse.Namespace) -> list[Any]:
    # The same identity loading as `naskahd decrypt` (plain or passphrase-protected files).
    from naskahd.cli.decrypt_cmd import load_identities, passphrase_source

    return load_identities([args.identity], passphrase_source(args.passphrase_file))


def run(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from naskahd import config, naming
    from naskahd import installation
    from naskahd.register import Document

    cfg = config.load(args.config)
    since = _since(cfg, args.since) if args.since else None
    until = _until(cfg, args.until) if args.until else None
    if since is not None and until is not None and until <= since:
        raise UsageError(_("--until {until} is before --since {since}; nothing can match").format(
            until=args.until, since=args.since))
    identities = _identities(args) if args.identity else None
    sessions = installation.open_checked(cfg, create=False)
    query = select(Document).order_by(Document.id)
    if args.category:
        query = query.where(Document.category == args.category)
    if since is not None:
        query = query.where(Document.received_at >= since)
    if until is not None:
        query = query.where(Document.received_at < until)
    rows = []
    with sessions() as s:
        for d in s.scalars(query):
            name = d.original_name
            if d.category == EXEMPT and identities is not None and d.original_name_sealed:
                from naskahd import age

                name = naming.display_name(age.decrypt_bytes(d.original_name_sealed, identities))
            rows.append({
                "agenda": d.agenda, "category": d.category, "original_name": name,
                "archive_path": d.archive_path, "sha256": d.sha256, "size": d.size,
                "received_at": d.received_at.isoformat(), "detected_type": d.detected_type,
                "ciphertext_sha256": d.ciphertext_sha256, "state": d.state.value,
            })
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    if not rows:
        if args.since or args.until or args.category:
            print(_("No documents in this period."))
        else:
            print(_("No documents registered."))
        return 0
    withheld = _("(withheld)")
    agenda, received, size, name = _("Agenda"), _("Received"), _("Size (bytes)"), _("Original name")
    print(f"{agenda:<14} {received:<16}  {size:>12}  {name}")
    for r in rows:
        when = dt.datetime.fromisoformat(r["received_at"]).astimezone(cfg.timezone).strftime("%Y-%m-%d %H:%M")
        print(f"{r['agenda']:<14} {when:<16}  {r['size']:>12}  {r['original_name'] if r['original_name'] is not None else withheld}")
    return 0
