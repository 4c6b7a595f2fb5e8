"""number: prefixes over the range a value's precision implies (`100` means [99.5, 100.5)).

A target is the range [value, high] (one point for a plain value, wider for a Range). eq: the
target lies within the search range; ne: it does not; gt/ge: the target reaches above (or to) the
value; lt/le: below (or to) it; sa/eb: the target starts after / ends before it; ap: the target
overlaps the value +-10%.
"""

from __future__ import annotations

from ficus.search.parse import SearchNumber, parse_number, split_prefix, unescape
from ficus.search.types.base import Condition, Context, SearchType, invalid, register
from ficus.spec import SearchParameter


@register
class NumberType(SearchType):
    name = "number"
    table = "number"

    def match(self, ctx: Context, alias: str, param: SearchParameter, modifier: str | None, value: str, name: str) -> Condition:
        prefix, text = split_prefix(unescape(value))
        number = parse_number(text)
        if number is None:
            raise invalid(name, f"'{value}' is not a valid number search value for {name}")
        return number_condition(f"{alias}.value", f"{alias}.high", prefix, number)


def number_condition(
    low: str, high: str, prefix: str, number: SearchNumber, scale: float = 1.0, offset: float = 0.0
) -> Condition:
    """The condition on a target range in columns `low`..`high`; `scale` and `offset` convert
    the search value into the columns' units first (UCUM canonical quantities)."""

    def convert(value: object) -> float:
        return float(f"{float(value) * scale + offset:.12g}")  # type: ignore[arg-type]

    value, start, end = convert(number.value), convert(number.low), convert(number.high)
    if prefix == "eq":
        return f"({low} >= ? AND {low} < ? AND {high} < ?)", [start, end, end]
    if prefix == "ne":
        return f"({low} < ? OR {high} >= ?)", [start, end]
    if prefix == "ap":
        margin = abs(value) / 10 or (end - start)
        return f"({low} <= ? AND {high} >= ?)", [value + margin, value - margin]
    column, operator = {
        "gt": (high, ">"), "ge": (high, ">="), "lt": (low, "<"), "le": (low, "<="), "sa": (low, ">"), "eb": (high, "<"),
    }[prefix]
    return f"{column} {operator} ?", [value]
