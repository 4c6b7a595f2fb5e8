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
            return f"({alias}.vkey = ? AND {alias}.exact = ?)", [string_key(text), text[:STRING_LIMIT]]
        if modifier == "contains":
            return f"{alias}.value LIKE ? ESCAPE '\\'", [f"%{like_escape(normalize_string(text))}%"]
        low = string_key(text)
        return f"({alias}.vkey >= ? AND {alias}.vkey < ?)", [low, low + b"\xff"]
