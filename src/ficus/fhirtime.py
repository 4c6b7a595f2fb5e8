"""FHIR date, dateTime and instant values as UTC microsecond ranges, and server timestamps."""

from __future__ import annotations

import calendar
import functools
import re
import time
from datetime import date, datetime, timezone

_DATE_TIME = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?"
)
_SECONDS_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_MICROS = 1_000_000


def now_micros() -> int:
    return time.time_ns() // 1000


@functools.lru_cache(maxsize=256)  # a transaction's versions and its response share one timestamp
def format_instant(micros: int) -> str:
    """`2026-11-24T08:00:00.123456+00:00`-style instant (FHIR `instant`, UTC)."""
    moment = datetime.fromtimestamp(micros / _MICROS, tz=timezone.utc)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


@functools.lru_cache(maxsize=256)
def http_date(micros: int) -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(micros // _MICROS))


def date_range(text: str) -> tuple[int, int] | None:
    """The UTC microsecond range [low, high] a FHIR date/dateTime/instant covers, at its precision."""
    if len(text) == 20 and _SECONDS_UTC.fullmatch(text):
        return _seconds_utc(text)
    match = _DATE_TIME.fullmatch(text.strip())
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        y = int(year)
        if month is None:
            return _span(y, 1, 1, 0, 0, 0, 0, _year_length(y), None)
        m = int(month)
        if day is None:
            days = calendar.monthrange(y, m)[1]
            return _span(y, m, 1, 0, 0, 0, 0, days * 86400 * _MICROS, None)
        d = int(day)
        if hour is None:
            return _span(y, m, d, 0, 0, 0, 0, 86400 * _MICROS, None)
        if second is None:
            return _span(y, m, d, int(hour), int(minute), 0, 0, 60 * _MICROS, zone)
        if fraction:
            digits = fraction[1:7]
            micros = int(digits.ljust(6, "0"))
            width = 10 ** (6 - len(digits)) if len(digits) < 6 else 1
            return _span(y, m, d, int(hour), int(minute), int(second), micros, width, zone)
        return _span(y, m, d, int(hour), int(minute), int(second), 0, _MICROS, zone)
    except ValueError:
        return None


def _seconds_utc(text: str) -> tuple[int, int] | None:
    """`YYYY-MM-DDThh:mm:ssZ` (the shape the check above found) without the regex."""
    try:
        return _span(int(text[:4]), int(text[5:7]), int(text[8:10]), int(text[11:13]), int(text[14:16]),
                     int(text[17:19]), 0, _MICROS, "Z")
    except ValueError:
        return None


def _year_length(year: int) -> int:
    return (366 if calendar.isleap(year) else 365) * 86400 * _MICROS


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _span(y: int, mo: int, d: int, h: int, mi: int, s: int, us: int, width: int, zone: str | None) -> tuple[int, int]:
    if h > 23 or mi > 59 or s > 59:
        raise ValueError("time out of range")
    days = date(y, mo, d).toordinal() - _EPOCH_ORDINAL  # validates the date
    low = ((days * 86400 + h * 3600 + mi * 60 + s) * _MICROS) + us
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        low -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60) * _MICROS
    return low, low + width - 1
