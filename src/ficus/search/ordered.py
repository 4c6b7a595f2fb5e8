"""The next matches of a search sorted on one date, number or quantity, read off the index of
its sort parameter.

Sorting the matches reads the sort value of every one of them. When the criteria match a good
share of the resources that have the sort parameter (a frequent code, a status), walking that
parameter's index in the sort order and keeping the rows of matching resources finds the first
`chunk` matches after about `chunk / share` index rows, however many matches there are. The
walk is bounded: it reads at most `SCAN_PER_MATCH` index rows per match it needs, and gives up
(None: sort them all) when they hold too few.

A resource has as many index rows as values, and its place in the order is that of its
smallest value ascending, its largest descending: its first row in the walk, since the index
holds rows by (value, rid) and the walk keeps rows in (value, rid) order too. So the first
distinct rids of the rows read are the first matches in order, ties broken by rid, as
`ficus.search.sort` orders them. Matches without a value come last, in rid order, once the walk
has read the whole index.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ficus.search.sort import SortKey
from ficus.search.types.base import Condition

if TYPE_CHECKING:
    from ficus.search.execute import Recorder

SCAN_PER_MATCH = 16  # index rows read per match wanted: criteria matching 1 in 16 of them or more


def indexed(key: SortKey, pkey: int) -> Condition:
    """The index rows a walk for `key` reads (to ask the planner how many there are)."""
    assert key.index is not None
    table, column = key.index
    return f"SELECT x.rid FROM {table} x WHERE x.pkey = ? AND x.{column} IS NOT NULL", [pkey]


def worth_walking(matches: int, indexed: int) -> bool:
    """Whether a walk is likely to find its chunk: the matches are at least 1 in
    `SCAN_PER_MATCH` of the index rows (the planner's estimate of them)."""
    return matches * SCAN_PER_MATCH >= indexed


def first_matches(
    recorder: Recorder, key: SortKey, pkey: int, matches: Condition, snapshot: int | None, chunk: int, size: int,
) -> list[int] | None:
    """The rids of the first `chunk` matches (fewer when that is all) in the order of `key`,
    leaving out the entries of `snapshot` (which holds `size`); None when the walk gives up."""
    assert key.index is not None
    table, column = key.index
    direction = "DESC" if key.descending else "ASC"
    rids, rid_params = matches
    held_params = [] if snapshot is None else [snapshot]

    def held(rid: str) -> str:
        return "" if snapshot is None else f" AND {rid} NOT IN (SELECT e.rid FROM search_snapshot_entry e WHERE e.snapshot = ?)"

    scan = SCAN_PER_MATCH * (size + chunk)  # the held entries are walked past too
    window = chunk + chunk // 4 + 1  # rows kept: room for resources with several values
    # `IS TRUE` keeps the test a subplan (as a semi-join, PostgreSQL would join every row). The
    # first walk is short: PostgreSQL looks each rid up in the criteria's indexes (`OFFSET 0`
    # keeps it from hashing them all, about 0.45 µs a match); later walks hash them, as SQLite
    # always does.
    if size == 0 and recorder.dialect == "postgresql":
        test = f"EXISTS (SELECT 1 FROM ({rids}) m WHERE m.rid = s.rid OFFSET 0)"
    else:
        test = f"s.rid IN ({rids})"
    rows = recorder.rows(
        "chunk-walk",
        f"SELECT s.rid FROM (SELECT x.rid, x.{column} AS k FROM {table} x WHERE x.pkey = ? AND x.{column} IS NOT NULL "
        f"ORDER BY x.{column} {direction}, x.rid LIMIT ?) s WHERE ({test}) IS TRUE{held('s.rid')} "
        f"ORDER BY s.k {direction}, s.rid LIMIT ?",
        [pkey, scan, *rid_params, *held_params, window],
    )
    found = list(dict.fromkeys(row[0] for row in rows))
    if len(found) >= chunk:
        return found[:chunk]
    if len(rows) == window:
        return None  # the window is full of repeated rids: sort them all
    indexed = recorder.rows(
        "chunk-walk-size",
        f"SELECT COUNT(*) FROM (SELECT 1 FROM {table} x WHERE x.pkey = ? AND x.{column} IS NOT NULL LIMIT ?) c",
        [pkey, scan + 1],
    )[0][0]
    if indexed > scan:
        return None  # the criteria match too few of the rows walked
    # the whole index was walked: every match with a value is found; those without follow
    rest = recorder.rows(
        "chunk-valueless",
        f"SELECT m.rid FROM ({rids}) m WHERE NOT EXISTS (SELECT 1 FROM {table} x WHERE x.rid = m.rid AND x.pkey = ? "
        f"AND x.{column} IS NOT NULL){held('m.rid')} ORDER BY m.rid LIMIT ?",
        [*rid_params, pkey, *held_params, chunk - len(found)],
    )
    return found + [row[0] for row in rest]
