"""``naskahd report``: reports for the heads of section and division (SOP steps 8-10).

    naskahd report (--month YYYY-MM | --from DATE --to DATE) [--format pdf|csv|json] [-o FILE] [--lang id|en]
    naskahd report list [--json]
    naskahd report show ID [-o FILE]                 render a registered report again
    naskahd report review ID --by NAME [--note TEXT]
    naskahd report validate ID --by NAME [--note TEXT]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from naskahd.errors import EXIT_OK, NaskahdError, UsageError
from naskahd.i18n import _


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("report", help=_("make, list, review and validate reports for the heads of section and division"))
    p.add_argument("--month", metavar="YYYY-MM", help=_("the calendar month to report on"))
    p.add_argument("--from", dest="start", metavar="DATE", help=_("first day to report on (YYYY-MM-DD, office time)"))
    p.add_argument("--to", dest="end", metavar="DATE", help=_("last day to report on (YYYY-MM-DD, office time)"))
    p.add_argument("--format", choices=("pdf", "csv", "json"), default="pdf", help=_("file format (default: pdf)"))
    p.add_argument("-o", "--output", metavar="FILE", help=_("where to write it ('-' for standard output)"))
    p.set_defaults(func=run_generate)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    ls = actions.add_parser("list", help=_("list the generated reports"))
    ls.add_argument("--json", action="store_true", help=_("machine-readable output"))
    ls.set_defaults(func=run_list)
    show = actions.add_parser("show", help=_("render a registered report again (with its sign-offs)"))
    show.add_argument("id", type=int, metavar="ID")
    show.add_argument("-o", "--output", dest="show_output", metavar="FILE", help=_("where to write it ('-' for standard output)"))
    show.set_defaults(func=run_show)
    for name, helptext in (("review", _("record the review by the head of the cryptography section (step 9)")),
                           ("validate", _("record the validation by the head of the informatics division (step 10)"))):
        a = actions.add_parser(name, help=helptext)
        a.add_argument("id", type=int, metavar="ID")
        a.add_argument("--by", required=True, metavar="NAME", help=_("the name of the person signing"))
        a.add_argument("--note", metavar="TEXT", help=_("a note shown in the signature block"))
        a.set_defaults(func=run_signoff, signoff=name)


def _open(args: argparse.Namespace) -> tuple[Any, Any]:
    from naskahd import config, installation
    from naskahd.errors import RegisterError
    from naskahd.register.db import SCHEMA_REVISION, current_revision

    cfg = config.load(args.config)
    sessions = installation.open_checked(cfg, create=False)
    have = current_revision(sessions.kw["bind"])
    if have != SCHEMA_REVISION:
        raise RegisterError(_("the register is at schema revision {have}, this naskahd needs {want}: restart the daemon "
                              "(it brings the register up to date) and try again").format(have=have, want=SCHEMA_REVISION))
    _finish_unfinished(sessions)
    return cfg, sessions


def _finish_unfinished(sessions: Any) -> None:
    """Reports a stopped command left without their hash are finished by the next report
    command (report/unfinished.py); one that cannot write the register leaves them to the next."""
    from sqlalchemy.exc import OperationalError

    from naskahd.report.registry import finish_unfinished

    try:
        done = finish_unfinished(sessions)
    except (OperationalError, OSError):
        return
    for report_id in done:
        print(_("naskahd: report {id} was left unfinished by a report command that was stopped; it is registered now "
                "('naskahd report show {id}' renders it)").format(id=report_id), file=sys.stderr)


def _write(path: str | None, default: str, content: bytes) -> str:
    from naskahd import durable

    if path == "-":
        sys.stdout.buffer.write(content)
        sys.stdout.buffer.flush()
        return "-"
    target = Path(path or default)
    try:
        durable.write_bytes(target, content, mode=0o640)
    except FileExistsError:
        raise NaskahdError(_("{path} already exists; give another name with -o (nothing is overwritten)").format(path=target)) from None
    except OSError as exc:
        raise NaskahdError(_("cannot write {path}: {error}").format(path=target, error=exc.strerror)) from None
    return str(target)


def _default_name(row: Any) -> str:
    from naskahd.report.registry import period_of

    return f"laporan-{period_of(row).label.replace('..', '_')}-{row.id}.{row.format}"


def run_generate(args: argparse.Namespace) -> int:
    from naskahd.report import period, registry

    if args.month and (args.start or args.end):
        raise UsageError(_("give either --month or --from and --to, not both"))
    if args.month:
        chosen = period.month(args.month)
    elif args.start and args.end:
        chosen = period.between(args.start, args.end)
    else:
        raise UsageError(_("which period? give --month YYYY-MM, or --from DATE --to DATE"))
    cfg, sessions = _open(args)
    # The report's language: --lang (before or after the command), else Indonesian, not the
    # terminal's locale: the heads read Indonesian.
    lang = getattr(args, "lang", None) or "id"
    written: list[str] = []

    def deliver(row: Any, content: bytes) -> None:
        written.append(_write(args.output, _default_name(row), content))

    row, _content = registry.generate(sessions, cfg, chosen, args.format, lang, deliver=deliver)
    where = written[0]
    if where != "-":
        print(_("Report {id} ({period}, {format}) written to {path}").format(id=row.id, period=chosen.label, format=row.format, path=where))
        print(f"SHA-256 {row.sha256}")
    return EXIT_OK


def run_list(args: argparse.Namespace) -> int:
    from naskahd.report import registry

    cfg, sessions = _open(args)
    rows = registry.listing(sessions, cfg)
    if args.json:
        keys = ("id", "period", "kind", "format", "sha256", "created_at", "reviewed_by", "reviewed_at",
                "validated_by", "validated_at", "outdated")
        print(json.dumps([{k: r[k] for k in keys} for r in rows], ensure_ascii=False, indent=2))
        return EXIT_OK
    if not rows:
        print(_("No reports yet: make one with 'naskahd report --month YYYY-MM'."))
    for r in rows:
        state = (_("validated by {by}").format(by=r["validated_by"]) if r["validated_by"]
                 else _("reviewed by {by}").format(by=r["reviewed_by"]) if r["reviewed_by"] else _("not reviewed"))
        flag = "  " + _("OUT OF DATE") if r["outdated"] else ""
        print(f"{r['id']:>4}  {r['period']:<22} {r['format']:<4} {r['created_at'][:16]}  {r['sha256'][:12]}  {state}{flag}")
    return EXIT_OK


def run_show(args: argparse.Namespace) -> int:
    from naskahd.report import registry

    cfg, sessions = _open(args)
    with sessions() as s:
        row = registry.get(s, args.id)
        outdated = registry.is_outdated(s, cfg, row)
    content = registry.render(row, outdated)
    where = _write(args.show_output, _default_name(row), content)
    if where != "-":
        import hashlib

        digest = hashlib.sha256(content).hexdigest()
        print(_("Report {id} written to {path}").format(id=row.id, path=where))
        print(f"SHA-256 {digest}" + ("" if digest != row.sha256 else "  " + _("(identical to the registered file)")))
        if outdated:
            print(_("Note: the report is out of date; its first page says so."))
    return EXIT_OK


def run_signoff(args: argparse.Namespace) -> int:
    from naskahd.report import registry

    cfg, sessions = _open(args)
    if args.signoff == "review":
        row = registry.review(sessions, cfg, args.id, args.by, args.note)
        print(_("Report {id} reviewed by {by}.").format(id=row.id, by=row.reviewed_by))
    else:
        row = registry.validate(sessions, cfg, args.id, args.by, args.note)
        print(_("Report {id} validated by {by}. Audit trail head: {head}").format(id=row.id, by=row.validated_by, head=row.anchor))
    print(_("Render it again with its signature blocks: naskahd report show {id}").format(id=row.id))
    return EXIT_OK
