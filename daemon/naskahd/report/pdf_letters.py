"""The report PDF's letter details (issue 21): the backup control list's documents with
the details an agenda book keeps, for those that have any. A page of its own after the
control list, whose columns are full on A4 portrait; absent when no details are recorded
(a report of a register without them looks as it did before).

An exempt letter shows its agenda number, its letter date and its sifat only: that is all
the snapshot holds of it (report/data.py).
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.units import cm
from reportlab.platypus import PageBreak, Spacer, TableStyle

from naskahd.i18n import _
from naskahd.report import words
from naskahd.report.pdf_tables import _fit, _grid, paged

SIZE = 7.5
WIDTHS = [0.9, 2.3, 3.0, 1.8, 3.0, 3.7, 2.3]  # cm, 17 in all


def rows(documents: list[dict[str, Any]], lang: str) -> list[list[str]]:
    """One row per document with details: No. (in the control list), agenda, letter number,
    letter date, sender or addressee, subject, sifat; each cut to its column."""
    widths = [w * cm - 6 for w in WIDTHS]
    out = []
    for i, d in enumerate(documents, 1):
        letter = d.get("letter")
        if not letter:
            continue
        date = words.short_date(letter["tanggal"], lang) if letter.get("tanggal") else ""
        party = letter.get("asal") or letter.get("tujuan") or ""
        cells = [str(i), d["agenda"], letter.get("nomor") or "", date, party, letter.get("perihal") or "", letter.get("sifat") or ""]
        out.append([_fit(text, w, SIZE) if text else "" for text, w in zip(cells, widths, strict=True)])
    return out


def letter_details(r: Any) -> list[Any]:
    """The section, for ``report.pdf._Render.story`` (``r``: the renderer)."""
    body = rows(r.s["documents"], r.lang)
    if not body:
        return []
    header = [_("No."), _("Agenda no."), _("Letter no."), _("Letter date"), _("From / to"), _("Subject"), _("Sifat")]
    out: list[Any] = [r.p(escape(_("1a. Letter details (buku agenda)")), "h1"),
                      r.p(escape(_("The documents of the control list whose details were recorded: the letter's own number "
                                   "and date, who sent it (inbound) or whom it is addressed to (outbound), its subject and "
                                   "sifat. Of exempt letters only the date and sifat are kept.")), "small"), Spacer(1, 4)]
    style = TableStyle(_grid(size=SIZE) + [
        ("ALIGN", (0, 0), (0, -1), "RIGHT"),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f6f7f9")])])
    return [PageBreak(), *paged(out, header, body, [w * cm for w in WIDTHS], style)]
