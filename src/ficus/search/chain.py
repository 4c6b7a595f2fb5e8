"""Chained (`subject:Patient.name=x`) and reverse-chained (`_has:Observation:patient:code=x`)
parameters: a join through `idx_reference` to the `resource` rows on the other side, with the
rest of the chain compiled against those rows. Both nest to any depth, inside each other."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ficus.search.confine import confined
from ficus.search.parse import Chain, Has
from ficus.search.types.base import Condition, Target, invalid, unsupported
from ficus.store.indexing import param_key

if TYPE_CHECKING:
    from ficus.search.query import Compiler


def chain_condition(compiler: Compiler, target: Target, key: Chain, value: str, name: str) -> Condition:
    """Resources whose reference `key.code` points at a resource matching `key.rest`."""
    param = compiler.parameters(target.res_type).get(key.code)
    if param is None or param.type != "reference":
        raise unsupported(name, f"'{key.code}' is not a reference parameter of {target.res_type}, so it cannot be chained")
    types = chain_types(compiler, target.res_type, key)
    if not types:
        raise unsupported(name, f"No resource type that '{key.code}' of {target.res_type} refers to can be searched by '{name}'")
    link, other = compiler.alias("l"), compiler.alias("r")
    branches, params = [], []
    for res_type in types:
        sql, values = compiler.criterion(Target(other, res_type), key.rest, value, name)
        narrowed = confined(compiler, Target(other, res_type))  # a chain must not peek at what the caller may not see
        if narrowed is not None:
            sql, values = f"{sql} AND {narrowed[0]}", [*values, *narrowed[1]]
        branches.append(f"({other}.res_type = ? AND {sql})")
        params += [res_type, *values]
    sql = (
        f"{target.alias}.rid IN (SELECT {link}.rid FROM idx_reference {link} JOIN resource {other} "
        f"ON {other}.res_type = {link}.target_type AND {other}.res_id = {link}.target_id "
        f"WHERE {link}.pkey = ? AND {other}.deleted = ? AND ({' OR '.join(branches)}))"
    )
    return sql, [param_key(target.res_type, key.code), False, *params]


def chain_types(compiler: Compiler, res_type: str, key: Chain) -> list[str]:
    """The target types the chain is searched on: the one named (`subject:Patient.`), else every
    type the reference allows on which the rest of the chain is a known parameter."""
    param = compiler.parameters(res_type).get(key.code)
    if param is None or param.type != "reference":
        return []
    if key.target_type is not None:
        if not compiler.definitions.is_resource_type(key.target_type):
            return []
        if param.target and key.target_type not in param.target:
            return []
        candidates = [key.target_type]
    else:
        candidates = list(param.target) or sorted(compiler.definitions.resource_types)
    return [t for t in candidates if compiler.known(t, key.rest)]


def has_condition(compiler: Compiler, target: Target, key: Has, value: str, name: str) -> Condition:
    """Resources that some `key.source_type` matching `key.rest` points at through `key.reference`."""
    if not compiler.definitions.is_resource_type(key.source_type):
        raise invalid(name, f"'{key.source_type}' in {name} is not a resource type")
    param = compiler.parameters(key.source_type).get(key.reference)
    if param is None or param.type != "reference":
        raise unsupported(name, f"'{key.reference}' is not a reference parameter of {key.source_type}")
    if param.target and target.res_type not in param.target:
        raise invalid(name, f"'{key.reference}' of {key.source_type} cannot refer to a {target.res_type}")
    link = compiler.alias("h")
    pkey = param_key(key.source_type, key.reference)
    restricted = compiler.confine is not None and compiler.confine(key.source_type) is not None
    if not compiler.needs_resource_row(key.rest) and not restricted:
        # index rows exist only for current, undeleted resources: no need to visit `resource`
        sql, values = compiler.criterion(Target(link, key.source_type), key.rest, value, name)
        condition = (
            f"{target.alias}.res_id IN (SELECT {link}.target_id FROM idx_reference {link} "
            f"WHERE {link}.pkey = ? AND {link}.target_type = ? AND {sql})"
        )
        return condition, [pkey, target.res_type, *values]
    source = compiler.alias("r")
    sql, values = compiler.criterion(Target(source, key.source_type), key.rest, value, name)
    narrowed = confined(compiler, Target(source, key.source_type))  # `_has` only counts resources the caller may see
    if narrowed is not None:
        sql, values = f"{sql} AND {narrowed[0]}", [*values, *narrowed[1]]
    condition = (
        f"{target.alias}.res_id IN (SELECT {link}.target_id FROM idx_reference {link} JOIN resource {source} "
        f"ON {source}.rid = {link}.rid WHERE {link}.pkey = ? AND {link}.target_type = ? "
        f"AND {source}.res_type = ? AND {source}.deleted = ? AND {sql})"
    )
    return condition, [pkey, target.res_type, key.source_type, False, *values]
