"""date, dateTime, instant and Period: ranges at their precision, compared per search.html.

A target value is the range [low, high]; so is the search value. eq: the search range contains
the target; gt/lt: the target reaches above/below the search range; ge/le: gt/lt or eq; sa/eb:
the target starts after/ends before it; ap: they overlap once the search range is widened by
10% of its distance from now.
"""

from __future__ import annotations

from ficus.fhirtime import date_range, now_micros
from ficus.search.parse import split_prefix, split_values
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
    # ge and le as one range of an indexed column (low <= high): `high > end OR eq` and
    # `low < start OR eq`, which an index reads in order, where the OR reads every match first
    if prefix == "ge":
        return f"({high} >= ? AND ({high} > ? OR {low} >= ?))", [start, end, start]
    if prefix == "le":
        return f"({low} <= ? AND ({low} < ? OR {high} <= ?))", [end, start, end]
    if prefix == "sa":
        return f"{low} > ?", [end]
    if prefix == "eb":
        return f"{high} < ?", [start]
    margin = abs(now_micros() - start) // 10
    return f"({low} <= ? AND {high} >= ?)", [end + margin, start - margin]


def walk_bounds(value: str, descending: bool) -> tuple[bool, int | None, int | None, int | None]:
    """What a date criterion tells a walk of its own parameter's index in sort order (by `high`
    descending, by `low` ascending): (leading, start, approach, stop), values of the walked
    column. `stop`: no match sorts past it, since a resource sorts by its most extreme row,
    never after a matching one. `start`: no row before it matches, so no resource with a single
    row of the parameter sorts before it (the caller checks that there are only such). `approach`:
    before it only rows that reach across it match (a period), so the matches begin about there
    (`start` where there is one). `leading`: the first rows of the order match (descending `gt`,
    `ge`, `sa`; ascending `lt`, `le`, `eb`), where a walk from the first row finds them at once."""
    leading, starts, approaches, stops = False, [], [], []
    for alternative in split_values(value):
        prefix, text = split_prefix(alternative)
        found = date_range(text.replace(" ", "+"))
        if found is None:
            return False, None, None, None
        near, far = (found[1], found[0]) if descending else found  # the search range's ends, in walk order
        start = approach = stop = None
        if prefix == "eq":
            start, stop = near, far
        elif prefix == ("eb" if descending else "sa"):
            start = far
        elif prefix == ("ge" if descending else "le"):
            stop = far
        elif prefix in (("gt", "sa") if descending else ("lt", "eb")):
            stop = near
        elif prefix == ("le" if descending else "ge"):
            approach = near
        elif prefix == ("lt" if descending else "gt"):
            approach = far
        leading = leading or prefix in (("gt", "ge", "sa") if descending else ("lt", "le", "eb"))
        starts.append(start)
        approaches.append(approach if start is None else start)
        stops.append(stop)
    first, last = (max, min) if descending else (min, max)

    def widest(values: list[int | None], pick) -> int | None:
        return None if None in values else pick(values)

    return leading, widest(starts, first), widest(approaches, first), widest(stops, last)
