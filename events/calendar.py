"""The site's working calendar: which days are working days, when the office is open, and
clock arithmetic in working time (SLA deadlines that skip nights, weekends and holidays).

Public holidays and joint leave days (cuti bersama) come from the maintained `holidays`
library (Indonesia: country ID, its "government" category for cuti bersama), in Indonesian;
the site adds its own days off and working Saturdays in cameras.yaml.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

from events.config import WEEKDAYS, CalendarConfig, time_range

MAX_DAYS = 3660  # a working-time search gives up after ten years (a calendar with no open day)


@dataclass(frozen=True)
class DayInfo:
    day: date
    working: bool
    reason: str  # why it is off: a holiday's name, "Sabtu"/"Minggu"; "" on a working day
    office: tuple[datetime, datetime] | None  # opening hours, aware, on working days


_DAY_NAMES = ("Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu", "Minggu")


class WorkCalendar:
    def __init__(self, config: CalendarConfig, timezone: str) -> None:
        self.config = config
        self.zone = ZoneInfo(timezone)
        categories = ("public", "government") if config.cuti_bersama else ("public",)
        try:
            self._holidays = holidays.country_holidays(
                config.country, categories=categories, language="id"
            )
        except NotImplementedError:  # a country without the government category
            self._holidays = holidays.country_holidays(config.country, language="id")
        self._extra = {d.date: d.name for d in config.days_off()}
        self._working_extra = set(config.extra_working_days)
        self._weekdays = {WEEKDAYS.index(d) for d in config.working_days}

    def holiday(self, day: date) -> str | None:
        """The name of the public holiday, cuti bersama or site day off on `day`, if any."""
        if day in self._extra:
            return self._extra[day]
        name = self._holidays.get(day)
        return str(name) if name else None

    def info(self, day: date) -> DayInfo:
        name = self.holiday(day)
        if day in self._working_extra:
            working, reason = True, ""
        elif name:
            working, reason = False, name
        elif day.weekday() not in self._weekdays:
            working, reason = False, _DAY_NAMES[day.weekday()]
        else:
            working, reason = True, ""
        return DayInfo(day, working, reason, self._office(day) if working else None)

    def _office(self, day: date) -> tuple[datetime, datetime]:
        hours = self.config.office_hours
        by_day: dict[str, str] = {} if isinstance(hours, str) else {k: v for k, v in hours.items()}
        text = hours if isinstance(hours, str) else by_day.get(WEEKDAYS[day.weekday()])
        if text is None:  # per-weekday hours that leave this working day out: the first given
            text = next(iter(hours.values())) if isinstance(hours, dict) else "08:00-16:00"
        start, end = time_range(text)
        opens = datetime.combine(day, start, self.zone)
        closes = (
            datetime.combine(day + timedelta(days=1), time(0), self.zone)
            if end is None
            else datetime.combine(day, end, self.zone)
        )
        return opens, closes

    def local(self, at: datetime) -> datetime:
        return at.astimezone(self.zone)

    def in_office_hours(self, at: datetime) -> bool:
        office = self.info(self.local(at).date()).office
        return office is not None and office[0] <= at < office[1]

    def _office_from(self, at: datetime) -> tuple[datetime, datetime]:
        """The office window that contains `at` or is the next to open after it."""
        day = self.local(at).date()
        for _ in range(MAX_DAYS):
            office = self.info(day).office
            if office is not None and at < office[1]:
                return max(at, office[0]), office[1]
            day += timedelta(days=1)
        raise ValueError("the calendar has no working day in ten years")

    def add_working(self, start: datetime, days: int = 0, seconds: float = 0.0) -> datetime:
        """The moment `days` working days and then `seconds` of office time after `start`.

        A start outside office hours counts from the next opening. A working day keeps the time
        of day (Monday 10:00 + 3 days = Thursday 10:00; Friday 10:00 + 1 day = Monday 10:00).
        """
        at, closes = self._office_from(start)
        for _ in range(days):
            day = self.local(at).date() + timedelta(days=1)
            for _ in range(MAX_DAYS):
                if self.info(day).working:
                    break
                day += timedelta(days=1)
            office = self.info(day).office
            assert office is not None
            moved = datetime.combine(day, self.local(at).timetz().replace(tzinfo=None), self.zone)
            at, closes = min(max(moved, office[0]), office[1]), office[1]
        left = seconds
        for _ in range(MAX_DAYS):
            room = (closes - at).total_seconds()
            if left <= room:
                return at + timedelta(seconds=left)
            left -= room
            at, closes = self._office_from(closes)
        raise ValueError("the calendar has no working day in ten years")

    def working_seconds(self, start: datetime, end: datetime) -> float:
        """Office time between two moments (for response times in working time)."""
        total, at = 0.0, start
        for _ in range(MAX_DAYS):
            if at >= end:
                return total
            opens, closes = self._office_from(at)
            if opens >= end:
                return total
            total += (min(closes, end) - opens).total_seconds()
            at = closes
        return total

    def deadline(self, start: datetime, span: tuple[int, float], working: bool) -> datetime:
        days, seconds = span
        if working:
            return self.add_working(start, days, seconds)
        return start + timedelta(days=days, seconds=seconds)
