"""uri: exact match; `:below` (the value and everything under it) and `:above` (the value and
every URL it lies under)."""

from __future__ import annotations

from ficus.search.parse import like_escape, unescape
from ficus.search.types.base import Condition, Context, SearchType, register
from ficus.spec import SearchParameter


@register
class UriType(SearchType):
    name = "uri"
    table = "uri"
    modifiers = frozenset({"above", "below"})

    def match(self, ctx: Context, alias: str, param: SearchParameter, modifier: str | None, value: str, name: str) -> Condition:
        uri = unescape(value)
        if modifier == "below":
            return f"{alias}.value LIKE ? ESCAPE '\\'", [like_escape(uri) + "%"]
        if modifier == "above":
            candidates = above(uri)
            return f"{alias}.value IN ({', '.join('?' * len(candidates))})", candidates
        return f"{alias}.value = ?", [uri]


def above(uri: str) -> list[str]:
    """`uri` and each of its path prefixes, with and without a trailing slash."""
    found = [uri]
    scheme_end = uri.find("://")
    start = scheme_end + 3 if scheme_end >= 0 else 0
    position = len(uri)
    while True:
        position = uri.rfind("/", start, position)
        if position < 0:
            break
        found.extend([uri[:position], uri[:position + 1]])
    return list(dict.fromkeys(p for p in found if p))
