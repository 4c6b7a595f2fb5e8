"""Confinement of the resources a search looks at through chains, `_has` and `_list`.

A policy may let a caller see only part of a type (a Patient's compartment, a granular scope's
criteria) or none of it. The matched resources are narrowed by the search's own criteria; the
resources behind a chain, a `_has` or a `_list` are narrowed here, so that no criterion can
tell whether something the caller may not see exists or what it holds.

A `Confinement` answers per resource type: None (every resource of the type), or the
alternatives a resource must match one of (none at all: an empty tuple). An alternative is a
compartment `(type, id)` or None, and criteria as `(name, value)` pairs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ficus.search.parse import parse_key
from ficus.search.types.base import Condition, Target
from ficus.store.indexing import param_key

if TYPE_CHECKING:
    from ficus.search.query import Compiler

Alternative = tuple[tuple[str, str] | None, tuple[tuple[str, str], ...]]
Confinement = Callable[[str], tuple[Alternative, ...] | None]


def confined(compiler: Compiler, target: Target) -> Condition | None:
    """The condition keeping `target` (an alias whose `rid` is the resource's) to what the
    confinement lets through; None when nothing needs to be added."""
    if compiler.confine is None:
        return None
    alternatives = compiler.confine(target.res_type)
    if alternatives is None:
        return None
    parts, params = [], []
    for compartment, criteria in alternatives:
        clauses, values = [], []
        if compartment is not None:
            sql, found = compartment_condition(compiler, target, *compartment)
            clauses.append(sql)
            values += found
        for name, value in criteria:
            sql, found = compiler.criterion(target, parse_key(name), value, name)
            clauses.append(sql)
            values += found
        parts.append("(" + (" AND ".join(clauses) or "1 = 1") + ")")
        params += values
    if not parts:
        return "1 = 0", []
    return "(" + " OR ".join(parts) + ")", params


def compartment_condition(compiler: Compiler, target: Target, comp_type: str, comp_id: str) -> Condition:
    """`target` is in `comp_type/comp_id`'s compartment (per the CompartmentDefinition)."""
    members = compiler.definitions.compartments.get(comp_type, {})
    names = [name for name in members.get(target.res_type) or () if name != "{def}"]
    branches, params = [], []
    if names:
        link = compiler.alias("cx")
        branches.append(
            f"SELECT {link}.rid FROM idx_reference {link} WHERE {link}.pkey IN ({', '.join('?' * len(names))}) "
            f"AND {link}.target_type = ? AND {link}.target_id = ?"
        )
        params += [param_key(target.res_type, name) for name in names] + [comp_type, comp_id]
    if target.res_type == comp_type:
        own = compiler.alias("cr")
        branches.append(f"SELECT {own}.rid FROM resource {own} WHERE {own}.res_type = ? AND {own}.res_id = ?")
        params += [comp_type, comp_id]
    if not branches:
        return "1 = 0", []
    return f"{target.alias}.rid IN ({' UNION '.join(branches)})", params


def visible_resources(compiler: Compiler, types: Iterable[str]) -> Condition:
    """Condition on `resource r`: current resources of `types` that `compiler.confine` lets
    through (the whole type where it is open)."""
    open_types: list[str] = []
    parts, params = [], []
    for res_type in types:
        narrowed = confined(compiler, Target("r", res_type))
        if narrowed is None:
            open_types.append(res_type)
        elif narrowed[0] != "1 = 0":
            parts.append(f"(r.res_type = ? AND {narrowed[0]})")
            params += [res_type, *narrowed[1]]
    if open_types:
        parts.insert(0, f"r.res_type IN ({', '.join('?' * len(open_types))})")
        params[:0] = open_types
    if not parts:
        return "1 = 0", []
    return f"r.deleted = ? AND ({' OR '.join(parts)})", [False, *params]
