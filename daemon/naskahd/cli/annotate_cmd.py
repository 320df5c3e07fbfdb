"""``naskahd annotate AGENDA [--nomor ...] [--tanggal ...] [--asal ...|--tujuan ...]
[--perihal ...] [--sifat ...] [--catatan ...] [--by NAME] [--json]``: a letter's details in
the register (SOP step 1's "form input data", as an agenda book keeps them).

A detail not given is left as it is; an empty value (``--perihal ""``) clears it. An exempt
letter keeps only its agenda number, dates and sifat in clear: anything else is refused,
and nothing is changed. The same function as the web page's (``naskahd.letters.details``).
"""

from __future__ import annotations

import argparse
import json

from naskahd.i18n import _

FIELDS = ("nomor", "tanggal", "asal", "tujuan", "perihal", "sifat", "catatan")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("annotate", help=_("record a letter's details in the register: number, date, sender or addressee, "
                                          "subject, sifat, note"))
    p.add_argument("agenda", metavar="AGENDA", help=_("the agenda number, e.g. 0001/M/2026"))
    p.add_argument("--nomor", metavar="TEXT", help=_("the letter's own number (nomor surat), e.g. 045/UND/XI/2026"))
    p.add_argument("--tanggal", metavar="DATE", help=_("the letter's date (tanggal surat): 30-11-2026 or 2026-11-30"))
    p.add_argument("--asal", metavar="TEXT", help=_("who sent it (asal surat), for an inbound letter"))
    p.add_argument("--tujuan", metavar="TEXT", help=_("whom it is addressed to (tujuan surat), for an outbound letter"))
    p.add_argument("--perihal", metavar="TEXT", help=_("its subject (perihal)"))
    p.add_argument("--sifat", metavar="CHOICE",
                   help=_("its urgency (sifat): one of [letters] sifat, by default biasa, segera, sangat segera"))
    p.add_argument("--catatan", metavar="TEXT", help=_("a free note"))
    p.add_argument("--by", metavar="NAME", default=None,
                   help=_("who records it (default: the login name, as cli:NAME)"))
    p.add_argument("--json", action="store_true", help=_("machine-readable output"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from naskahd import audit, config, installation
    from naskahd.errors import UsageError
    from naskahd.letters.details import annotate

    changes = {name: getattr(args, name) for name in FIELDS if getattr(args, name) is not None}
    if not changes:
        raise UsageError(_("give at least one detail to record, e.g. --perihal TEXT; see 'naskahd annotate --help'"))
    cfg = config.load(args.config)
    sessions = installation.open_checked(cfg, create=True)  # migrates; never a new register in place of a missing one
    result = annotate(sessions, cfg, args.agenda, changes, by=args.by or audit.cli_actor())
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return 0
    if not result["changed"]:
        print(_("{agenda}: nothing changed (the details were already so).").format(agenda=result["agenda"]))
        return 0
    print(_("{agenda}: recorded {fields}.").format(agenda=result["agenda"], fields=", ".join(result["changed"])))
    for name, value in result["details"].items():
        if value is not None:
            print(f"  {name}: {value}")
    return 0
