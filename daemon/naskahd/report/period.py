"""The days a report covers: a calendar month or an inclusive from/to range, office time."""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from naskahd.errors import UsageError
from naskahd.i18n import _

MONTHLY = "monthly"
RANGE = "period"
MAX_DAYS = 366


@dataclass(frozen=True)
class Period:
    start: dt.date  # first day, inclusive
    end: dt.date  # last day, inclusive
    kind: str = RANGE

    @property
    def label(self) -> str:
        """``2026-11`` for a month, ``2026-11-01..2026-11-15`` otherwise."""
        if self.kind == MONTHLY:
            return self.start.strftime("%Y-%m")
        return f"{self.start.isoformat()}..{self.end.isoformat()}"

    def days(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    def utc_bounds(self, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
        """[start, end) in UTC: midnight office time of the first day and of the day after the last."""
        lo = dt.datetime.combine(self.start, dt.time(), tzinfo=tz).astimezone(dt.UTC)
        hi = dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time(), tzinfo=tz).astimezone(dt.UTC)
        return lo, hi


def month(text: str) -> Period:
    try:
        first = dt.datetime.strptime(text, "%Y-%m").date()
    except ValueError:
        raise UsageError(_("--month {value!r} is not a month; write it as YYYY-MM, e.g. 2026-11").format(value=text)) from None
    last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
    return Period(first, last, MONTHLY)


def _date(option: str, text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UsageError(_("{option} {value!r} is not a date; write it as YYYY-MM-DD").format(option=option, value=text)) from None


def between(start: str, end: str) -> Period:
    lo, hi = _date("--from", start), _date("--to", end)
    if hi < lo:
        raise UsageError(_("--to {end} is before --from {start}: give the earlier date first").format(start=lo, end=hi))
    if (hi - lo).days >= MAX_DAYS:
        raise UsageError(_("a report covers at most {n} days; make one per month or per year").format(n=MAX_DAYS))
    return Period(lo, hi, RANGE)


def from_label(kind: str, start: str, end: str) -> Period:
    return Period(dt.date.fromisoformat(start), dt.date.fromisoformat(end), kind)
