"""Search: FHIR query parameters compiled to SQL over the typed index tables.

`query` turns criteria into SQL conditions; `execute.run` pages, sorts (`sort`), counts and
includes (`include`) with keyset cursors (`paging`); `find_ids` serves conditional operations.
"""

from __future__ import annotations

from collections.abc import Sequence

from ficus.search.confine import Confinement, visible_resources
from ficus.search.execute import SearchPlan, SearchResult, run
from ficus.search.query import (
    Compiler,
    Criterion,
    build_where,
    compile_criteria,
    intersect_rids,
    parse_criteria,
    split_rid_selects,
)
from ficus.spec import Definitions
from ficus.store.database import Cursor
from ficus.store.repository import Version

__all__ = ["Criterion", "SearchPlan", "SearchResult", "find_ids", "parse_criteria", "run", "search_versions", "visible_condition"]


def find_ids(
    tx: Cursor, definitions: Definitions, res_type: str, pairs: Sequence[tuple[str, str]], limit: int = 2,
    confine: Confinement | None = None,
) -> list[str]:
    """Ids of current resources matching a query (conditional operations need at most two),
    among those `confine` lets the caller see."""
    criteria = parse_criteria(pairs)
    selects, others = split_rid_selects(compile_criteria(definitions, res_type, criteria, confine, confine_matches=True))
    if selects and not others:  # the first rids from the index rows; only those meet `resource`
        rids, params = intersect_rids(selects)
        sql = f"SELECT r.res_id FROM ({rids} ORDER BY q.rid LIMIT ?) q JOIN resource r ON r.rid = q.rid ORDER BY q.rid"
        return [row[0] for row in tx.execute(sql, (*params, limit)).fetchall()]
    where, params = build_where(definitions, res_type, criteria, confine, confine_matches=True)
    rows = tx.execute(f"SELECT r.res_id FROM resource r WHERE {where} ORDER BY r.rid LIMIT ?", (*params, limit)).fetchall()
    return [row[0] for row in rows]


def search_versions(
    tx: Cursor, definitions: Definitions, res_type: str, pairs: Sequence[tuple[str, str]], count: int, offset: int
) -> tuple[list[Version], int]:
    """One page of matching current versions, oldest first, with the total match count."""
    where, params = build_where(definitions, res_type, parse_criteria(pairs))
    total = tx.execute(f"SELECT COUNT(*) FROM resource r WHERE {where}", params).fetchone()[0]
    rows = tx.execute(
        "SELECT v.res_type, v.res_id, v.version, v.last_updated, v.method, v.content "
        f"FROM resource r JOIN resource_version v ON v.res_type = r.res_type AND v.res_id = r.res_id "
        f"AND v.version = r.version WHERE {where} ORDER BY r.rid LIMIT ? OFFSET ?",
        (*params, count, offset),
    ).fetchall()
    return [Version.from_row(row) for row in rows], total


def visible_condition(definitions: Definitions, types: Sequence[str], confine: Confinement) -> tuple[str, list]:
    """Condition on `resource r`: the current resources of `types` that `confine` lets through."""
    return visible_resources(Compiler(definitions, confine), types)
