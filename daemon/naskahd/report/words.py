"""A report's language: its own catalog, dates as an Indonesian office writes them.

``1 Desember 2026`` (Babel's CLDR data, so month names are never hand-typed), times as
``14.05 WIB`` in the office timezone, numbers as ``10.000``. A report is Indonesian by
default, whatever the terminal's language, and is rendered inside ``language(lang)``.
"""

from __future__ import annotations

import contextlib
import functools
import datetime as dt
from collections.abc import Iterator
from typing import Any

from naskahd import i18n
from naskahd.i18n import _

LANGUAGES = ("id", "en")
DEFAULT = "id"


@contextlib.contextmanager
def language(lang: str) -> Iterator[str]:
    """Render with ``lang``'s catalog, then give the command its own language back."""
    saved = i18n.language()
    try:
        yield i18n.setup(lang)
    finally:
        i18n.setup(saved)


# Babel is imported when a date or number is first written (a CSV needs neither).
@functools.cache
def _locale(lang: str) -> Any:
    """Parsed once: Babel parses a locale name on every call otherwise (10,000 rows)."""
    from babel import Locale

    return Locale.parse("id_ID" if lang == "id" else "en_GB")


def _babel_date(day: dt.date, pattern: str, locale: Any) -> str:
    from babel.dates import format_date

    return format_date(day, pattern, locale=locale)


def date(day: dt.date | str, lang: str) -> str:
    """``1 Desember 2026`` / ``1 December 2026``."""
    if isinstance(day, str):
        day = dt.date.fromisoformat(day)
    return _babel_date(day, "d MMMM y", locale=_locale(lang))


def short_date(day: dt.date | str, lang: str) -> str:
    """``01/12/2026`` (day, month, year in both languages)."""
    if isinstance(day, str):
        day = dt.date.fromisoformat(day)
    return f"{day.day:02d}/{day.month:02d}/{day.year}"


def local(iso: str, tz: Any) -> dt.datetime:
    return dt.datetime.fromisoformat(iso).astimezone(tz)


def time(when: dt.datetime, lang: str) -> str:
    """``14.05 WIB`` (Indonesian writes hours and minutes with a dot) / ``14:05 WIB``."""
    sep = "." if lang == "id" else ":"
    return f"{when.hour:02d}{sep}{when.minute:02d} {when.strftime('%Z')}".strip()


def datetime(iso: str, tz: Any, lang: str) -> str:
    when = local(iso, tz)
    return f"{date(when.date(), lang)} {time(when, lang)}"


def number(n: int | float, lang: str) -> str:
    from babel.numbers import format_decimal

    return format_decimal(n, locale=_locale(lang))


def size(n: int, lang: str) -> str:
    """``2,4 MB`` / ``2.4 MB`` (one decimal, the language's decimal sign)."""
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            text = f"{n / scale:.1f}".removesuffix(".0")
            return f"{text.replace('.', ',') if lang == 'id' else text} {unit}"
    return f"{number(n, lang)} B"


def category(name: str) -> str:
    return {"inbound": _("inbound"), "outbound": _("outbound"), "exempt": _("exempt")}.get(name, name)


def period(p: dict[str, str], lang: str) -> str:
    start, end = dt.date.fromisoformat(p["start"]), dt.date.fromisoformat(p["end"])
    if p["kind"] == "monthly":
        return _babel_date(start, "LLLL y", locale=_locale(lang))
    return f"{date(start, lang)} – {date(end, lang)}"
