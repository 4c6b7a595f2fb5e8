"""Turn FHIR search parameters into SQL over the index tables.

Each search parameter type contributes one condition builder (`_BUILDERS`); a query is the
AND of its parameters, each the OR of its comma-separated values.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ficus.fhirtime import date_range
from ficus.outcome import FhirError
from ficus.spec import Definitions, SearchParameter
from ficus.store.indexing import normalize_string

Condition = tuple[str, list]
_PREFIX = re.compile(r"^(eq|ne|gt|lt|ge|le|sa|eb|ap)(?=[0-9-])")
RESULT_PARAMETERS = frozenset(
    {"_count", "_sort", "_include", "_revinclude", "_summary", "_elements", "_total",
     "_contained", "_containedType", "_format", "_pretty"}
)


@dataclass(frozen=True)
class Criterion:
    """One `name[:modifier]=value` of a query."""

    name: str
    modifier: str | None
    value: str


def parse_criteria(pairs: Sequence[tuple[str, str]]) -> list[Criterion]:
    criteria = []
    for key, value in pairs:
        name, _, modifier = key.partition(":")
        if name in RESULT_PARAMETERS:
            continue
        criteria.append(Criterion(name, modifier or None, value))
    return criteria


def build_where(definitions: Definitions, res_type: str, criteria: list[Criterion]) -> Condition:
    """SQL condition on `resource r` (alias r) selecting current resources that match."""
    clauses = ["r.res_type = ?", "r.deleted = ?"]
    params: list = [res_type, False]
    known = definitions.search_parameters_for(res_type)
    for criterion in criteria:
        if criterion.name == "_lastUpdated":
            sql, values = _or(criterion, lambda v: _date_condition("r.last_updated", "r.last_updated", v))
        elif criterion.name == "_id":
            ids = criterion.value.split(",")
            sql, values = f"r.res_id IN ({', '.join('?' * len(ids))})", ids
        else:
            param = known.get(criterion.name)
            builder = _BUILDERS.get(param.type) if param else None
            if param is None or builder is None:
                raise FhirError.of(
                    400, "not-supported",
                    f"Unknown or unsupported search parameter '{criterion.name}' for {res_type}",
                    criterion.name,
                )
            sql, values = builder(res_type, param, criterion)
        clauses.append(sql)
        params.extend(values)
    return " AND ".join(clauses), params


def _or(criterion: Criterion, single: Callable[[str], Condition]) -> Condition:
    parts, params = [], []
    for value in _split_values(criterion.value):
        sql, values = single(value)
        parts.append(sql)
        params.extend(values)
    return "(" + " OR ".join(parts) + ")", params


def _split_values(value: str) -> list[str]:
    """Split on commas that are not escaped with a backslash, then unescape."""
    parts = re.split(r"(?<!\\),", value)
    return [p.replace("\\,", ",").replace("\\|", "|").replace("\\$", "$") for p in parts]


def _index(table: str, res_type: str, param: SearchParameter, criterion: Criterion, single: Callable[[str], Condition]) -> Condition:
    if criterion.modifier == "missing":
        negate = criterion.value == "true"
        sql = f"r.rid {'NOT ' if negate else ''}IN (SELECT rid FROM idx_{table} WHERE res_type = ? AND param = ?)"
        return sql, [res_type, param.code]
    inner, values = _or(criterion, single)
    sql = f"r.rid IN (SELECT rid FROM idx_{table} WHERE res_type = ? AND param = ? AND {inner})"
    return sql, [res_type, param.code, *values]


def _token(res_type: str, param: SearchParameter, criterion: Criterion) -> Condition:
    def single(value: str) -> Condition:
        if criterion.modifier == "text":
            return "LOWER(text) LIKE ?", [normalize_string(value) + "%"]
        if "|" not in value:
            return "code = ?", [value]
        system, code = value.split("|", 1)
        if not system:
            return "(code = ? AND system IS NULL)", [code]
        if not code:
            return "system = ?", [system]
        return "(code = ? AND system = ?)", [code, system]

    if criterion.modifier == "not":
        inner, values = _or(criterion, single)
        return (
            f"r.rid NOT IN (SELECT rid FROM idx_token WHERE res_type = ? AND param = ? AND {inner})",
            [res_type, param.code, *values],
        )
    return _index("token", res_type, param, criterion, single)


def _string(res_type: str, param: SearchParameter, criterion: Criterion) -> Condition:
    def single(value: str) -> Condition:
        if criterion.modifier == "exact":
            return "exact = ?", [value]
        pattern = _like_escape(normalize_string(value))
        if criterion.modifier == "contains":
            return "value LIKE ? ESCAPE '\\'", [f"%{pattern}%"]
        return "value LIKE ? ESCAPE '\\'", [f"{pattern}%"]

    return _index("string", res_type, param, criterion, single)


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _reference(res_type: str, param: SearchParameter, criterion: Criterion) -> Condition:
    def single(value: str) -> Condition:
        if "://" in value:
            return "url = ?", [value]
        target_type, _, target_id = value.rpartition("/")
        target_type = target_type or criterion.modifier
        if target_type:
            return "(target_id = ? AND target_type = ?)", [target_id, target_type]
        return "target_id = ?", [target_id]

    return _index("reference", res_type, param, criterion, single)


def _date(res_type: str, param: SearchParameter, criterion: Criterion) -> Condition:
    return _index("date", res_type, param, criterion, lambda v: _date_condition("low", "high", v))


def _date_condition(low: str, high: str, value: str) -> Condition:
    prefix, text = _split_prefix(value)
    found = date_range(text)
    if found is None:
        raise FhirError.of(400, "invalid", f"'{value}' is not a valid date search value")
    start, end = found
    conditions = {
        "eq": (f"({low} >= ? AND {high} <= ?)", [start, end]),
        "ne": (f"({low} < ? OR {high} > ?)", [start, end]),
        "gt": (f"{high} > ?", [end]),
        "lt": (f"{low} < ?", [start]),
        "ge": (f"{high} >= ?", [start]),
        "le": (f"{low} <= ?", [end]),
        "sa": (f"{low} > ?", [end]),
        "eb": (f"{high} < ?", [start]),
        "ap": (f"({low} <= ? AND {high} >= ?)", [end, start]),
    }
    return conditions[prefix]


def _split_prefix(value: str) -> tuple[str, str]:
    match = _PREFIX.match(value)
    return (match.group(1), value[2:]) if match else ("eq", value)


def _number_like(table: str) -> Callable[[str, SearchParameter, Criterion], Condition]:
    def build(res_type: str, param: SearchParameter, criterion: Criterion) -> Condition:
        def single(value: str) -> Condition:
            prefix, text = _split_prefix(value)
            number_text, _, unit = text.partition("|")
            try:
                number = float(number_text)
            except ValueError:
                raise FhirError.of(400, "invalid", f"'{value}' is not a valid {param.type} search value") from None
            operator = {"eq": "=", "ne": "<>", "gt": ">", "lt": "<", "ge": ">=", "le": "<=", "sa": ">", "eb": "<", "ap": "="}[prefix]
            sql, values = f"value {operator} ?", [number]
            if table == "quantity" and unit:
                system, _, code = unit.partition("|") if "|" in unit else ("", "", unit)
                sql += " AND (code = ? OR unit = ?)"
                values += [code or system, code or system]
                if system and code:
                    sql += " AND system = ?"
                    values.append(system)
            return f"({sql})", values

        return _index(table, res_type, param, criterion, single)

    return build


def _uri(res_type: str, param: SearchParameter, criterion: Criterion) -> Condition:
    return _index("uri", res_type, param, criterion, lambda v: ("value = ?", [v]))


_BUILDERS: dict[str, Callable[[str, SearchParameter, Criterion], Condition]] = {
    "token": _token,
    "string": _string,
    "reference": _reference,
    "date": _date,
    "number": _number_like("number"),
    "quantity": _number_like("quantity"),
    "uri": _uri,
}
