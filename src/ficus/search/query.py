"""Search criteria -> one SQL condition over `resource r` and the typed index tables.

A query is the AND of its criteria (a repeated parameter is another criterion), each the OR of
its comma-separated values. Each parameter type lives in `ficus.search.types` behind one
interface; chains and `_has` in `ficus.search.chain`; `_id`, `_lastUpdated` and `_list` here.
`_type` is not a criterion: system search reads it and passes one resource type at a time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ficus.search.chain import chain_condition, chain_types, has_condition
from ficus.search.confine import Confinement, confined
from ficus.search.parse import Chain, Has, Key, Simple, parse_key, split_values, unescape
from ficus.search.types import REGISTRY, Condition, SearchType, Target
from ficus.search.types.base import invalid, unsupported
from ficus.search.types.composite import CompositeType
from ficus.search.types.date import date_condition
from ficus.spec import Definitions, SearchParameter
from ficus.store.indexing import param_key

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

    @property
    def key(self) -> str:
        return self.name + (f":{self.modifier}" if self.modifier else "")


def parse_criteria(pairs: Sequence[tuple[str, str]]) -> list[Criterion]:
    criteria = []
    for key, value in pairs:
        name, _, modifier = key.partition(":")
        if name in RESULT_PARAMETERS:
            continue
        criteria.append(Criterion(name, modifier or None, value))
    return criteria


def build_where(
    definitions: Definitions, res_type: str, criteria: list[Criterion], confine: Confinement | None = None,
    confine_matches: bool = False,
) -> Condition:
    """SQL condition on `resource r` (alias r) selecting current resources that match.

    Raises FhirError 400 naming the parameter for an unknown parameter or a malformed value.
    A criterion with an empty value is ignored (except `:missing`). `confine` narrows what
    chains, `_has` and `_list` look at (see `ficus.search.confine`), and with `confine_matches`
    the matches themselves.
    """
    clauses = ["r.res_type = ?", "r.deleted = ?"]
    params: list = [res_type, False]
    for sql, values in compile_criteria(definitions, res_type, criteria, confine, confine_matches):
        clauses.append(sql)
        params.extend(values)
    return " AND ".join(clauses), params


def compile_criteria(
    definitions: Definitions, res_type: str, criteria: list[Criterion], confine: Confinement | None = None,
    confine_matches: bool = False, one_row: frozenset[str] = frozenset(),
) -> list[Condition]:
    """One condition on `resource r` per criterion that has a value (see `build_where`), and
    with `confine_matches` the confinement of the matches themselves. The criteria without
    modifiers on a parameter named in `one_row` (one no resource has more than one index row
    of) are one condition, met by one row: two dates bounding a range read that range alone."""
    compiler = Compiler(definitions, confine)
    target = Target("r", res_type)
    together = [c for c in criteria if c.name in one_row and c.modifier is None and c.value and "\x00" not in c.value]
    compiled = []
    for criterion in criteria:
        if criterion not in together:
            compiled.append(_compile(compiler, target, criterion))
        elif criterion is next(c for c in together if c.name == criterion.name):
            values = [c.value for c in together if c.name == criterion.name]
            compiled.append(compiler.one_row(target, criterion.name, values))
    conditions = [condition for condition in compiled if condition is not None]
    if confine_matches:
        narrowed = confined(compiler, target)
        if narrowed is not None:
            conditions.append(narrowed)
    return conditions


def split_rid_selects(conditions: list[Condition]) -> tuple[list[Condition], list[Condition]]:
    """The conditions that are exactly `r.rid IN (SELECT ...)`, as their `SELECT`s, and the rest.

    Index rows exist only for current, undeleted resources and `pkey` fixes the type, so such
    a `SELECT` yields matching rids by itself, in `rid` order where its index allows."""
    selects, others = [], []
    for sql, params in conditions:
        inner = rid_subquery(sql)
        if inner is None:
            others.append((sql, params))
        else:
            selects.append((inner, params))
    return selects, others


def build_count(definitions: Definitions, res_type: str, criteria: list[Criterion], confine: Confinement | None = None) -> Condition:
    """A statement counting the current `res_type` resources that match (see `match_rids`)."""
    conditions = compile_criteria(definitions, res_type, criteria, confine)
    where = " AND ".join(["r.res_type = ?", "r.deleted = ?", *(sql for sql, _ in conditions)])
    params = [res_type, False, *(p for _, values in conditions for p in values)]
    sql, params = match_rids(*split_rid_selects(conditions), where, params)
    return f"SELECT COUNT(*) FROM ({sql}) c", params


def match_rids(selects: list[Condition], others: list[Condition], where: str, params: list, probed: bool = False) -> Condition:
    """A `SELECT` of the matching rids, each once. When every criterion selects rids from the
    index tables, it reads the indexes alone and never joins `resource` (one criterion: about
    7 M resources/s counted on PostgreSQL instead of 2.5 M/s); otherwise it reads `resource`
    with `where`, the whole condition. `probed`: see `intersect_rids`."""
    if selects and not others:
        return intersect_rids(selects, probed=probed)
    return f"SELECT r.rid FROM resource r WHERE {where}", params


def intersect_rids(selects: list[Condition], extra: str = "", extra_params: Sequence = (), probed: bool = False) -> Condition:
    """`SELECT DISTINCT q.rid` of the rids every `SELECT` yields (and `extra`, a condition on
    `q.rid`). DISTINCT over one index scan in rid order is a Unique step, not a sort.
    `probed` (SQLite, the first `SELECT` the smallest): the rids of the first are looked up in
    the rid index of each other's table, where SQLite, which keeps no statistics of values,
    would otherwise list every rid of the others first (a status: every resource)."""
    (first, params), rest = selects[0], selects[1:]
    clauses = [_rid_lookup(sql) if probed else f"q.rid IN ({sql})" for sql, _ in rest]
    if extra:
        clauses.append(extra)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    all_params = [*params, *(p for _, values in rest for p in values), *extra_params]
    return f"SELECT DISTINCT q.rid FROM ({first}) q{where}", all_params


_ONE_TABLE = re.compile(r"SELECT (\w+)\.rid FROM (idx_[a-z]+) \1 WHERE (.+)", re.DOTALL)


_COMPOUND = re.compile(r"\b(UNION|INTERSECT|EXCEPT|ORDER BY|GROUP BY|LIMIT)\b", re.IGNORECASE)


def _rid_lookup(sql: str) -> str:
    """The test that `q.rid` is among the rids `sql` yields: where `sql` reads one index table
    under one condition, a lookup of `q.rid` in that table's rid index; otherwise (a UNION, a
    compartment's) `q.rid IN (sql)`."""
    found = _ONE_TABLE.fullmatch(sql)
    if found is None or _COMPOUND.search(_outside_parentheses(found.group(3))):
        return f"q.rid IN ({sql})"
    alias, table, where = found.groups()
    return f"EXISTS (SELECT 1 FROM {table} {alias} INDEXED BY {table}_rid WHERE {alias}.rid = q.rid AND ({where}))"


def _outside_parentheses(sql: str) -> str:
    """`sql` without what its parentheses enclose (string literals are parameters here)."""
    kept, depth = [], 0
    for char in sql:
        depth += char == "("
        if depth == 0:
            kept.append(char)
        depth -= char == ")"
    return "".join(kept)


def _compile(compiler: Compiler, target: Target, criterion: Criterion) -> Condition | None:
    key_text = criterion.key
    try:
        key = parse_key(key_text)
    except ValueError as error:
        raise invalid(key_text, str(error)) from None
    if criterion.value == "" and not (isinstance(key, Simple) and key.modifier == "missing"):
        return None
    if "\x00" in criterion.value:  # PostgreSQL text cannot hold it; no FHIR string does
        raise invalid(key_text, f"The value of {key_text} contains a NUL character")
    return compiler.criterion(target, key, criterion.value, key_text)


def rid_subquery(sql: str) -> str | None:
    """The `SELECT ...` when `sql` is exactly `r.rid IN (SELECT ...)`."""
    prefix = "r.rid IN ("
    if not sql.startswith(prefix + "SELECT ") or not sql.endswith(")"):
        return None
    inner = sql[len(prefix):-1]
    depth = 0
    for char in inner:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return None
    return inner if depth == 0 else None


def is_known_parameter(definitions: Definitions, res_type: str, name: str) -> bool:
    """Whether `name` (`code`, `code:modifier`, a chain or `_has:...`; a bare `_has` too) is a
    parameter this server can evaluate on `res_type`."""
    if name == "_has":
        return True
    try:
        key = parse_key(name)
    except ValueError:
        return False
    return Compiler(definitions).known(res_type, key)


class Compiler:
    """Compiles the criteria of one query; hands out unique table aliases."""

    def __init__(self, definitions: Definitions, confine: Confinement | None = None) -> None:
        self.definitions = definitions
        self.confine = confine
        self._aliases = 0

    def alias(self, stem: str) -> str:
        self._aliases += 1
        return f"{stem}{self._aliases}"

    def parameters(self, res_type: str) -> dict[str, SearchParameter]:
        return self.definitions.search_parameters_for(res_type)

    def criterion(self, target: Target, key: Key, value: str, name: str) -> Condition:
        if isinstance(key, Has):
            return has_condition(self, target, key, value, name)
        if isinstance(key, Chain):
            return chain_condition(self, target, key, value, name)
        special = _RESOURCE_PARAMETERS.get(key.code)
        if special is not None:
            return special(self, target, key.modifier, value, name)
        param = self.parameters(target.res_type).get(key.code)
        kind = self.search_type(param)
        if param is None or kind is None:
            raise unsupported(name, f"Unknown or unsupported search parameter '{key.code}' for {target.res_type}")
        return kind.condition(self, target, param, key.modifier, value, name)

    def one_row(self, target: Target, code: str, values: list[str]) -> Condition:
        """Criteria `code=value` for each of `values`, met by one index row (`compile_criteria`)."""
        param = self.parameters(target.res_type)[code]
        kind = self.search_type(param)
        assert kind is not None
        return kind.one_row_condition(self, target, param, values, code)

    def needs_resource_row(self, key: Key) -> bool:
        """Whether `key` reads columns of `resource` (res_id, last_updated) rather than only
        the rid of its index rows."""
        return isinstance(key, Has) or (isinstance(key, Simple) and key.code in _RESOURCE_PARAMETERS)

    def search_type(self, param: SearchParameter | None) -> SearchType | None:
        if param is None or not param.expression:
            return None
        kind = REGISTRY.get(param.type)
        if isinstance(kind, CompositeType) and kind.components(self, param) is None:
            return None
        return kind

    def known(self, res_type: str, key: Key) -> bool:
        if isinstance(key, Has):
            if not self.definitions.is_resource_type(key.source_type):
                return False
            param = self.parameters(key.source_type).get(key.reference)
            if param is None or param.type != "reference":
                return False
            if param.target and res_type != "Resource" and res_type not in param.target:
                return False
            return self.known(key.source_type, key.rest)
        if isinstance(key, Chain):
            return bool(chain_types(self, res_type, key))
        if key.code in _RESOURCE_PARAMETERS:
            return key.modifier in _RESOURCE_MODIFIERS[key.code]
        param = self.parameters(res_type).get(key.code)
        kind = self.search_type(param)
        return kind is not None and param is not None and kind.supports(param, key.modifier)


# -- parameters answered from the resource row -------------------------------------------------

def _id(compiler: Compiler, target: Target, modifier: str | None, value: str, name: str) -> Condition:
    if modifier == "missing":
        return _trivial_missing(value, name)
    ids = [unescape(v) for v in split_values(value)]
    sql = f"{target.alias}.res_id {'NOT ' if modifier == 'not' else ''}IN ({', '.join('?' * len(ids))})"
    return sql, ids


def _last_updated(compiler: Compiler, target: Target, modifier: str | None, value: str, name: str) -> Condition:
    if modifier == "missing":
        return _trivial_missing(value, name)
    column = f"{target.alias}.last_updated"
    parts, params = [], []
    for alternative in split_values(value):
        sql, values = date_condition(column, column, alternative, name)
        parts.append(sql)
        params.extend(values)
    return "(" + " OR ".join(parts) + ")", params


def _list(compiler: Compiler, target: Target, modifier: str | None, value: str, name: str) -> Condition:
    """Resources that List/[id] has as an entry.item."""
    ids = [unescape(v) for v in split_values(value)]
    if any(i.startswith("$") for i in ids):
        raise unsupported(name, "Functional lists (_list=$...) are not supported")
    entry, head = compiler.alias("li"), compiler.alias("l")
    sql = (
        f"{target.alias}.res_id IN (SELECT {entry}.target_id FROM idx_reference {entry} JOIN resource {head} "
        f"ON {head}.rid = {entry}.rid WHERE {entry}.pkey = ? AND {entry}.target_type = ? "
        f"AND {head}.res_type = ? AND {head}.deleted = ? AND {head}.res_id IN ({', '.join('?' * len(ids))})"
    )
    params = [param_key("List", "item"), target.res_type, "List", False, *ids]
    narrowed = confined(compiler, Target(head, "List"))
    if narrowed is not None:
        sql += f" AND {narrowed[0]}"
        params += narrowed[1]
    return sql + ")", params


def _trivial_missing(value: str, name: str) -> Condition:
    if value not in ("true", "false"):
        raise invalid(name, f"':missing' takes true or false, not '{value}'")
    return ("1 = 0", []) if value == "true" else ("1 = 1", [])


_RESOURCE_PARAMETERS: dict[str, Callable[[Compiler, Target, str | None, str, str], Condition]] = {
    "_id": _id,
    "_lastUpdated": _last_updated,
    "_list": _list,
}
_RESOURCE_MODIFIERS: dict[str, frozenset[str | None]] = {
    "_id": frozenset({None, "missing", "not"}),
    "_lastUpdated": frozenset({None, "missing"}),
    "_list": frozenset({None}),
}

__all__ = [
    "RESULT_PARAMETERS", "Criterion", "build_count", "build_where", "compile_criteria", "intersect_rids",
    "is_known_parameter", "match_rids", "parse_criteria", "rid_subquery", "split_rid_selects",
]
