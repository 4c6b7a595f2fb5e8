"""composite: `a$b` where each part is a value of a component parameter, all matched on the
same element (e.g. one Observation.component's code and value). Most composites join their
component parameters' own rows on (rid, grp), grp numbering the element; the others (see
`composite_layout`) have copies of the component rows under `code$i` sharing a `grp`."""

from __future__ import annotations

from ficus.search.parse import split_escaped, split_values
from ficus.search.types.base import (
    REGISTRY,
    Condition,
    Context,
    SearchType,
    Target,
    invalid,
    register,
)
from ficus.spec import SearchParameter
from ficus.store.indexing import component_code, composite_layout, param_key, parameter_by_url


@register
class CompositeType(SearchType):
    name = "composite"
    table = ""

    def components(self, ctx: Context, param: SearchParameter) -> list[tuple[SearchParameter, SearchType]] | None:
        found = []
        for component in param.component:
            definition = parameter_by_url(ctx.definitions, component["definition"])
            kind = REGISTRY.get(definition.type) if definition is not None else None
            if definition is None or kind is None or not kind.table:
                return None
            found.append((definition, kind))
        return found or None

    def condition(self, ctx: Context, target: Target, param: SearchParameter, modifier: str | None, value: str, name: str) -> Condition:
        self.check(param, modifier, name)
        components = self.components(ctx, param)
        if components is None:
            raise invalid(name, f"The composite parameter '{param.code}' has components this server cannot search")
        joined = composite_layout(ctx.definitions, target.res_type).joined.get(param.code)
        names = joined or [component_code(param.code, i) for i in range(len(components))]
        keys = [param_key(target.res_type, name) for name in names]
        aliases = [ctx.alias("c") for _ in components]
        first = aliases[0]
        joins = "".join(
            f" JOIN idx_{kind.table} {alias} ON {alias}.rid = {first}.rid AND {alias}.grp = {first}.grp AND {alias}.pkey = ?"
            for (_, kind), alias in zip(components[1:], aliases[1:])
        )
        if modifier == "missing":  # present: some element has a value for every component
            if value not in ("true", "false"):
                raise invalid(name, f"':missing' takes true or false, not '{value}'")
            rows = f"SELECT {first}.rid FROM idx_{components[0][1].table} {first}{joins} WHERE {first}.pkey = ?"
            operator = "NOT IN" if value == "true" else "IN"
            return f"{target.alias}.rid {operator} ({rows})", [*keys[1:], keys[0]]
        alternatives, params = [], []
        for alternative in split_values(value):
            parts = split_escaped(alternative, "$")
            if len(parts) != len(components):
                raise invalid(name, f"'{alternative}' needs {len(components)} parts separated by '$' for {name}")
            conditions = []
            for (definition, kind), alias, part in zip(components, aliases, parts):
                sql, values = kind.match(ctx, alias, definition, None, part, name)
                conditions.append(sql)
                params.extend(values)
            alternatives.append("(" + " AND ".join(conditions) + ")")
        sql = (
            f"{target.alias}.rid IN (SELECT {first}.rid FROM idx_{components[0][1].table} {first}{joins} "
            f"WHERE {first}.pkey = ? AND ({' OR '.join(alternatives)}))"
        )
        return sql, [*keys[1:], keys[0], *params]
