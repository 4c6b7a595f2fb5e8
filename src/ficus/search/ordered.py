"""The next matches of a search sorted on one date, number or quantity, read off the index of
its sort parameter.

Sorting the matches reads the sort value of every one of them. Walking that parameter's index
in the sort order and keeping the rows of matching resources finds the first `chunk` matches
after about `chunk / share` index rows, where `share` is the matches' share of the index rows,
however many matches there are. Each row read is tested against the criteria: by looking its
rid up in the criteria's own indexes (cheap to start, dearer a row), or in a hashed set of the
matches (built first, from every match). `walk_budget` weighs the three ways for a chunk from
the count and the planner's estimate of the index rows; a walk is bounded by twice the rows it
expects to read (at least `SCAN_PER_MATCH` per match wanted), and gives up (None: sort them
all) when they hold too few.

A resource has as many index rows as values, and its place in the order is that of its
smallest value ascending, its largest descending: its first row in the walk, since the index
holds rows by (value, rid) and the walk keeps rows in (value, rid) order too. So the first
distinct rids of the rows read are the first matches in order, ties broken by rid, as
`ficus.search.sort` orders them. Matches without a value come last, in rid order, once the walk
has read the whole index. Criteria on the sort parameter itself narrow the walk to a `Span` of
the index (see `ficus.search.execute._walk_span`); its matches all lie in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ficus.search.sort import SortKey
from ficus.search.types.base import Condition

if TYPE_CHECKING:
    from ficus.search.execute import Recorder

SCAN_PER_MATCH = 16  # index rows a walk reads per match wanted, without estimates (SQLite)
# what each step costs, in index rows read by a walk (PostgreSQL, measured at tiers M and L)
KEY_COST = 16  # a sort reads one match's sort key
PROBE_COST = 8  # a walk looks one row's rid up in the criteria's indexes
HASH_COST = 1  # a walk puts one match in its hashed set


@dataclass(frozen=True)
class Budget:
    """How far a walk may read, and how it tests the rows it reads."""

    rows: int
    hashed: bool  # test rids against a hashed set of the matches, not one lookup a row


def unestimated(chunk: int, size: int) -> Budget:
    """The budget without estimates: `SCAN_PER_MATCH` rows per match wanted, hashed."""
    return Budget(SCAN_PER_MATCH * (size + chunk), True)


@dataclass(frozen=True)
class Span:
    """The part of the sort key's index a walk reads, in walk order: from `start` (None: the
    first row) to `stop` (None: the last). Criteria on the sort parameter may put most of their
    matches past `approach`: the walk reads the rows before it too, and its budget counts them."""

    start: int | None = None
    stop: int | None = None
    approach: int | None = None
    alone: bool = False  # the rows that meet the criteria are the matches: `rows_meeting`


def walked(key: SortKey, pkey: int, span: Span) -> Condition:
    """The index rows (`x`) a walk for `key` reads."""
    assert key.index is not None
    column = f"x.{key.index[1]}"
    sql, params = ["x.pkey = ?"], [pkey]
    before, after = (">=", "<=") if key.descending else ("<=", ">=")
    if span.start is not None:
        sql.append(f"{column} {after} ?")
        params.append(span.start)
    if span.stop is not None:
        sql.append(f"{column} {before} ?")
        params.append(span.stop)
    if len(sql) == 1:
        sql.append(f"{column} IS NOT NULL")
    return " AND ".join(sql), params


def indexed(key: SortKey, pkey: int, span: Span, conditions: list[Condition]) -> Condition:
    """The index rows a walk for `key` reads that meet `conditions` on `x` (to ask the planner
    how many there are)."""
    assert key.index is not None
    sql, params = walked(key, pkey, span)
    for condition, values in conditions:
        sql, params = f"{sql} AND ({condition})", [*params, *values]
    return f"SELECT x.rid FROM {key.index[0]} x WHERE {sql}", params


def rows_meeting(
    recorder: Recorder, key: SortKey, pkey: int, span: Span, conditions: list[Condition], snapshot: int | None,
    chunk: int,
) -> list[int]:
    """The rids of the first `chunk` matches in the order of `key`, leaving out the entries of
    `snapshot`, where the matches are the rows of `span` that meet `conditions` (criteria on
    the sort parameter alone, which no resource has more than one row of): the index read in
    order, each row tested by itself."""
    assert key.index is not None
    sql, params = indexed(key, pkey, span, conditions)
    if snapshot is not None:
        sql += " AND x.rid NOT IN (SELECT e.rid FROM search_snapshot_entry e WHERE e.snapshot = ?)"
        params.append(snapshot)
    direction = "DESC" if key.descending else "ASC"
    rows = recorder.rows("chunk-rows", f"{sql} ORDER BY x.{key.index[1]} {direction}, x.rid LIMIT ?", [*params, chunk])
    return [row[0] for row in rows]


def walk_budget(matches: int, indexed: int, chunk: int, size: int, before: int = 0) -> Budget | None:
    """The cheapest way to the next `chunk` after `size` entries for `matches` spread over
    `indexed` index rows, after `before` rows that hold few: a walk that looks each row up, one
    that hashes the matches first, or (None) the sort."""
    if matches <= 0:
        return None
    expected = before - (-(size + chunk) * max(indexed, 1) // matches)  # rows read, if matches spread evenly
    looked_up, hashed, sorted_ = expected * PROBE_COST, matches * HASH_COST + expected, matches * KEY_COST
    if sorted_ <= min(looked_up, hashed):
        return None
    return Budget(max(2 * expected, unestimated(chunk, size).rows), hashed < looked_up)


def first_matches(
    recorder: Recorder, key: SortKey, pkey: int, span: Span, matches: Condition, snapshot: int | None,
    chunk: int, size: int, budget: Budget,
) -> list[int] | None:
    """The rids of the first `chunk` matches (fewer when that is all) in the order of `key`,
    leaving out the entries of `snapshot` (which holds `size`), reading at most `budget.rows`
    index rows of `span`; None when the walk gives up."""
    assert key.index is not None
    table, column = key.index
    walk, walk_params = walked(key, pkey, span)
    direction = "DESC" if key.descending else "ASC"
    rids, rid_params = matches
    held_params = [] if snapshot is None else [snapshot]

    def held(rid: str) -> str:
        return "" if snapshot is None else f" AND {rid} NOT IN (SELECT e.rid FROM search_snapshot_entry e WHERE e.snapshot = ?)"

    scan = budget.rows  # the held entries are walked past too
    window = chunk + chunk // 4 + 1  # rows kept: room for resources with several values
    # `IS TRUE` keeps the test a subplan (as a semi-join, PostgreSQL would join every row);
    # `OFFSET 0` keeps PostgreSQL looking each rid up rather than hashing the matches.
    if budget.hashed:
        test = f"s.rid IN ({rids})"
    else:
        test = f"EXISTS (SELECT 1 FROM ({rids}) m WHERE m.rid = s.rid OFFSET 0)"
    rows = recorder.rows(
        "chunk-walk",
        f"SELECT s.rid FROM (SELECT x.rid, x.{column} AS k FROM {table} x WHERE {walk} "
        f"ORDER BY x.{column} {direction}, x.rid LIMIT ?) s WHERE ({test}) IS TRUE{held('s.rid')} "
        f"ORDER BY s.k {direction}, s.rid LIMIT ?",
        [*walk_params, scan, *rid_params, *held_params, window],
    )
    found = list(dict.fromkeys(row[0] for row in rows))
    if len(found) >= chunk:
        return found[:chunk]
    if len(rows) == window:
        return None  # the window is full of repeated rids: sort them all
    indexed = recorder.rows(
        "chunk-walk-size",
        f"SELECT COUNT(*) FROM (SELECT 1 FROM {table} x WHERE {walk} LIMIT ?) c", [*walk_params, scan + 1],
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
