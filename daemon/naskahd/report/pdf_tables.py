"""The report PDF's tables: fitting text into a cell, the grid style, and long tables laid
out one per page (report/pdf.py, report/pdf_letters.py)."""

from __future__ import annotations

from typing import Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import cm
from reportlab.pdfbase import pdfmetrics
from reportlab.platypus import PageBreak, Table, TableStyle

PAGE_W, PAGE_H = A4
MARGIN_X, MARGIN_TOP, MARGIN_BOTTOM = 2.0 * cm, 2.6 * cm, 2.0 * cm
WIDTH = PAGE_W - 2 * MARGIN_X
FRAME_H = PAGE_H - MARGIN_TOP - MARGIN_BOTTOM
HEADER_ROW, BODY_ROW = 13, 11  # the control list's row heights (points)
FONT, BOLD = "NaskahSans", "NaskahSans-Bold"
INK, RULE, SHADE, ALERT = colors.HexColor("#1a1a1a"), colors.HexColor("#555555"), colors.HexColor("#e8ecf2"), colors.HexColor("#a40000")


def _fit(text: str, width: float, size: float) -> str:
    """``text``, cut with an ellipsis to fit ``width`` (a binary search on the length)."""
    if pdfmetrics.stringWidth(text, FONT, size) <= width:
        return text
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if pdfmetrics.stringWidth(text[:mid].rstrip() + "…", FONT, size) <= width:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo].rstrip() + "…"


def f_spacing(flowables: list[Any]) -> float:
    """The space before each flowable but the first (a frame drops it at its top)."""
    return sum(f.getSpaceBefore() for f in flowables[1:])


def _grid(header_rows: int = 1, size: float = 8) -> list[tuple[Any, ...]]:
    return [
        ("FONT", (0, 0), (-1, -1), FONT, size),
        ("FONT", (0, 0), (-1, header_rows - 1), BOLD, size),
        ("BACKGROUND", (0, 0), (-1, header_rows - 1), SHADE),
        ("GRID", (0, 0), (-1, -1), 0.4, RULE),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
    ]


def paged(out: list[Any], header: list[str], body: list[list[str]], widths: list[float], style: TableStyle) -> list[Any]:
    """``out`` followed by a table of ``body`` rows, one table per page, each with the header
    row, instead of one table that reportlab splits page by page (each split copies the
    rest of the table: quadratic in the rows). A chunk that does not fit after all is split
    with its header repeated."""
    used = sum(f.wrap(WIDTH, FRAME_H)[1] + f.getSpaceAfter() for f in out) + f_spacing(out)
    first = max(1, int((FRAME_H - used - HEADER_ROW) // BODY_ROW) - 1)
    per_page = int((FRAME_H - HEADER_ROW) // BODY_ROW) - 1
    chunks = [body[:first]] + [body[i:i + per_page] for i in range(first, len(body), per_page)]
    for k, chunk in enumerate(c for c in chunks if c):
        if k:
            out.append(PageBreak())
        table = Table([header, *chunk], colWidths=widths, repeatRows=1, rowHeights=[HEADER_ROW] + [BODY_ROW] * len(chunk))
        table.setStyle(style)
        out.append(table)
    return out
