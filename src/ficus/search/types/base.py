"""The one interface every search parameter type implements, and the SQL pieces they share.

A type turns one criterion (`param[:modifier]=value`) on a resource alias into an SQL condition
over its index table. `match` answers for one comma-separated alternative on an index-row alias;
the default `condition` ORs those inside one `rid IN (...)` subquery keyed by `pkey`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ficus.outcome import FhirError
from ficus.search.parse import split_values
from ficus.spec import Definitions, SearchParameter
from ficus.store.indexing import param_key

Condition = tuple[str, list]


@dataclass(frozen=True)
class Target:
    """A `resource` row alias the condition is about, and the type of resource it holds."""

    alias: str
    res_type: str


class Context(Protocol):
    """What a type needs from the query being compiled."""

    definitions: Definitions

    def alias(self, stem: str) -> str: ...


def invalid(name: str, message: str) -> FhirError:
    return FhirError.of(400, "invalid", message, name)


def unsupported(name: str, message: str) -> FhirError:
    return FhirError.of(400, "not-supported", message, name)


class SearchType:
    """A FHIR search parameter type (string, token, date, ...)."""

    name = ""
    table = ""
    modifiers: frozenset[str] = frozenset()

    def supports(self, param: SearchParameter, modifier: str | None) -> bool:
        """Whether `modifier` (None for none) can be used with `param`."""
        return modifier is None or modifier == "missing" or modifier in self.modifiers

    def check(self, param: SearchParameter, modifier: str | None, name: str) -> None:
        if not self.supports(param, modifier):
            raise unsupported(name, f"The modifier ':{modifier}' is not supported for {self.name} parameter '{param.code}'")

    def condition(self, ctx: Context, target: Target, param: SearchParameter, modifier: str | None, value: str, name: str) -> Condition:
        self.check(param, modifier, name)
        pkey = param_key(target.res_type, param.code)
        if modifier == "missing":
            return missing(ctx, target, self.table, pkey, value, name)
        alias = ctx.alias("i")
        sql, params = self._alternatives(ctx, alias, param, modifier, value, name)
        return rows_exist(target, self.table, alias, pkey, sql, params)

    def one_row_condition(self, ctx: Context, target: Target, param: SearchParameter, values: list[str], name: str) -> Condition:
        """Several criteria without modifiers (`values`: each one's value) met by one index row:
        the same as each met by some row, for a parameter of which no resource has more than one."""
        self.check(param, None, name)
        alias = ctx.alias("i")
        parts, params = [], []
        for value in values:
            sql, found = self._alternatives(ctx, alias, param, None, value, name)
            parts.append(f"({sql})")
            params.extend(found)
        return rows_exist(target, self.table, alias, param_key(target.res_type, param.code), " AND ".join(parts), params)

    def _alternatives(self, ctx: Context, alias: str, param: SearchParameter, modifier: str | None, value: str, name: str) -> Condition:
        """The OR of a value's comma-separated alternatives on the index row `alias`."""
        parts, params = [], []
        for alternative in split_values(value):
            sql, values = self.match(ctx, alias, param, modifier, alternative, name)
            parts.append(sql)
            params.extend(values)
        return " OR ".join(parts), params

    def match(self, ctx: Context, alias: str, param: SearchParameter, modifier: str | None, value: str, name: str) -> Condition:
        """One alternative, as a condition on the index row `alias`."""
        raise NotImplementedError


REGISTRY: dict[str, SearchType] = {}


def register(cls: type[SearchType]) -> type[SearchType]:
    REGISTRY[cls.name] = cls()
    return cls


def rows_exist(target: Target, table: str, alias: str, pkey: int, inner: str, params: list, negate: bool = False) -> Condition:
    """Resources at `target` with (or, negated, without) an index row matching `inner`."""
    if negate:
        sql = (
            f"NOT EXISTS (SELECT 1 FROM idx_{table} {alias} WHERE {alias}.rid = {target.alias}.rid "
            f"AND {alias}.pkey = ? AND ({inner}))"
        )
        return sql, [pkey, *params]
    return (
        f"{target.alias}.rid IN (SELECT {alias}.rid FROM idx_{table} {alias} WHERE {alias}.pkey = ? AND ({inner}))",
        [pkey, *params],
    )


def missing(ctx: Context, target: Target, table: str, pkey: int, value: str, name: str) -> Condition:
    """`:missing=true` (no index row at all) or `:missing=false` (at least one)."""
    if value not in ("true", "false"):
        raise invalid(name, f"':missing' takes true or false, not '{value}'")
    alias = ctx.alias("m")
    if value == "true":
        return (
            f"NOT EXISTS (SELECT 1 FROM idx_{table} {alias} WHERE {alias}.rid = {target.alias}.rid AND {alias}.pkey = ?)",
            [pkey],
        )
    return f"{target.alias}.rid IN (SELECT {alias}.rid FROM idx_{table} {alias} WHERE {alias}.pkey = ?)", [pkey]
