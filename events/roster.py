"""Who is on duty (piket) at a moment, per OPD, from its roster and the site's calendar.

A shift belongs to the day it starts: the night shift of Monday 19:00-07:00 is Monday's, so
at Tuesday 03:00 Monday's plan is asked. Which plan a day has: a dated exception for that
shift first, then the `holidays` plan on a public holiday or site day off (when the roster has
one), then the rotation week's plan for that weekday.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from events.calendar import WorkCalendar
from events.config import Contact, DayPlan, Opd, Roster, day_keys, time_range


@dataclass(frozen=True)
class Duty:
    contact: Contact
    shift: str
    starts: datetime
    ends: datetime
    note: str = ""  # why this person: an exception's note, or the holiday's name


def _people(value: list[str] | str) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def plan_for(roster: Roster, calendar: WorkCalendar, day: date) -> tuple[DayPlan, str]:
    """The day's plan (shift -> contact ids) and why it is that plan ("" for the rotation)."""
    holiday = calendar.holiday(day)
    if holiday and roster.holidays is not None:
        plan: DayPlan = dict(roster.holidays)
        why = holiday
    else:
        week = roster.weeks[((day - roster.starts).days // 7) % len(roster.weeks)]
        plan = {}
        for key, shifts in week.items():
            if day.weekday() in day_keys(key):
                plan.update(shifts)  # a later, narrower key ("fri") overrides "mon-fri"
        why = ""
    for change in roster.exceptions:
        if change.date == day:
            plan[change.shift] = list(change.contacts)
            why = change.note or "pengecualian"
    return plan, why


def _window(day: date, text: str, calendar: WorkCalendar) -> tuple[datetime, datetime]:
    start, end = time_range(text)
    opens = datetime.combine(day, start, calendar.zone)
    if end is None or end <= start:  # ends at midnight or runs past it: into the next day
        closes = datetime.combine(day + timedelta(days=1), end or time(0), calendar.zone)
    else:
        closes = datetime.combine(day, end, calendar.zone)
    return opens, closes


def shifts_of(opd: Opd, calendar: WorkCalendar, day: date) -> list[Duty]:
    """Every shift that starts on `day`, with its people, in shift order."""
    roster = opd.roster
    if roster is None:
        return []
    people = opd.people()
    plan, why = plan_for(roster, calendar, day)
    out = []
    for shift, text in roster.shifts.items():
        opens, closes = _window(day, text, calendar)
        for cid in _people(plan.get(shift, [])):
            if cid in people:
                out.append(Duty(people[cid], shift, opens, closes, why))
    return out


def on_duty(opd: Opd, calendar: WorkCalendar, at: datetime) -> list[Duty]:
    """Who is on duty at `at` (today's shifts and yesterday's that run past midnight)."""
    today = calendar.local(at).date()
    found = [
        d for day in (today - timedelta(days=1), today)
        for d in shifts_of(opd, calendar, day) if d.starts <= at < d.ends
    ]  # fmt: skip
    return found


def next_change(opd: Opd, calendar: WorkCalendar, at: datetime) -> datetime | None:
    """When the next shift starts or ends after `at` (the wall shows "until")."""
    today = calendar.local(at).date()
    edges = [
        t for day in (today - timedelta(days=1), today, today + timedelta(days=1))
        for d in shifts_of(opd, calendar, day) for t in (d.starts, d.ends) if t > at
    ]  # fmt: skip
    return min(edges, default=None)


def chain(opd: Opd, calendar: WorkCalendar | None, at: datetime) -> list[Contact]:
    """The escalation chain at `at`: whoever is on duty, then the OPD's contacts in order."""
    first = [d.contact for d in on_duty(opd, calendar, at)] if calendar and opd.roster else []
    seen = {id(c) for c in first}
    return [*first, *(c for c in opd.contacts if id(c) not in seen)]


@dataclass(frozen=True)
class OpdDuty:
    """One OPD on the wall's duty panel: who is on duty now and until when."""

    opd_id: str
    opd_name: str
    on_duty: list[Duty]
    until: datetime | None  # the next shift change
    day_off: str  # why today is not a working day ("" on one): the holiday's name
    first_contact: Contact  # who hears first when nobody stands duty (no roster, a gap)


def duty_board(opds: list[Opd], calendar: WorkCalendar, at: datetime) -> list[OpdDuty]:
    info = calendar.info(calendar.local(at).date())
    return [
        OpdDuty(
            o.id,
            o.name,
            on_duty(o, calendar, at) if o.roster else [],
            next_change(o, calendar, at) if o.roster else None,
            info.reason,
            o.contacts[0],
        )
        for o in opds
    ]
