"""`_sort`: parameters to per-resource sort keys over the index tables.

A resource can hold several values for one parameter (two names, a period, ...). Ascending
order uses the smallest value (for dates the lowest `low`), descending the largest (for dates
the highest `high`). Resources without a value sort last in both directions; `rid` breaks
ties so the order is total and paging is stable. Text keys compare by code point on both
databases (`COLLATE "C"` on PostgreSQL, SQLite's default BINARY), so SQLite and PostgreSQL
return the same order. Date, number and quantity keys also name the index column that holds
their values in that order (`SortKey.index`), so the first matches can be read off the index
(`ficus.search.ordered`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ficus.outcome import FhirError
from ficus.spec import Definitions

# param type -> (table, ascending aggregate column, descending aggregate column, value kind)
_KEYS: dict[str, tuple[str, str, str, str]] = {
    "string": ("string", "value", "value", "text"),
    "token": ("token", "code", "code", "text"),
    "uri": ("uri", "value", "value", "text"),
    "date": ("date", "low", "high", "integer"),
    "number": ("number", "value", "value", "number"),
    "quantity": ("quantity", "value", "value", "number"),
    "reference": ("reference", "COALESCE(x.target_type || '/' || x.target_id, x.url)", "", "text"),
}


@dataclass(frozen=True)
class SortKey:
    """One key of the order: a scalar SQL expression over `resource r`."""

    name: str
    descending: bool
    expression: str
    params: tuple
    kind: str  # text | integer | number: what a paging cursor may hold for this key
    index: tuple[str, str] | None = None  # (index table, column) an index orders as this key does

    @property
    def reads_resource(self) -> bool:
        """Whether the key reads columns of `resource` (`_id`, `_lastUpdated`) rather than
        only the index rows of `r.rid`."""
        return not self.expression.startswith("(SELECT")


def parse_sort(values: list[tuple[str, str]]) -> list[tuple[str, bool]]:
    """`_sort=-date,name` (and the DSTU2 `_sort:desc=date` form) -> [(name, descending)]."""
    items: list[tuple[str, bool]] = []
    for key, value in values:
        modifier = key.partition(":")[2]
        if modifier not in ("", "asc", "desc"):
            raise FhirError.of(400, "invalid", f"Unknown _sort modifier ':{modifier}'", key)
        if not value.strip():
            continue  # `_sort=` : no order asked for
        for part in value.split(","):
            part = part.strip()
            descending = modifier == "desc"
            if part.startswith("-"):
                part, descending = part[1:], True
            if not part or not all(c.isalnum() or c in "_-." for c in part):
                raise FhirError.of(400, "invalid", f"_sort={value!r} is not a list of search parameter names", "_sort")
            items.append((part, descending))
    return items


def sort_keys(
    definitions: Definitions, res_types: list[str] | None, items: list[tuple[str, bool]], dialect: str
) -> tuple[list[SortKey], list[str]]:
    """Sort keys for `items`, and the names no searched type knows (the caller decides whether
    that is an error). A parameter that exists but cannot order (composite, special) is a 400."""
    collate = ' COLLATE "C"' if dialect == "postgresql" else ""
    keys: list[SortKey] = []
    unknown: list[str] = []
    for name, descending in items:
        if name == "_id":
            keys.append(SortKey(name, descending, f"r.res_id{collate}", (), "text"))
            continue
        if name == "_lastUpdated":
            keys.append(SortKey(name, descending, "r.last_updated", (), "integer"))
            continue
        kinds = set()
        for res_type in res_types or ["Resource"]:
            param = definitions.search_parameters_for(res_type).get(name)
            kinds.add(param.type if param else None)
        if None in kinds:
            unknown.append(name)
            continue
        if len(kinds) != 1 or next(iter(kinds)) not in _KEYS:
            raise FhirError.of(400, "not-supported", f"Search parameter '{name}' cannot be used with _sort", "_sort")
        table, ascending_column, descending_column, kind = _KEYS[next(iter(kinds))]
        column = (descending_column or ascending_column) if descending else ascending_column
        if not column.startswith("COALESCE"):
            column = f"x.{column}"
        if kind == "text":
            column += collate
        aggregate = "MAX" if descending else "MIN"
        expression = f"(SELECT {aggregate}({column}) FROM idx_{table} x WHERE x.rid = r.rid AND x.param = ?)"
        # the indexes on (pkey, column, ...): numbers and dates, not text (its index holds
        # normalised or differently collated values) nor references (an expression)
        index = (f"idx_{table}", column.removeprefix("x.")) if kind != "text" else None
        keys.append(SortKey(name, descending, expression, (name,), kind, index))
    return keys, unknown
