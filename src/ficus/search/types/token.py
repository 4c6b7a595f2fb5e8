"""token: `code`, `system|code`, `|code`, `system|`; `:text`, `:not`, `:of-type`, `:above`,
`:below` (code system hierarchies), `:in` and `:not-in` (a ValueSet by canonical URL, expanded
by the terminology service, else the codes a stored ValueSet lists, by URL or `ValueSet/id`)."""

from __future__ import annotations

from ficus.search import terminology
from ficus.search.parse import like_escape, split_escaped, split_values, unescape
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
from ficus.store.indexing import OF_TYPE_SUFFIX, VALUE_SET_CONCEPT, normalize_string, param_key

_MAX_IN_CODES = 5000


@register
class TokenType(SearchType):
    name = "token"
    table = "token"
    modifiers = frozenset({"text", "not", "of-type", "above", "below", "in", "not-in"})

    def condition(self, ctx: Context, target: Target, param: SearchParameter, modifier: str | None, value: str, name: str) -> Condition:
        self.check(param, modifier, name)
        code = param.code + OF_TYPE_SUFFIX if modifier == "of-type" else param.code
        pkey = param_key(target.res_type, code)
        if modifier == "missing":
            return missing(ctx, target, "token", pkey, value, name)
        alias = ctx.alias("i")
        positive = {"not": None, "not-in": "in"}.get(modifier or "", modifier)
        parts, params = [], []
        for alternative in split_values(value):
            sql, values = self.match(ctx, alias, param, positive, alternative, name)
            parts.append(sql)
            params.extend(values)
        negate = modifier in ("not", "not-in")
        return rows_exist(target, "token", alias, pkey, " OR ".join(parts), params, negate)

    def match(self, ctx: Context, alias: str, param: SearchParameter, modifier: str | None, value: str, name: str) -> Condition:
        if modifier == "text":
            return f"{alias}.text LIKE ? ESCAPE '\\'", [like_escape(normalize_string(unescape(value))) + "%"]
        if modifier == "in":
            return _in_value_set(ctx, alias, unescape(value), name)
        parts = [unescape(p) for p in split_escaped(value, "|")]
        if modifier == "of-type":
            if len(parts) != 3 or not parts[1] or not parts[2]:
                raise invalid(name, f"'{value}' is not of the form system|code|value for :of-type")
            system_sql, system_params = _system(alias, parts[0] or None)
            return f"({alias}.code = ? AND {system_sql} AND {alias}.text = ?)", [parts[1], *system_params, parts[2]]
        if len(parts) > 2:
            raise invalid(name, f"'{value}' has more than one unescaped '|'")
        if len(parts) == 1:
            codes = [parts[0]]
            return _codes(alias, codes, None, any_system=True)
        system, code = parts
        if not code:
            return f"{alias}.system = ?", [system]
        if modifier in ("above", "below") and system:
            return terminology.subsumption_condition(alias, system, code, upward=modifier == "above")
        return _codes(alias, [code], system or None)


def _system(alias: str, system: str | None) -> Condition:
    return (f"{alias}.system = ?", [system]) if system else (f"{alias}.system IS NULL", [])


def _codes(alias: str, codes: list[str], system: str | None, any_system: bool = False) -> Condition:
    code_sql = f"{alias}.code = ?" if len(codes) == 1 else f"{alias}.code IN ({', '.join('?' * len(codes))})"
    if any_system:
        return code_sql, list(codes)
    system_sql, system_params = _system(alias, system)
    return f"({code_sql} AND {system_sql})", [*codes, *system_params]


def _in_value_set(ctx: Context, alias: str, url: str, name: str) -> Condition:
    codes = terminology.value_set_codes(ctx.definitions, url) if not url.startswith("ValueSet/") else None
    if codes is not None:
        if len(codes) > _MAX_IN_CODES:
            raise invalid(name, f"The ValueSet {url} has {len(codes)} codes, more than :in supports ({_MAX_IN_CODES})")
        if not codes:
            return "1 = 0", []
        by_system: dict[str, list[str]] = {}
        for system, code in codes:
            by_system.setdefault(system, []).append(code)
        parts, params = [], []
        for system, system_codes in sorted(by_system.items()):
            sql, values = _codes(alias, sorted(system_codes), system)
            parts.append(sql)
            params.extend(values)
        return "(" + " OR ".join(parts) + ")", params
    return _stored_value_set(ctx, alias, url)


def _stored_value_set(ctx: Context, alias: str, url: str) -> Condition:
    """Codes listed by a ValueSet resource in the server (compose concepts or expansion)."""
    concept, head, uri = ctx.alias("vc"), ctx.alias("vs"), ctx.alias("vu")
    if url.startswith("ValueSet/"):
        chosen, chosen_params = f"{head}.res_id = ?", [url.split("/")[1]]
    else:
        chosen = f"{head}.rid IN (SELECT {uri}.rid FROM idx_uri {uri} WHERE {uri}.pkey = ? AND {uri}.value = ?)"
        chosen_params = [param_key("ValueSet", "url"), url.split("|", 1)[0]]
    sql = (
        f"EXISTS (SELECT 1 FROM idx_token {concept} JOIN resource {head} ON {head}.rid = {concept}.rid "
        f"WHERE {concept}.pkey = ? AND {concept}.code = {alias}.code AND {concept}.system = {alias}.system "
        f"AND {head}.res_type = ? AND {head}.deleted = ? AND {chosen})"
    )
    return sql, [param_key("ValueSet", VALUE_SET_CONCEPT), "ValueSet", False, *chosen_params]
