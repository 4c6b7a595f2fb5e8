"""string: case- and accent-insensitive starts-with by default; `:exact` and `:contains`.

Starts-with is a range over `vkey` (the normalised value as bytes), which both databases
order bytewise, so it runs on the index whatever the collation.
"""

from __future__ import annotations

from ficus.search.parse import like_escape, unescape
from ficus.search.types.base import Condition, Context, SearchType, register
from ficus.spec import SearchParameter
from ficus.store.indexing import STRING_LIMIT, normalize_string, string_key


@register
class StringType(SearchType):
    name = "string"
    table = "string"
    modifiers = frozenset({"exact", "contains"})

    def match(self, ctx: Context, alias: str, param: SearchParameter, modifier: str | None, value: str, name: str) -> Condition:
        text = unescape(value)
        if modifier == "exact":
            return f"({alias}.vkey = ? AND {alias}.exact = ?)", [string_key(text), text]
        normalized = normalize_string(text)
        if modifier == "contains":
            return f"{alias}.value LIKE ? ESCAPE '\\'", [f"%{like_escape(normalized)}%"]
        low = string_key(text)
        condition, params = f"({alias}.vkey >= ? AND {alias}.vkey < ?)", [low, low + b"\xff"]
        if len(normalized) > STRING_LIMIT:  # the key holds only a prefix: check the rest on the value
            condition = f"({condition} AND {alias}.value LIKE ? ESCAPE '\\')"
            params.append(f"{like_escape(normalized)}%")
        return condition, params
