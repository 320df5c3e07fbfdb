"""The report as CSV (for LibreOffice and Excel in an Indonesian locale) and as JSON.

CSV: UTF-8 with a byte-order mark (so Excel detects UTF-8), ``;`` between fields (the
decimal separator there is a comma), ISO dates, sizes in whole bytes: the backup control
list, one row per document, the letter's details (issue 21) in its last columns. JSON: the
report's registration and its whole snapshot.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any
from zoneinfo import ZoneInfo

from naskahd.categories import CATEGORIES
from naskahd.i18n import _
from naskahd.report import words

BOM = "\ufeff"
DELIMITER = ";"


def render_csv(snapshot: dict[str, Any], meta: dict[str, Any], lang: str) -> bytes:
    tz = ZoneInfo(snapshot["office"]["timezone"])
    buf = io.StringIO()
    with words.language(lang):
        w = csv.writer(buf, delimiter=DELIMITER, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
        # The letter's details (issue 21) come last, so the backup columns keep their places.
        w.writerow([_("agenda"), _("received date"), _("received time"), _("category"), _("name"),
                    _("size (bytes)"), _("SHA-256"), _("verified copies"), _("letter number"), _("letter date"),
                    _("sender"), _("addressee"), _("subject"), _("sifat"), _("note")])
        withheld = _("(withheld: exempt)")
        category = {c: words.category(c) for c in CATEGORIES}  # looked up once, not per row
        for d in snapshot["documents"]:
            when = words.local(d["received_at"], tz)
            copies = ", ".join(f"{c['drive']} {words.local(c['verified_at'], tz).date().isoformat()}" if c.get("verified_at")
                               else c["drive"] for c in d["copies"])
            w.writerow([d["agenda"], when.date().isoformat(), when.strftime("%H:%M"), category[d["category"]],
                        d["name"] if d["name"] is not None else withheld, d["size"], d["hash"], copies,
                        *letter_cells(d)])
    return (BOM + buf.getvalue()).encode("utf-8")


def letter_cells(d: dict[str, Any]) -> list[str]:
    """A document's letter details in the control list's order; blank where none are
    recorded (an exempt letter's are only ever its date and sifat: report/data.py)."""
    details = d.get("letter") or {}
    return [details.get(f) or "" for f in ("nomor", "tanggal", "asal", "tujuan", "perihal", "sifat", "catatan")]


def render_json(snapshot: dict[str, Any], meta: dict[str, Any], lang: str) -> bytes:
    return (json.dumps({"report": meta, "data": snapshot}, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode("utf-8")
