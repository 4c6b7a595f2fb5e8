"""date, dateTime, instant and Period: ranges at their precision, compared per search.html.

A target value is the range [low, high]; so is the search value. eq: the search range contains
the target; gt/lt: the target reaches above/below the search range; ge/le: gt/lt or eq; sa/eb:
the target starts after/ends before it; ap: they overlap once the search range is widened by
10% of its distance from now.
"""

from __future__ import annotations

from ficus.fhirtime import date_range, now_micros
from ficus.search.parse import split_prefix
from ficus.search.types.base import Condition, Context, SearchType, invalid, register
from ficus.spec import SearchParameter


@register
class DateType(SearchType):
    name = "date"
    table = "date"

    def match(self, ctx: Context, alias: str, param: SearchParameter, modifier: str | None, value: str, name: str) -> Condition:
        return date_condition(f"{alias}.low", f"{alias}.high", value, name)


def date_condition(low: str, high: str, value: str, name: str) -> Condition:
    """The condition on a target range held in the columns `low` and `high`."""
    prefix, text = split_prefix(value)
    # an unencoded '+' of a time zone arrives as a space
    found = date_range(text.replace(" ", "+"))
    if found is None:
        raise invalid(name, f"'{value}' is not a valid date search value for {name}")
    start, end = found
    if prefix == "eq":
        return f"({low} >= ? AND {low} <= ? AND {high} <= ?)", [start, end, end]
    if prefix == "ne":
        return f"({low} < ? OR {high} > ?)", [start, end]
    if prefix == "gt":
        return f"{high} > ?", [end]
    if prefix == "lt":
        return f"{low} < ?", [start]
    if prefix == "ge":
        return f"({high} > ? OR ({low} >= ? AND {low} <= ? AND {high} <= ?))", [end, start, end, end]
    if prefix == "le":
        return f"({low} < ? OR ({low} >= ? AND {low} <= ? AND {high} <= ?))", [start, start, end, end]
    if prefix == "sa":
        return f"{low} > ?", [end]
    if prefix == "eb":
        return f"{high} < ?", [start]
    margin = abs(now_micros() - start) // 10
    return f"({low} <= ? AND {high} >= ?)", [end + margin, start - margin]
