"""Calendar periods of the statistics: day, ISO week (Monday first), month, quarter and year.

Pure date arithmetic, no database: a period is named by its first day.
"""

from datetime import date, timedelta

GRAINS = ("day", "week", "month", "quarter", "year")


def period_start(day: date, grain: str) -> date:
    """The first day of the ``grain`` period holding ``day``."""
    if grain == "day":
        return day
    if grain == "week":
        return day - timedelta(days=day.weekday())
    if grain == "month":
        return day.replace(day=1)
    if grain == "quarter":
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    if grain == "year":
        return date(day.year, 1, 1)
    raise ValueError(f"unknown grain {grain!r}")


def month_add(day: date, months: int) -> date:
    """The first day of the month ``months`` after (or before) the month of ``day``."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def period_next(start: date, grain: str) -> date:
    """The first day of the period after the one starting on ``start``."""
    if grain == "day":
        return start + timedelta(days=1)
    if grain == "week":
        return start + timedelta(days=7)
    if grain == "month":
        return month_add(start, 1)
    if grain == "quarter":
        return month_add(start, 3)
    if grain == "year":
        return date(start.year + 1, 1, 1)
    raise ValueError(f"unknown grain {grain!r}")


def period_end(start: date, grain: str) -> date:
    """The last day of the period starting on ``start``."""
    return period_next(start, grain) - timedelta(days=1)


def periods(first: date, last: date, grain: str) -> list[date]:
    """The starts of every ``grain`` period from the one holding ``first`` to the one holding ``last``."""
    out, start, stop = [], period_start(first, grain), period_start(last, grain)
    while start <= stop:
        out.append(start)
        start = period_next(start, grain)
    return out


def period_year_before(start: date, grain: str) -> date | None:
    """The start of the same period one year earlier: the same date (29 February has none), the
    same ISO week of the previous ISO year (week 53 has none when that year had 52), the same
    month, quarter or the previous year."""
    if grain == "day":
        try:
            return start.replace(year=start.year - 1)
        except ValueError:
            return None
    if grain == "week":
        iso_year, week, _ = start.isocalendar()
        try:
            return date.fromisocalendar(iso_year - 1, week, 1)
        except ValueError:
            return None
    if grain in ("month", "quarter", "year"):
        return start.replace(year=start.year - 1)
    raise ValueError(f"unknown grain {grain!r}")


def period_label(start: date, grain: str) -> str:
    """``2026-03-05``, ``2026-W10`` (ISO), ``2026-03``, ``2026-Q1``, ``2026``."""
    if grain == "day":
        return start.isoformat()
    if grain == "week":
        iso_year, week, _ = start.isocalendar()
        return f"{iso_year}-W{week:02d}"
    if grain == "month":
        return f"{start:%Y-%m}"
    if grain == "quarter":
        return f"{start.year}-Q{(start.month - 1) // 3 + 1}"
    if grain == "year":
        return str(start.year)
    raise ValueError(f"unknown grain {grain!r}")
