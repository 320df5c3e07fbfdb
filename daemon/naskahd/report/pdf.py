"""The report as a PDF a head of division signs (reportlab): A4 portrait, the office's
name in a header on every page, "Halaman 2 dari 5", tables whose header row repeats on
every page they run onto, a font that renders Indonesian (DejaVu Sans from Debian's
fonts-dejavu-core, else reportlab's own Vera), and the same bytes for the same input
(``invariant``: no creation time or random id in the file).

Page 1 is the executive summary with the signature blocks; then the backup control list,
the send/receive report with its chart, and the backup report.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import cm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas as rl_canvas
from reportlab.platypus import (
    BaseDocTemplate, CondPageBreak, Frame, KeepTogether, PageBreak, PageTemplate, Paragraph, Spacer, Table, TableStyle,
)
from xml.sax.saxutils import escape

from naskahd import reasons
from naskahd.categories import CATEGORIES
from naskahd.i18n import _
from naskahd.report import data, words
from naskahd.report.pdf_tables import (
    ALERT, BOLD, FONT, INK, MARGIN_BOTTOM, MARGIN_TOP, MARGIN_X, PAGE_H, PAGE_W, RULE, SHADE, WIDTH, _fit, _grid, paged,
)

DEJAVU = Path("/usr/share/fonts/truetype/dejavu")
CATEGORY_COLORS = {"inbound": colors.HexColor("#2f5d8a"), "outbound": colors.HexColor("#6a9a3a"), "exempt": colors.HexColor("#b07a18")}


def _register_fonts() -> None:
    if FONT in pdfmetrics.getRegisteredFontNames():
        return
    import reportlab

    regular, bold = DEJAVU / "DejaVuSans.ttf", DEJAVU / "DejaVuSans-Bold.ttf"
    if not (regular.exists() and bold.exists()):
        own = Path(reportlab.__file__).with_name("fonts")
        regular, bold = own / "Vera.ttf", own / "VeraBd.ttf"
    pdfmetrics.registerFont(TTFont(FONT, str(regular)))
    pdfmetrics.registerFont(TTFont(BOLD, str(bold)))
    pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=BOLD, italic=FONT, boldItalic=BOLD)


def _styles() -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("body", fontName=FONT, fontSize=9.5, leading=12.5, textColor=INK)
    return {
        "body": base,
        "small": ParagraphStyle("small", parent=base, fontSize=8, leading=10),
        "title": ParagraphStyle("title", parent=base, fontName=BOLD, fontSize=14, leading=18, alignment=TA_CENTER, spaceAfter=2),
        "subtitle": ParagraphStyle("subtitle", parent=base, fontSize=10.5, leading=14, alignment=TA_CENTER),
        # keepWithNext: a heading never ends a page without what it heads
        "h1": ParagraphStyle("h1", parent=base, fontName=BOLD, fontSize=12, leading=16, spaceBefore=4, spaceAfter=6, keepWithNext=1),
        "h2": ParagraphStyle("h2", parent=base, fontName=BOLD, fontSize=10, leading=13, spaceBefore=8, spaceAfter=4, keepWithNext=1),
        "alert": ParagraphStyle("alert", parent=base, fontName=BOLD, textColor=ALERT, borderColor=ALERT, borderWidth=1,
                                borderPadding=5, spaceBefore=4, spaceAfter=10),
        "sign": ParagraphStyle("sign", parent=base, alignment=TA_CENTER, leading=13),
        "signsmall": ParagraphStyle("signsmall", parent=base, alignment=TA_CENTER, fontSize=8, leading=10),
    }


def _numbered_canvas(header: str, title: str, footer_left: str) -> type[rl_canvas.Canvas]:
    """A canvas that draws header and "page N of M" once it knows M (reportlab's own recipe)."""

    class NumberedCanvas(rl_canvas.Canvas):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:  # noqa: N802 (reportlab's name)
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                self._decorate(total)
                super().showPage()
            super().save()

        def _decorate(self, total: int) -> None:
            self.saveState()
            self.setFillColor(INK)
            self.setFont(BOLD, 9)
            self.drawString(MARGIN_X, PAGE_H - 1.45 * cm, header)
            self.setFont(FONT, 8)
            self.drawRightString(PAGE_W - MARGIN_X, PAGE_H - 1.45 * cm, title)
            self.setStrokeColor(RULE)
            self.setLineWidth(0.6)
            self.line(MARGIN_X, PAGE_H - 1.7 * cm, PAGE_W - MARGIN_X, PAGE_H - 1.7 * cm)
            self.line(MARGIN_X, 1.45 * cm, PAGE_W - MARGIN_X, 1.45 * cm)
            self.setFont(FONT, 7.5)
            self.drawString(MARGIN_X, 1.0 * cm, footer_left)
            self.drawRightString(PAGE_W - MARGIN_X, 1.0 * cm,
                                 _("Page {page} of {pages}").format(page=self._pageNumber, pages=total))
            self.restoreState()

    return NumberedCanvas


class _Render:
    def __init__(self, snapshot: dict[str, Any], meta: dict[str, Any], lang: str) -> None:
        self.s, self.meta, self.lang = snapshot, meta, lang
        self.tz = ZoneInfo(snapshot["office"]["timezone"])
        self.st = _styles()

    def p(self, text: str, style: str = "body") -> Paragraph:
        return Paragraph(text, self.st[style])

    def when(self, iso: str | None) -> str:
        return words.datetime(iso, self.tz, self.lang) if iso else "–"

    def n(self, value: int) -> str:
        return words.number(value, self.lang)

    # -- page 1 --------------------------------------------------------------------------
    def summary(self) -> list[Any]:
        s, m = self.s, self.meta
        t = s["totals"]
        out: list[Any] = [
            self.p(_("EXECUTIVE SUMMARY"), "title"),
            self.p(escape(_("Electronic backup of official letters (SOP 31/SOP-KOMINFO/2020)")), "subtitle"),
            self.p(escape(_("Period: {period}").format(period=words.period(s["period"], self.lang))), "subtitle"),
            Spacer(1, 8),
        ]
        if m.get("outdated"):
            out.append(self.p(escape(_("OUT OF DATE: the register has changed since this report was made "
                                       "(a late document, a failed verification or a lost copy). Generate it again "
                                       "before it is signed.")), "alert"))
        rows = [
            [_("Letters in the period"), _("number")],
            [_("Inbound letters (surat masuk)"), self.n(t["inbound"])],
            [_("Outbound letters (surat keluar)"), self.n(t["outbound"])],
            [_("Exempt letters (dikecualikan, encrypted)"), self.n(t["exempt"])],
            [_("Total registered"), self.n(t["total"])],
            [_("Duplicates set aside"), self.n(len(s["duplicates"]))],
            [_("Items sent to review"), self.n(len(s["review"]))],
        ]
        table = Table(rows, colWidths=[11 * cm, 4 * cm], hAlign="CENTER")
        table.setStyle(TableStyle(_grid(size=9.5) + [("ALIGN", (1, 0), (1, -1), "RIGHT"),
                                                     ("FONT", (0, 4), (-1, 4), BOLD, 9.5)]))
        out += [table, Spacer(1, 8), self.p(escape(_("Exceptions that need a decision")), "h2")]
        exceptions = data.exceptions(s)
        if not exceptions:
            out.append(self.p(escape(_("None."))))
        for kind, count in exceptions:
            out.append(self.p("• " + escape(self.exception_text(kind, count))))
        out += [self.p(escape(_("Backup status")), "h2"), self.p(escape(self.backup_status()))]
        out += [self.p(escape(_("Audit trail")), "h2"), self.p(escape(self.audit_text()), "small")]
        out += [Spacer(1, 14), self.signatures()]
        return out

    def exception_text(self, kind: str, count: int) -> str:
        n = self.n(count)
        return {
            "unfinished": _("{n} document(s) are not completely filed (see the control list)"),
            "review": _("{n} scan(s) were moved to review and wait for a person"),
            "duplicates": _("{n} duplicate scan(s) were set aside (already registered)"),
            "not_backed_up": _("{n} document(s) have no verified copy on any backup drive"),
            "failed_checks": _("{n} backup or verification run(s) failed"),
        }[kind].format(n=n)

    def backup_status(self) -> str:
        b = self.s["backup"]
        if not b["drives"]:
            return _("No backup drive is registered yet: none of the {n} document(s) of the period is on a drive.").format(
                n=self.n(self.s["totals"]["total"]))
        newest = b["newest_verified_at"]
        if newest is None:
            return _("{drives} drive(s) registered; no verified backup in the period.").format(drives=len(b["drives"]))
        age = dt.datetime.fromisoformat(self.meta["created_at"]) - dt.datetime.fromisoformat(newest)
        return _("{drives} drive(s) registered; the newest verified backup is of {when} ({days} day(s) before this report); "
                 "{missing} document(s) are on no drive.").format(
            drives=len(b["drives"]), when=self.when(newest), days=max(0, age.days), missing=self.n(len(b["not_on_any_drive"])))

    def audit_text(self) -> str:
        m = self.meta
        text = _("Audit trail head when this report was made: {head}.").format(head=m["audit_head"])
        if m.get("anchor"):
            text += " " + _("Head recorded at validation: {head}. Keep this page: it lets a later check "
                            "('naskahd verify --audit') prove that the audit trail was not rewritten.").format(head=m["anchor"])
        return text

    def signatures(self) -> Table:
        m, s = self.meta, self.s
        place = s["office"].get("place") or ""
        made = words.date(words.local(m["created_at"], self.tz).date(), self.lang)
        dateline = f"{place}, {made}" if place else made

        def block(role: str, verb: str, by: str | None, at: str | None, note: str | None) -> list[Any]:
            cells = [self.p(escape(verb), "sign"), self.p(f"<b>{escape(role)}</b>", "sign"), Spacer(1, 1.6 * cm)]
            cells.append(self.p(f"<b><u>{escape(by)}</u></b>" if by else "(" + "." * 46 + ")", "sign"))
            if at:
                cells.append(self.p(escape(_("signed off {when}").format(when=self.when(at))), "signsmall"))
            if note:
                cells.append(self.p(escape(_("Note: {note}").format(note=note)), "signsmall"))
            return cells

        left = [self.p("&nbsp;", "sign")] + block(_("Head of the Cryptography Section"), _("Reviewed by,"),
                                                 m.get("reviewed_by"), m.get("reviewed_at"), m.get("review_note"))
        right = [self.p(escape(dateline), "sign")] + block(_("Head of the Informatics Division"), _("Validated by,"),
                                                          m.get("validated_by"), m.get("validated_at"), m.get("validation_note"))
        table = Table([[left, right]], colWidths=[WIDTH / 2, WIDTH / 2])
        table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
        return KeepTogether([table])

    # -- section 1 -----------------------------------------------------------------------

    def _copies(self, copies: list[dict[str, Any]], width: float, size: float) -> str:
        """``safe1 28/11, safe2 30/11``: which drives hold a verified copy since when."""
        if not copies:
            return "–"
        def since(iso: str) -> str:
            day = words.local(iso, self.tz).date()
            return f"{day.day:02d}/{day.month:02d}"  # the year is the report's (the full date is in the CSV)

        text = ", ".join(f"{c['drive']} {since(c['verified_at'])}" if c.get("verified_at") else c["drive"] for c in copies)
        return _fit(text, width, size)
    def control_list(self) -> list[Any]:
        size = 7.5
        widths = [0.9, 2.3, 2.65, 1.9, 2.85, 1.6, 2.3, 2.5]  # cm, 17 in all
        widths = [w * cm for w in widths]
        header = [_("No."), _("Agenda no."), _("Received"), _("Category"), _("Name"), _("Size"), _("SHA-256"), _("Copies")]
        rows: list[list[str]] = [header]
        withheld = _("(withheld: exempt)")
        category = {c: words.category(c) for c in CATEGORIES}  # looked up once, not per row
        name_w = widths[4] - 6
        withheld_fit = _fit(withheld, name_w, size)
        for i, d in enumerate(self.s["documents"], 1):
            when = words.local(d["received_at"], self.tz)
            rows.append([
                str(i), d["agenda"], f"{words.short_date(when.date(), self.lang)} {words.time(when, self.lang)[:5]}",
                category[d["category"]], _fit(d["name"], name_w, size) if d["name"] is not None else withheld_fit,
                words.size(d["size"], self.lang), d["hash"][:12], self._copies(d["copies"], widths[7] - 6, size),
            ])
        out: list[Any] = [self.p(escape(_("1. Backup control list (daftar kontrol backup)")), "h1"),
                          self.p(escape(_("Every document registered in the period, in the order received. Names of exempt "
                                          "letters are withheld; their hash is that of the encrypted file. Copies: the backup "
                                          "drives holding a verified copy, and since when.")), "small"), Spacer(1, 4)]
        if len(rows) == 1:
            out.append(self.p(escape(_("No document was registered in the period."))))
            return out
        style = TableStyle(_grid(size=size) + [
            ("ALIGN", (0, 0), (0, -1), "RIGHT"), ("ALIGN", (5, 1), (5, -1), "RIGHT"), ("ALIGN", (7, 0), (7, -1), "CENTER"),
            ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f6f7f9")])])
        return paged(out, header, rows[1:], widths, style)

    # -- section 2 -----------------------------------------------------------------------
    def chart(self) -> Drawing:
        days = self.s["daily"]
        drawing = Drawing(WIDTH, 6.2 * cm)
        bc = VerticalBarChart()
        bc.x, bc.y, bc.width, bc.height = 1.0 * cm, 1.1 * cm, WIDTH - 1.4 * cm, 4.4 * cm
        cats = ("inbound", "outbound", "exempt")
        bc.data = [[d[c] for d in days] for c in cats]
        bc.categoryAxis.style = "stacked"
        step = 1 if len(days) <= 31 else 7
        bc.categoryAxis.categoryNames = [str(int(d["date"][8:])) if i % step == 0 else "" for i, d in enumerate(days)]
        bc.categoryAxis.labels.fontName = FONT
        bc.categoryAxis.labels.fontSize = 6.5
        bc.valueAxis.labels.fontName = FONT
        bc.valueAxis.labels.fontSize = 7
        bc.valueAxis.valueMin = 0
        top = max((sum(d[c] for c in cats) for d in days), default=0)
        bc.valueAxis.valueMax = max(4, top + max(1, top // 10))
        bc.valueAxis.labelTextFormat = lambda v: words.number(int(v), self.lang) if v == int(v) else ""
        bc.barSpacing = 0.5
        bc.groupSpacing = 2
        for i, c in enumerate(cats):
            bc.bars[i].fillColor = CATEGORY_COLORS[c]
            bc.bars[i].strokeColor = None
        drawing.add(bc)
        legend = Legend()
        legend.x, legend.y = 1.0 * cm, 0.35 * cm
        legend.alignment = "right"
        legend.columnMaximum = 1
        legend.fontName, legend.fontSize = FONT, 7.5
        legend.dx = legend.dy = 7
        legend.deltax = 3.6 * cm
        legend.colorNamePairs = [(CATEGORY_COLORS[c], words.category(c)) for c in cats]
        drawing.add(legend)
        return drawing

    def send_receive(self) -> list[Any]:
        s = self.s
        out: list[Any] = [PageBreak(), self.p(escape(_("2. Send/receive report (laporan pengiriman dan penerimaan)")), "h1"),
                          self.p(escape(_("Letters registered per day (office time).")), "small"), self.chart(), Spacer(1, 4)]
        rows = [[_("Date"), words.category("inbound"), words.category("outbound"), words.category("exempt"), _("Total")]]
        for d in s["daily"]:
            total = d["inbound"] + d["outbound"] + d["exempt"]
            rows.append([words.date(d["date"], self.lang), self.n(d["inbound"]), self.n(d["outbound"]), self.n(d["exempt"]), self.n(total)])
        t = s["totals"]
        rows.append([_("Total"), self.n(t["inbound"]), self.n(t["outbound"]), self.n(t["exempt"]), self.n(t["total"])])
        table = Table(rows, colWidths=[5.5 * cm, 2.9 * cm, 2.9 * cm, 2.9 * cm, 2.8 * cm], repeatRows=1)
        table.setStyle(TableStyle(_grid() + [("ALIGN", (1, 0), (-1, -1), "RIGHT"), ("FONT", (0, -1), (-1, -1), BOLD, 8),
                                             ("BACKGROUND", (0, -1), (-1, -1), SHADE)]))
        out.append(table)
        out.append(self.p(escape(_("Duplicates")), "h2"))
        if s["duplicates"]:
            rows = [[_("Seen at"), _("Duplicate of"), _("Category")]] + [
                [self.when(d["at"]), d["agenda"], words.category(d["category"])] for d in s["duplicates"]]
            dup = Table(rows, colWidths=[6 * cm, 5 * cm, 6 * cm], repeatRows=1)
            dup.setStyle(TableStyle(_grid()))
            out.append(dup)
        else:
            out.append(self.p(escape(_("None."))))
        out.append(self.p(escape(_("Items sent to review")), "h2"))
        if s["review"]:
            withheld = _("(withheld: exempt)")
            rows = [[_("Moved at"), _("Name"), _("Reason")]] + [
                [self.when(r["at"]), _fit(r["name"], 4.0 * cm, 8) if r["name"] else withheld,
                 Paragraph(escape(reasons.render(r["reason"])), self.st["small"])] for r in s["review"]]
            rev = Table(rows, colWidths=[4.6 * cm, 4.2 * cm, 8.2 * cm], repeatRows=1)
            rev.setStyle(TableStyle(_grid()))
            out.append(rev)
        else:
            out.append(self.p(escape(_("None."))))
        return out

    # -- section 3 -----------------------------------------------------------------------
    def backup(self) -> list[Any]:
        b = self.s["backup"]
        out: list[Any] = [CondPageBreak(8 * cm), Spacer(1, 8), self.p(escape(_("3. Backup report (laporan hasil backup)")), "h1")]
        if not b["drives"]:
            out.append(self.p(escape(_("No backup drive is registered yet, so nothing of this period has been copied to a "
                                       "drive. Register the office's external backup drive with naskahd and plug it in."))))
        else:
            rows = [[_("Drive"), _("Registered"), _("Last seen")]] + [
                [d["label"], self.when(d.get("registered_at")), self.when(d.get("last_seen_at"))] for d in b["drives"]]
            t = Table(rows, colWidths=[7 * cm, 5 * cm, 5 * cm], repeatRows=1)
            t.setStyle(TableStyle(_grid()))
            out += [self.p(escape(_("Registered drives")), "h2"), t]
            for title, key, cols in ((_("Syncs"), "syncs", ("copied", "verified")),
                                     (_("Verification runs"), "verifications", ("checked", "failed"))):
                out.append(self.p(escape(title), "h2"))
                items = b[key]
                if not items:
                    out.append(self.p(escape(_("None in the period."))))
                    continue
                names = {"copied": _("Files copied"), "verified": _("Verified"), "checked": _("Checked"), "failed": _("Failed")}
                rows = [[_("Drive"), _("When"), names[cols[0]], names[cols[1]], _("Result")]] + [
                    [i["drive"], self.when(i["at"]), self.n(i.get(cols[0], 0)), self.n(i.get(cols[1], 0)),
                     _("OK") if i.get("ok") else _("FAILED")] for i in items]
                t = Table(rows, colWidths=[4.5 * cm, 5 * cm, 2.5 * cm, 2.5 * cm, 2.5 * cm], repeatRows=1)
                t.setStyle(TableStyle(_grid() + [("ALIGN", (2, 0), (3, -1), "RIGHT")]))
                out.append(t)
        missing = b["not_on_any_drive"]
        out.append(self.p(escape(_("Not yet on any drive")), "h2"))
        if missing and not b["drives"]:
            out.append(self.p(escape(_("All {n} document(s) of the period.").format(n=self.n(len(missing))))))
        elif missing:
            shown = ", ".join(missing[:60])
            more = _(" and {n} more").format(n=self.n(len(missing) - 60)) if len(missing) > 60 else ""
            out.append(self.p(escape(_("{n} document(s): {agendas}{more}.").format(n=self.n(len(missing)), agendas=shown, more=more)), "small"))
        else:
            out.append(self.p(escape(_("None: every document of the period has a verified copy."))))
        newest = b["newest_verified_at"]
        out.append(self.p(escape(_("Newest verified backup: {when}").format(when=self.when(newest) if newest else _("none")))))
        return out

    def story(self) -> list[Any]:
        from naskahd.report.pdf_letters import letter_details

        return [*self.summary(), PageBreak(), *self.control_list(), *letter_details(self), *self.send_receive(),
                *self.backup()]


def render(snapshot: dict[str, Any], meta: dict[str, Any], lang: str) -> bytes:
    """The PDF of ``snapshot`` with the sign-offs in ``meta``; the same input gives the same bytes."""
    _register_fonts()
    with words.language(lang):
        r = _Render(snapshot, meta, lang)
        period = words.period(snapshot["period"], lang)
        title = _("Backup report, {period}").format(period=period)
        buf = io.BytesIO()
        doc = BaseDocTemplate(
            buf, pagesize=A4, leftMargin=MARGIN_X, rightMargin=MARGIN_X, topMargin=MARGIN_TOP, bottomMargin=MARGIN_BOTTOM,
            title=title, author=snapshot["office"]["name"], creator="naskahd", producer="naskahd (reportlab)",
            subject=_("Report no. {id}").format(id=meta["id"]), invariant=1, lang=lang,
        )
        frame = Frame(MARGIN_X, MARGIN_BOTTOM, WIDTH, PAGE_H - MARGIN_TOP - MARGIN_BOTTOM, id="body",
                      leftPadding=0, rightPadding=0, topPadding=0, bottomPadding=0)
        doc.addPageTemplates([PageTemplate(id="page", frames=[frame])])
        footer = _("Report no. {id}, made {when}").format(id=meta["id"], when=r.when(meta["created_at"]))
        doc.build(r.story(), canvasmaker=_numbered_canvas(snapshot["office"]["name"] or "naskahd", title, footer))
        return buf.getvalue()
