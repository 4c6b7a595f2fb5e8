"""reference: `id`, `Type/id`, an absolute URL or canonical (`url|version`); `:[type]` and
`:identifier` (Reference.identifier, indexed as token rows of `param:identifier`).

A reference to `Type/id` is found whether the resource wrote it relative or absolute; an
absolute URL that names no `Type/id` (a canonical, `urn:uuid:`) is compared as written.
"""

from __future__ import annotations

from ficus.search.parse import split_values, unescape
from ficus.search.types.base import (
    Condition,
    Context,
    SearchType,
    Target,
    invalid,
    missing,
    register,
    rows_exist,
)
from ficus.spec import SearchParameter
from ficus.store.indexing import IDENTIFIER_SUFFIX, param_key, parse_reference


@register
class ReferenceType(SearchType):
    name = "reference"
    table = "reference"
    modifiers = frozenset({"identifier"})

    def supports(self, param: SearchParameter, modifier: str | None) -> bool:
        return super().supports(param, modifier) or (
            modifier is not None and modifier[:1].isupper() and (not param.target or modifier in param.target)
        )

    def condition(self, ctx: Context, target: Target, param: SearchParameter, modifier: str | None, value: str, name: str) -> Condition:
        self.check(param, modifier, name)
        if modifier is not None and modifier[:1].isupper() and not ctx.definitions.is_resource_type(modifier):
            raise invalid(name, f"'{modifier}' is not a resource type")
        if modifier == "identifier":
            from ficus.search.types.base import REGISTRY

            token = REGISTRY["token"]
            alias = ctx.alias("i")
            parts, params = [], []
            for alternative in split_values(value):
                sql, values = token.match(ctx, alias, param, None, alternative, name)
                parts.append(sql)
                params.extend(values)
            pkey = param_key(target.res_type, param.code + IDENTIFIER_SUFFIX)
            return rows_exist(target, "token", alias, pkey, " OR ".join(parts), params)
        if modifier == "missing":
            return missing(ctx, target, "reference", param_key(target.res_type, param.code), value, name)
        return super().condition(ctx, target, param, modifier, value, name)

    def match(self, ctx: Context, alias: str, param: SearchParameter, modifier: str | None, value: str, name: str) -> Condition:
        reference = unescape(value).strip()
        if not reference:
            raise invalid(name, f"An empty reference is not a valid value for {name}")
        type_hint = modifier if modifier and modifier[:1].isupper() else None
        if "/" not in reference and not reference.startswith("urn:"):
            target_type = type_hint or (param.target[0] if len(param.target) == 1 else None)
            if target_type:
                return f"({alias}.target_id = ? AND {alias}.target_type = ?)", [reference, target_type]
            return f"{alias}.target_id = ?", [reference]
        url = reference.split("|", 1)[0]
        target_type, target_id = parse_reference(url)
        if target_type is None or target_id is None:
            return f"{alias}.url = ?", [url]
        if type_hint and type_hint != target_type:
            raise invalid(name, f"'{reference}' is not a reference to a {type_hint}")
        if "://" in url:
            return (
                f"({alias}.url = ? OR ({alias}.target_id = ? AND {alias}.target_type = ?))",
                [url, target_id, target_type],
            )
        return f"({alias}.target_id = ? AND {alias}.target_type = ?)", [target_id, target_type]
