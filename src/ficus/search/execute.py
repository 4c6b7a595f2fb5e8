"""Running a search: scope and criteria -> one page of matches, its includes and the total.

Statements per page (all fixed, none per resource):

- 1 page statement: the keyset-paged, sorted match rows joined to their stored JSON
  (`_summary=count` / `_count=0` skip it); unsorted, it takes `_count` + 1 rids from the index
  rows in rid order and joins only those (one criterion: from a window of its rows, and once
  more with DISTINCT when the window's rows repeat too often to fill the page);
- 0 or 1 count statement: skipped for `_total=none`, and when the first page already holds
  every match; `_total=estimate` (the default) on PostgreSQL counts up to
  `ESTIMATE_EXACT_BELOW` (one criterion: its index rows; 1 more statement when those repeat)
  and otherwise reads the planner's estimate (1 more statement; 2 if that estimate is below
  the count so far, which is then counted in full);
- 1 statement per include level (`_include`/`_revinclude` all together; `:iterate` adds
  levels, at most `include.MAX_LEVELS`);
- 1 statement listing the stored resource types, only for a search over many types with
  criteria (system search without `_type`, compartment `*`).

A sorted search first counts its matches up to the end of the page asked for (a count that
stops there). If they go beyond it, it runs once more in a write transaction
(`SearchResult.wants_snapshot`) to store its snapshot (`ficus.search.snapshot`): its first chunk
of matches in order, then 2 purge statements, the INSERT of that chunk, its header, then the page
read from the snapshot, its includes and, until the snapshot is complete, the count (the total
of a complete snapshot is its size). Sorted on one date, number or quantity, a chunk is a walk
of that parameter's index (`ficus.search.ordered`; on PostgreSQL after the count and one
planner estimate say it is cheaper than the sort; 1 statement, 3 for the last chunk, and 1
more to start it at a date criterion on the sort parameter) and, if the walk gives up, a
bounded sort; otherwise the bounded sort (an INSERT ... SELECT that reads every match's sort
key, and the size read back). Its later pages cost a snapshot check, the page, the
includes and that count. A forward page that reaches past the stored entries of an incomplete
snapshot runs once more in a write transaction too, to append the next chunk first: the
header's lock, the chunk of the first matches the snapshot does not hold (found the same way),
its INSERT and the header's update, then the page again.

Every statement goes through `Recorder`, which times it, keeps its SQL and parameters for
`_explain`, and turns database errors caused by a client's values into a 400. On PostgreSQL it
runs the statements of a search whose best plan depends on its values unprepared, so that each
is planned for them (see `_generic_plans_fit`).
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any

from ficus.outcome import FhirError, Issue
from ficus.search import ordered, snapshot
from ficus.search.confine import Confinement
from ficus.search.include import MAX_INCLUDED, MAX_LEVELS, IncludeSpec, level_ids
from ficus.search.paging import Cursor, keyset_condition
from ficus.search.parse import split_values
from ficus.search.query import (
    Criterion,
    build_where,
    compile_criteria,
    intersect_rids,
    match_rids,
    split_rid_selects,
)
from ficus.search.sort import SortKey
from ficus.search.types.base import Condition
from ficus.search.types.date import date_condition, walk_bounds
from ficus.spec import Definitions
from ficus.store.database import Cursor as DbCursor
from ficus.store.indexing import RESOURCE_COLUMN_PARAMETERS, param_key
from ficus.store.repository import Version

ESTIMATE_EXACT_BELOW = 1000
SIZE_COUNTED = 2000  # SQLite: rows counted per criterion to find the one to start from
MAX_PARAMETERS = 32000  # below SQLite's default limit (32766) and PostgreSQL's (65535)
_MANY_TYPES = 4
_CONTENT_COLUMNS = "v.res_type, v.res_id, v.version, v.last_updated, v.method, v.content"


@dataclass
class Statement:
    purpose: str
    sql: str
    params: list
    rows: int = 0
    seconds: float = 0.0


class Recorder:
    """Runs the statements of one search on `tx` and remembers them."""

    def __init__(self, tx: DbCursor, dialect: str, planned_for_values: bool = False) -> None:
        self.tx = tx
        self.dialect = dialect
        self.planned_for_values = planned_for_values  # PostgreSQL: never a prepared statement's generic plan
        self.statements: list[Statement] = []

    def rows(self, purpose: str, sql: str, params: list, fetch: bool = True, for_values: bool = False) -> list:
        """The rows `sql` returns (none fetched for a statement that returns none: `fetch=False`);
        `for_values`: planned for its values on PostgreSQL even in a search that need not be."""
        if len(params) > MAX_PARAMETERS:
            raise FhirError.of(400, "too-costly", f"The search needs {len(params)} SQL parameters (at most {MAX_PARAMETERS}); use fewer values")
        statement = Statement(purpose, sql, list(params))
        started = time.perf_counter()
        try:
            if self.dialect == "postgresql" and (self.planned_for_values or for_values):
                executed = self.tx.execute(sql, params, prepare=False)
            else:
                executed = self.tx.execute(sql, params)
            found = executed.fetchall() if fetch else []
        except Exception as error:  # re-raised unless a client's value caused it
            raise _client_error(error) from error
        statement.seconds = time.perf_counter() - started
        statement.rows = len(found)
        self.statements.append(statement)
        return found


def _client_error(error: Exception) -> Exception:
    """A database error that a query's values provoke becomes a 400; others stay as they are."""
    text = str(error)
    if isinstance(error, OverflowError):
        return FhirError.of(400, "invalid", "A search value is out of the range this server can compare")
    if isinstance(error, sqlite3.OperationalError) and re.search(
        r"too many (SQL variables|terms)|too (big|large|complex)|parser stack overflow|Expression tree", text
    ):
        return FhirError.of(400, "too-costly", "The search is too large to run; use fewer values")
    try:
        import psycopg.errors as pg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return error
    if isinstance(error, (pg.ProgramLimitExceeded, pg.StatementTooComplex)):
        return FhirError.of(400, "too-costly", "The search is too large to run; use fewer values")
    if isinstance(error, pg.DataError):
        return FhirError.of(400, "invalid", f"A search value cannot be compared: {text.splitlines()[0]}")
    return error


@dataclass
class SearchPlan:
    """What to search and which page to return; built from the request by `api.search`."""

    types: list[str] | None  # None: every resource type
    criteria: list[Criterion] = field(default_factory=list)
    sort: list[SortKey] = field(default_factory=list)
    count: int = 50
    offset: int = 0
    cursor: Cursor | None = None
    total: str = "accurate"  # none | estimate | accurate
    page: bool = True  # False: only the total (_summary=count, _count=0)
    includes: list[IncludeSpec] = field(default_factory=list)
    compartment: tuple[str, str, dict[str, list[str]]] | None = None  # (type, id, {type: params})
    # sorted searches of several pages: False: page by keyset; "ask": stop after the first
    # page's probe and set `SearchResult.wants_snapshot`; "make": store one (`tx` may write)
    snapshot: bool | str = False
    confine: Confinement | None = None  # what chains, _has and _list may look at (the policy's)
    viewer: tuple = ()  # whom `confine` is for: part of a snapshot's fingerprint
    repeated: frozenset[int] = frozenset()  # keys of `search_repeated_key` the search's own transaction adds


@dataclass
class SearchResult:
    matches: list[Version]
    included: list[Version]
    total: int | None
    next: Cursor | None
    previous: Cursor | None
    warnings: list[Issue]
    statements: list[Statement]
    wants_snapshot: bool = False  # run again with `snapshot="make"` in a write transaction


def run(tx: DbCursor, definitions: Definitions, dialect: str, plan: SearchPlan) -> SearchResult:
    recorder = Recorder(tx, dialect, not _generic_plans_fit(plan))
    matching = _matching(recorder, definitions, plan)
    matches: list[Version] = []
    included: list[Version] = []
    warnings: list[Issue] = []
    next_cursor = previous_cursor = None
    total: int | None = None
    complete_first_page = False
    snapshot_total: int | None = None  # the total of a snapshot that holds every match
    if plan.page and plan.count > 0:
        stored = plan.cursor.snapshot if plan.cursor is not None else None
        made = None  # the header of a snapshot stored by this page
        if stored is None and plan.snapshot == "make":
            stored, made = _make_snapshot(recorder, plan, matching)
        elif plan.snapshot == "ask" and plan.sort and plan.cursor is None and _fills_more_than_a_page(recorder, plan, matching):
            return SearchResult([], [], None, None, None, [], recorder.statements, wants_snapshot=True)
        if stored is not None:
            found = _snapshot_rows(recorder, plan, matching, stored, made)
            if found is None:
                return SearchResult([], [], None, None, None, [], recorder.statements, wants_snapshot=True)
            rows, (size, complete) = found
            snapshot_total = size if complete else None
            matches, match_rids, next_cursor, previous_cursor = _snapshot_page(plan, stored, rows)
        else:
            matches, match_rids, next_cursor, previous_cursor = _page(recorder, plan, matching)
        complete_first_page = plan.cursor is None and plan.offset == 0 and next_cursor is None
        if plan.includes and matches:
            included, truncated = _includes(recorder, plan.includes, match_rids)
            if truncated:
                warnings.append(Issue(
                    "warning", "too-costly",
                    f"Only the first {MAX_INCLUDED} included resources are returned; narrow the search or the includes",
                ))
    if plan.total == "none":
        total = None
    elif snapshot_total is not None:
        total = snapshot_total
    elif complete_first_page:
        total = len(matches)
    else:
        total = _count_matches(recorder, plan, matching)
    return SearchResult(matches, included, total, next_cursor, previous_cursor, warnings, recorder.statements)


def _generic_plans_fit(plan: SearchPlan) -> bool:
    """Whether the generic plan of a prepared statement serves the search about as well as a
    plan made for its values: with no criteria (in a compartment or not), or one criterion on
    one type that is not a chain or `_has`, the plan reads one index range, however many rows
    it holds. With more, the best plan depends on how many rows each value has, which a
    generic plan guesses at a few: it would hash every row of a category to intersect it with
    a frequent code (0.5 s at 400,000 resources, against 26 ms planned for the values).
    Planning for the values costs about 0.5 ms a statement."""
    if not plan.criteria:
        return True
    if plan.types is None or len(plan.types) != 1 or plan.compartment is not None or len(plan.criteria) != 1:
        return False
    criterion = plan.criteria[0]
    return criterion.name != "_has" and "." not in criterion.name and "." not in (criterion.modifier or "")


# -- scope --------------------------------------------------------------------------------------

@dataclass
class Matching:
    """What a search matches: one SQL condition on `resource r`; for a single type, also the
    same condition split into rid `SELECT`s over the index tables and the other conditions."""

    where: str
    params: list
    res_type: str | None = None
    selects: list[Condition] = field(default_factory=list)
    others: list[Condition] = field(default_factory=list)
    counted: int | None = None  # `_count_matches`, once it has run
    probed: bool = False  # SQLite: `selects` smallest first, the others looked up (`intersect_rids`)
    # one date, number or quantity criterion: its page is planned for its values, which reads a
    # narrow range and walks rids past a wide one (a generic plan sorts a year of dates)
    ranged: bool = False
    one_row: frozenset[str] = frozenset()  # parameters known to have one index row a resource (`_one_row`)

    def rids(self) -> Condition:
        """A `SELECT` of the matching rids, each once (`match_rids`)."""
        return match_rids(self.selects, self.others, self.where, self.params, self.probed)


def _matching(recorder: Recorder, definitions: Definitions, plan: SearchPlan) -> Matching:
    """The matches of the plan's types, criteria and compartment."""
    types = plan.types
    if plan.criteria and (types is None or len(types) > _MANY_TYPES):
        stored = stored_types(recorder)
        types = [t for t in types if t in stored] if types is not None else sorted(stored)
    if types is not None and len(types) == 1:
        one_row = _one_row(recorder, definitions, plan, types[0])
        conditions = _compile_criteria(definitions, types[0], plan.criteria, plan.confine, one_row)
        if plan.compartment is not None:
            conditions.append(_compartment_condition(*plan.compartment))
        selects, others = split_rid_selects(conditions)
        probed = recorder.dialect == "sqlite" and len(selects) > 1
        if probed:
            selects = _fewest_rows_first(recorder, selects)
        where = " AND ".join(["r.res_type = ?", "r.deleted = ?", *(sql for sql, _ in conditions)])
        params = [types[0], False, *(p for _, values in conditions for p in values)]
        ranged = len(plan.criteria) == 1 and len(selects) == 1 and not others and _ranges(definitions, types[0], plan.criteria[0])
        return Matching(where, params, types[0], selects, others, probed=probed, ranged=ranged, one_row=one_row)
    if plan.criteria:
        # Conditions with index subqueries: one UNION ALL branch per type, each planned on its
        # own indexes (an OR of IN-subqueries makes the planners scan `resource`). Plain column
        # conditions (_id, _lastUpdated) stay an OR, which an ordered scan can stop early on.
        parts, params = [], []
        for res_type in types or []:
            sql, values = _build_where(definitions, res_type, plan.criteria, plan.confine)
            parts.append(sql)
            params += values
        if not parts:
            where = "1 = 0"
        elif any("SELECT" in part.upper() for part in parts):
            where = "r.rid IN (" + " UNION ALL ".join(f"SELECT r.rid FROM resource r WHERE {p}" for p in parts) + ")"
        else:
            where = "(" + " OR ".join(f"({p})" for p in parts) + ")"
    elif types is None:
        where, params = "r.deleted = ?", [False]
    elif not types:
        where, params = "1 = 0", []
    else:
        where = f"r.res_type IN ({', '.join('?' * len(types))}) AND r.deleted = ?"
        params = [*types, False]
    if plan.compartment is not None:
        sql, values = _compartment_condition(*plan.compartment)
        where += f" AND {sql}"
        params = [*params, *values]
    return Matching(where, params)


def _one_row(recorder: Recorder, definitions: Definitions, plan: SearchPlan, res_type: str) -> frozenset[str]:
    """The date, number and quantity parameters with several criteria that one index row can
    meet together (`compile_criteria`): those of which no resource has more than one row."""
    names = [
        criterion.name for criterion in plan.criteria
        if criterion.name not in RESOURCE_COLUMN_PARAMETERS and _ranges(definitions, res_type, criterion)
    ]
    several = {name for name in names if names.count(name) > 1}
    return frozenset(name for name in several if not _repeated(recorder, plan, param_key(res_type, name)))


def _ranges(definitions: Definitions, res_type: str, criterion: Criterion) -> bool:
    """Whether `criterion` compares a date, number or quantity (a range of its index)."""
    param = definitions.search_parameters_for(res_type).get(criterion.name)
    return criterion.modifier is None and param is not None and param.type in ("date", "number", "quantity")


def _fewest_rows_first(recorder: Recorder, selects: list[Condition]) -> list[Condition]:
    """The rid `SELECT`s in the order of how many rows each yields, counted up to
    `SIZE_COUNTED` (ties and larger ones in the query's order): SQLite keeps no statistics of
    values, so it is told which criterion to start from."""
    counts = ", ".join(f"(SELECT COUNT(*) FROM ({sql} LIMIT ?))" for sql, _ in selects)
    params = [p for _, values in selects for p in (*values, SIZE_COUNTED)]
    sizes = recorder.rows("sizes", f"SELECT {counts}", params)[0]
    return [select for _, select in sorted(zip(sizes, selects), key=lambda pair: pair[0])]


def _build_where(definitions: Definitions, res_type: str, criteria: list[Criterion], confine: Confinement | None) -> tuple[str, list]:
    conditions = _compile_criteria(definitions, res_type, criteria, confine)
    where = " AND ".join(["r.res_type = ?", "r.deleted = ?", *(sql for sql, _ in conditions)])
    return where, [res_type, False, *(p for _, values in conditions for p in values)]


def _compile_criteria(
    definitions: Definitions, res_type: str, criteria: list[Criterion], confine: Confinement | None,
    one_row: frozenset[str] = frozenset(),
) -> list[Condition]:
    """`compile_criteria`, making sure a failure names the parameter whose value caused it."""
    try:
        return compile_criteria(definitions, res_type, criteria, confine, one_row=one_row)
    except FhirError as error:
        if all(issue.expression for issue in error.issues):
            raise
        culprit = _culprit(definitions, res_type, criteria)
        if culprit is None:
            raise
        raise FhirError(error.status, [
            issue if issue.expression else Issue(issue.severity, issue.code, issue.diagnostics, culprit)
            for issue in error.issues
        ]) from None
    except Exception as error:  # a client's value must not become a 5xx
        culprit = _culprit(definitions, res_type, criteria)
        if culprit is None:
            raise
        raise FhirError.of(400, "invalid", f"The value of {culprit} cannot be interpreted", culprit) from error


def _culprit(definitions: Definitions, res_type: str, criteria: list[Criterion]) -> str | None:
    for criterion in criteria:
        try:
            build_where(definitions, res_type, [criterion])
        except Exception:  # noqa: BLE001
            return criterion.name + (f":{criterion.modifier}" if criterion.modifier else "")
    return None


def _compartment_condition(comp_type: str, comp_id: str, members: dict[str, list[str]]) -> tuple[str, list]:
    """Resources whose listed reference parameters point to comp_type/comp_id, and the
    compartment's own resource: one IN over a UNION, so the planner drives the search from
    the reference index (an OR of two INs would scan `resource`)."""
    groups, params = [], []
    for res_type, listed in sorted(members.items()):
        names = [n for n in listed if n != "{def}"]  # {def}: the compartment's own resource
        if names:
            groups.append(f"(x.res_type = ? AND x.param IN ({', '.join('?' * len(names))}))")
            params += [res_type, *names]
    branches = []
    if groups:
        branches.append(
            "SELECT x.rid FROM idx_reference x WHERE x.target_type = ? AND x.target_id = ? "
            f"AND ({' OR '.join(groups)})"
        )
        params = [comp_type, comp_id, *params]
    if comp_type in members:
        # current and undeleted like index rows, so the branches together yield only matches
        branches.append("SELECT c.rid FROM resource c WHERE c.res_type = ? AND c.res_id = ? AND c.deleted = ?")
        params += [comp_type, comp_id, False]
    if not branches:
        return "1 = 0", []
    return f"r.rid IN ({' UNION '.join(branches)})", params


def stored_types(recorder: Recorder) -> set[str]:
    """The resource types present in the store (a loose index scan: one probe per type)."""
    rows = recorder.rows(
        "types",
        "WITH RECURSIVE t(res_type) AS (SELECT MIN(res_type) FROM resource UNION ALL "
        "SELECT (SELECT MIN(res_type) FROM resource WHERE res_type > t.res_type) FROM t WHERE t.res_type IS NOT NULL) "
        "SELECT res_type FROM t WHERE res_type IS NOT NULL",
        [],
    )
    return {row[0] for row in rows}


# -- the page -----------------------------------------------------------------------------------

def _matches(matching: Matching, rows: bool = True) -> Condition:
    """`FROM` and `WHERE` giving the matches as `r`: from the rids the index rows select where
    they answer (no scan of `resource`), else from `resource` by the condition. `rows=False`:
    only `r.rid` is read, so index-only matches need not join `resource` at all."""
    if not matching.selects:
        return f"resource r WHERE {matching.where}", matching.params
    rids, params = intersect_rids(matching.selects, probed=matching.probed)
    if not rows and not matching.others:
        return f"({rids}) r", params
    where = " AND ".join(["r.res_type = ? AND r.deleted = ?", *(sql for sql, _ in matching.others)])
    others = [matching.res_type, False, *(p for _, values in matching.others for p in values)]
    return f"({rids}) m JOIN resource r ON r.rid = m.rid WHERE {where}", [*params, *others]


def _page(
    recorder: Recorder, plan: SearchPlan, matching: Matching, distinct: bool = False,
) -> tuple[list[Version], list[int], Cursor | None, Cursor | None]:
    keys = plan.sort
    cursor = plan.cursor
    forward = cursor is None or cursor.forward
    reverse = not forward
    # one criterion: its index rows in rid order, repeats and all (see below)
    repeats = not keys and not distinct and len(matching.selects) == 1 and not matching.others and not plan.offset
    window_rows = 2 * (plan.count + 1)
    limit = " LIMIT ?" + (" OFFSET ?" if plan.offset else "")
    limit_params = [plan.count + 1, *([plan.offset] if plan.offset else [])]

    def order(alias: str, reverse: bool) -> str:
        terms = []
        for i, key in enumerate(keys):
            descending = key.descending != reverse
            terms.append(f"{alias}.k{i} {'DESC' if descending else 'ASC'} NULLS {'FIRST' if reverse else 'LAST'}")
        terms.append(f"{alias}.rid {'DESC' if reverse else 'ASC'}")
        return ", ".join(terms)

    head = ""
    if not keys and matching.selects:
        # Driven from the index rows in rid order: the page reads `_count` + 1 rids from the
        # index and joins only those to `resource`, whatever the number of matches.
        # The cursor's bound is repeated on `r.rid`: the planners do not carry a range across
        # the join, and a merge join would otherwise walk `resource` from its first row.
        bound, bound_params = keyset_condition([], cursor, "q.rid") if cursor is not None else ("", [])
        if repeats:
            # One criterion: a window of its first 2 × (`_count` + 1) index rows, repeats and
            # all, grouped by rid: a range's rows (dates, string prefixes) are then a bounded
            # top-N sort, not a DISTINCT over every one of them. Each rid comes with its rows
            # in the window, which tells a window too full of repeats to fill the page.
            first, first_params = matching.selects[0]
            window = f"SELECT q.rid FROM ({first}) q{' WHERE ' + bound if bound else ''} ORDER BY {order('q', reverse)} LIMIT ?"
            rids = f"SELECT q.rid, COUNT(*) AS repeats FROM ({window}) q GROUP BY q.rid"
            rid_params = [*first_params, *bound_params, window_rows]
        else:
            rids, rid_params = intersect_rids(matching.selects, bound, bound_params, matching.probed)
        if not matching.others:
            # the limit inside: SQLite materialises a DISTINCT subquery before joining it
            rids += f" ORDER BY {order('q', reverse)}{limit}"
            rid_params += limit_params
            limit, limit_params = "", []
        conditions = [("r.res_type = ? AND r.deleted = ?", [matching.res_type, False])] if matching.others else []
        conditions += matching.others
        if cursor is not None:
            conditions.append(keyset_condition([], cursor, "r.rid"))
        where = " AND ".join(sql for sql, _ in conditions)
        page = (
            f"SELECT r.rid, r.res_type, r.res_id, r.version{', q.repeats' if repeats else ''} FROM ({rids}) q "
            "JOIN resource r ON r.rid = q.rid"
            f"{' WHERE ' + where if where else ''} ORDER BY {order('q', reverse)}{limit}"
        )
        sql_params = [*rid_params, *(p for _, values in conditions for p in values), *limit_params]
    else:
        key_columns = [f"q.k{i}" for i in range(len(keys))]
        select_keys = "".join(f", {key.expression} AS k{i}" for i, key in enumerate(keys))
        key_params = [p for key in keys for p in key.params]
        source, source_params = _matches(matching, any(key.reads_resource for key in keys))
        inner = f"SELECT r.rid{select_keys} FROM {source}"
        sql_params = [*key_params, *source_params]
        middle_where = ""
        if cursor is not None:
            condition, values = keyset_condition(
                [(column, key.descending) for column, key in zip(key_columns, keys)], cursor, "q.rid"
            )
            middle_where = f" WHERE {condition}"
            sql_params += values
        sql_params += limit_params
        mid_keys = "".join(f", q.k{i}" for i in range(len(keys)))
        # With sort keys, q is a MATERIALIZED CTE: each key subquery then runs once per match;
        # inlined, the planners copy it into every term of the keyset condition. Only the
        # page's rows are then joined to `resource`.
        head, source = (f"WITH q AS MATERIALIZED ({inner}) ", "q") if keys else ("", f"({inner}) q")
        top = f"SELECT q.rid{mid_keys} FROM {source}{middle_where} ORDER BY {order('q', reverse)}{limit}"
        top_keys = "".join(f", t.k{i}" for i in range(len(keys)))
        page = f"SELECT t.rid, r.res_type, r.res_id, r.version{top_keys} FROM ({top}) t JOIN resource r ON r.rid = t.rid"
    out_keys = "".join(f", p.k{i}" for i in range(len(keys)))
    sql = (
        f"{head}SELECT p.rid, {_CONTENT_COLUMNS}{out_keys}{', p.repeats' if repeats else ''} FROM ({page}"
        ") p JOIN resource_version v ON v.res_type = p.res_type AND v.res_id = p.res_id AND v.version = p.version "
        f"ORDER BY {order('p', reverse)}"
    )
    rows = recorder.rows("page", sql, sql_params, for_values=matching.ranged)
    if repeats:
        read = sum(row[-1] for row in rows)  # all of the window's rows when the page is short
        rows = [row[:-1] for row in rows]
        if len(rows) <= plan.count and read == window_rows:
            return _page(recorder, plan, matching, distinct=True)  # the window was too full of repeats
    more = len(rows) > plan.count
    rows = rows[: plan.count]
    if reverse:
        rows.reverse()
    versions = [Version.from_row(row[1:7]) for row in rows]
    rids = [row[0] for row in rows]

    def at(row: Any, forward_cursor: bool) -> Cursor:
        return Cursor(forward_cursor, tuple(row[7:]), row[0])

    next_cursor = previous_cursor = None
    if forward:
        if more:
            next_cursor = at(rows[-1], True)
        if cursor is not None or plan.offset:
            if rows:
                previous_cursor = at(rows[0], False)
            elif cursor is not None:
                previous_cursor = Cursor(False, cursor.keys, cursor.rid + 1)  # up to and including it
    else:
        if more:
            previous_cursor = at(rows[0], False)
        next_cursor = at(rows[-1], True) if rows else Cursor(True, cursor.keys, cursor.rid - 1)
    return versions, rids, next_cursor, previous_cursor


# -- snapshots of sorted results -----------------------------------------------------------------

def _fingerprint(plan: SearchPlan) -> str:
    return snapshot.fingerprint(plan.types, plan.criteria, plan.sort, plan.compartment, plan.viewer)


def _fills_more_than_a_page(recorder: Recorder, plan: SearchPlan, matching: Matching) -> bool:
    """Whether the matches go beyond the requested page: a count that stops there, cheaper
    than sorting them all to find out."""
    edge = plan.offset + plan.count
    return _count_up_to(recorder, "page-size", matching, edge + 1) > edge


def _make_snapshot(recorder: Recorder, plan: SearchPlan, matching: Matching) -> tuple[int, tuple[int, bool]]:
    """Store a snapshot of the search holding its first chunk: (snapshot, its header)."""
    return snapshot.create(recorder, _fingerprint(plan), *_next_chunk(recorder, plan, matching, None, 0))


def _next_chunk(
    recorder: Recorder, plan: SearchPlan, matching: Matching, stored: int | None, size: int,
) -> tuple[int, str | list[int], list]:
    """The next chunk of a snapshot of `size` entries: its size and the first of the matches
    the snapshot does not hold, in order: their rids read off the sort parameter's index
    (`ficus.search.ordered`) where that finds them, else the SQL numbering them. The LIMIT
    right above the sort makes it a bounded one (PostgreSQL's top-N heapsort), and only those
    rows are numbered and written."""
    keys = plan.sort
    chunk = snapshot.chunk_after(size)
    if len(keys) == 1 and keys[0].index is not None and matching.res_type is not None:
        pkey = param_key(matching.res_type, keys[0].name)
        span = _walk_span(recorder, plan, matching, keys[0], pkey)
        if span is not None and span.alone:
            return chunk, ordered.rows_meeting(recorder, keys[0], pkey, span, _own_conditions(plan, keys[0]), stored, chunk), []
        budget = None if span is None else _walk_budget(recorder, plan, matching, keys[0], pkey, span, chunk, size)
        if span is not None and budget is not None:
            matches = matching.rids()
            found = ordered.first_matches(recorder, keys[0], pkey, span, matches, stored, chunk, size, budget)
            if found is not None:
                return chunk, found, []
    select_keys = "".join(f", {key.expression} AS k{i}" for i, key in enumerate(keys))

    def order(alias: str) -> str:
        terms = [f"{alias}.k{i} {'DESC' if key.descending else 'ASC'} NULLS LAST" for i, key in enumerate(keys)]
        return ", ".join([*terms, f"{alias}.rid ASC"])

    source, source_params = _matches(matching, any(key.reads_resource for key in keys))
    params = [*(p for key in keys for p in key.params), *source_params]
    held = ""
    if size:
        held = " WHERE m.rid NOT IN (SELECT e.rid FROM search_snapshot_entry e WHERE e.snapshot = ?)"
        params.append(stored)
    first = f"SELECT m.* FROM (SELECT r.rid{select_keys} FROM {source}) m{held} ORDER BY {order('m')} LIMIT ?"
    numbered = f"SELECT f.rid, ROW_NUMBER() OVER (ORDER BY {order('f')}) AS position FROM ({first}) f"
    return chunk, numbered, [*params, chunk]


def _walk_span(recorder: Recorder, plan: SearchPlan, matching: Matching, key: SortKey, pkey: int) -> ordered.Span | None:
    """The part of the sort key's index a walk reads, or None when a walk does not suit the
    criteria on the sort parameter itself. Those put their matches together in the order, not
    spread over it: a walk suits them where they begin at the first rows (`ge` a date, sorted
    descending), where it can start at their first row (a month; only when no resource has
    more than one row of the parameter), or where they begin about a known row (`le` a date,
    sorted descending: rows after it match only if they reach across it); and it stops past
    their last (`date.walk_bounds`). When they are the only criteria and no resource has more
    than one row, the rows that meet them are the matches (`Span.alone`)."""
    own = [criterion for criterion in plan.criteria if criterion.name == key.name and criterion.value]
    if not own:
        return ordered.Span()
    if key.index is None or key.index[0] != "idx_date" or any(criterion.modifier for criterion in own):
        return None
    bounds = [walk_bounds(criterion.value, key.descending) for criterion in own]
    first, last = (min, max) if key.descending else (max, min)  # the narrowest of each
    starts = [start for _, start, _, _ in bounds if start is not None]
    stops = [stop for _, _, _, stop in bounds if stop is not None]
    stop = last(stops) if stops else None
    alone = all(criterion in own for criterion in plan.criteria if criterion.value) and plan.compartment is None
    single = (bool(starts) or alone) and (key.name in matching.one_row or not _repeated(recorder, plan, pkey))
    start = first(starts) if starts and single else None
    if alone and single:
        return ordered.Span(start, stop, alone=True)
    if not all(leading or approach is not None for leading, _, approach, _ in bounds):
        return None
    approaches = [approach for leading, _, approach, _ in bounds if not leading]
    approach = first(approaches) if approaches else None
    return ordered.Span(start, stop, None if approach == start else approach)


def _own_conditions(plan: SearchPlan, key: SortKey) -> list[Condition]:
    """The criteria on the sort parameter (dates: `_walk_span`) as conditions on the index row
    `x`, each the OR of its values (an empty one is no criterion)."""
    conditions = []
    for criterion in plan.criteria:
        if criterion.name == key.name and criterion.value:
            parts = [date_condition("x.low", "x.high", value, criterion.name) for value in split_values(criterion.value)]
            conditions.append((" OR ".join(sql for sql, _ in parts), [p for _, values in parts for p in values]))
    return conditions


def _repeated(recorder: Recorder, plan: SearchPlan, pkey: int) -> bool:
    """Whether some resource has more than one index row of the parameter `pkey`."""
    if pkey in plan.repeated:
        return True
    return bool(recorder.rows("repeated", "SELECT COUNT(*) FROM search_repeated_key WHERE pkey = ?", [pkey])[0][0])


def _walk_budget(
    recorder: Recorder, plan: SearchPlan, matching: Matching, key: SortKey, pkey: int, span: ordered.Span,
    chunk: int, size: int,
) -> ordered.Budget | None:
    """How a walk of `span` of the sort key's index may look for the chunk, or None to sort.
    PostgreSQL weighs it from the count (the one the total needs; without a total, `_sized`)
    and the planner's estimate of the index rows walked that meet the criteria on the sort
    parameter (the matches lie among those). SQLite always tries a walk of
    `ordered.SCAN_PER_MATCH` rows per match."""
    if recorder.dialect != "postgresql":
        return ordered.unestimated(chunk, size)
    conditions = _own_conditions(plan, key)
    count = _count_matches(recorder, plan, matching) if plan.total != "none" else _sized(recorder, matching)
    indexed = _planned_rows(recorder, *ordered.indexed(key, pkey, span, conditions))
    before = 0
    if span.approach is not None:  # the rows the walk reads before it nears the matches
        ahead = f"x.{key.index[1]} {'>' if key.descending else '<'} ?"
        before = _planned_rows(recorder, *ordered.indexed(key, pkey, span, [(ahead, [span.approach])]))
    return ordered.walk_budget(count, indexed, chunk, size, before)


def _snapshot_rows(
    recorder: Recorder, plan: SearchPlan, matching: Matching, stored: int, made: tuple[int, bool] | None,
) -> tuple[list, tuple[int, bool]] | None:
    """The rows of a page of a snapshot and its header (entries stored, complete; `made` when
    this page stored it). A forward page that reaches past the stored entries of an incomplete
    snapshot first appends the next chunks; None when that takes a write transaction
    (`plan.snapshot` is "ask")."""
    size, complete = made or snapshot.header(recorder, stored, _fingerprint(plan))
    forward = plan.cursor is None or plan.cursor.forward
    while True:
        rows = _stored_rows(recorder, plan, stored)
        if complete or not forward or len(rows) > plan.count or plan.snapshot is False:
            return rows, (size, complete)
        if plan.snapshot == "ask":
            return None
        locked_size, complete = snapshot.lock(recorder, stored)
        if locked_size == size and not complete:  # else another page has just appended one
            locked_size, complete = snapshot.append(recorder, stored, size, *_next_chunk(recorder, plan, matching, stored, size))
        size = locked_size


def _stored_rows(recorder: Recorder, plan: SearchPlan, stored: int) -> list:
    """Up to `_count` + 1 live entries of a snapshot after (or before) the cursor's position."""
    cursor = plan.cursor
    forward = cursor is None or cursor.forward
    params: list = [stored, False]
    bound = ""
    if plan.compartment is not None:
        # an entry moved out of the compartment since (an access token's patient, say) is left
        # out like a deleted one: a snapshot never shows what the search would not
        condition, values = _compartment_condition(*plan.compartment)
        bound += f" AND {condition}"
        params += values
    if cursor is not None:
        condition, values = keyset_condition([], cursor, "e.position")
        bound += f" AND {condition}"
        params += values
    params.append(plan.count + 1)
    if plan.offset and cursor is None:
        params.append(plan.offset)
    return recorder.rows(
        "page",
        f"SELECT e.position, r.rid, {_CONTENT_COLUMNS} FROM search_snapshot_entry e JOIN resource r ON r.rid = e.rid "
        "JOIN resource_version v ON v.res_type = r.res_type AND v.res_id = r.res_id AND v.version = r.version "
        f"WHERE e.snapshot = ? AND r.deleted = ?{bound} ORDER BY e.position {'ASC' if forward else 'DESC'} LIMIT ?"
        + (" OFFSET ?" if plan.offset and cursor is None else ""),
        params,
    )


def _snapshot_page(plan: SearchPlan, stored: int, rows: list) -> tuple[list[Version], list[int], Cursor | None, Cursor | None]:
    """The page of a snapshot's `rows` (read in the cursor's direction) and its links' cursors."""
    cursor = plan.cursor
    forward = cursor is None or cursor.forward
    more = len(rows) > plan.count
    rows = rows[: plan.count]
    if not forward:
        rows.reverse()

    def at(position: int, forward_cursor: bool) -> Cursor:
        return Cursor(forward_cursor, (), position, stored)

    next_cursor = previous_cursor = None
    if forward:
        if more:
            next_cursor = at(rows[-1][0], True)
        if rows and (cursor is not None or plan.offset):
            previous_cursor = at(rows[0][0], False)
        elif cursor is not None:
            previous_cursor = at(cursor.rid + 1, False)  # up to and including it
    else:
        if more:
            previous_cursor = at(rows[0][0], False)
        next_cursor = at(rows[-1][0], True) if rows else at(cursor.rid - 1, True)
    return [Version.from_row(row[2:8]) for row in rows], [row[1] for row in rows], next_cursor, previous_cursor


def _count_matches(recorder: Recorder, plan: SearchPlan, matching: Matching) -> int:
    """The total, counted from the index tables alone where they answer (see `match_rids`);
    `_total=estimate` on PostgreSQL counts up to `ESTIMATE_EXACT_BELOW`, then asks the planner,
    and counts them all if the planner's estimate is below what it has already counted. Counted
    once a search."""
    if matching.counted is None:
        matching.counted = _counted(recorder, matching, plan.total)
    return matching.counted


def _counted(recorder: Recorder, matching: Matching, total: str) -> int:
    if total == "estimate" and recorder.dialect == "postgresql":
        sized = _sized(recorder, matching)
        if sized != ESTIMATE_EXACT_BELOW:
            return sized
        # at least as many, and the planner estimates no more: it is wrong here (ranges of dates,
        # whose histogram is not per parameter, say), and a total known to be wrong is not given
    source, params = matching.rids()
    return recorder.rows("count", f"SELECT COUNT(*) FROM ({source}) c", params)[0][0]


def _sized(recorder: Recorder, matching: Matching) -> int:
    """About how many matches there are (PostgreSQL): counted up to `ESTIMATE_EXACT_BELOW`, and
    above that the larger of that and the planner's estimate."""
    capped = _count_up_to(recorder, "count", matching, ESTIMATE_EXACT_BELOW)
    if capped < ESTIMATE_EXACT_BELOW:
        return capped
    return max(capped, _planned_rows(recorder, *matching.rids()))


def _count_up_to(recorder: Recorder, purpose: str, matching: Matching, limit: int) -> int:
    """The number of matches, counting no further than `limit`. Matched by one criterion, it
    first counts that criterion's index rows up to `limit`, and the distinct rids among them:
    a DISTINCT under the LIMIT would hash every match before counting any (a date range's,
    say). Only when rows repeat in a full window are the distinct rids counted instead."""
    if len(matching.selects) == 1 and not matching.others:
        rows_sql, params = matching.selects[0]
        rows, distinct = recorder.rows(
            purpose, f"SELECT COUNT(*), COUNT(DISTINCT w.rid) FROM ({rows_sql} LIMIT ?) w", [*params, limit],
        )[0]
        if rows < limit or distinct == limit:
            return distinct
    source, params = matching.rids()
    return recorder.rows(purpose, f"SELECT COUNT(*) FROM ({source} LIMIT ?) c", [*params, limit])[0][0]


def _planned_rows(recorder: Recorder, sql: str, params: list) -> int:
    """PostgreSQL's estimate of the rows `sql` yields (0 when its plan cannot be read)."""
    plan_rows = recorder.rows("estimate", f"EXPLAIN (FORMAT JSON) {sql}", params)
    try:
        document = plan_rows[0][0]
        if isinstance(document, (str, bytes)):
            document = json.loads(document)
        return _estimated_rows(document[0]["Plan"])
    except (KeyError, IndexError, TypeError, ValueError):
        return 0


def _estimated_rows(node: dict) -> int:
    """The planner's row estimate for the matches. Its estimate for the DISTINCT step divides
    by how distinct rids are in the whole table; a resource rarely has two index rows for one
    searched value, so the estimate of the rows going into it is the better one."""
    children = node.get("Plans", [])
    if node.get("Node Type") in ("Aggregate", "Unique") and len(children) == 1:
        return int(children[0]["Plan Rows"])
    return int(node["Plan Rows"])


# -- includes -----------------------------------------------------------------------------------

def _includes(recorder: Recorder, specs: list[IncludeSpec], match_rids: list[int]) -> tuple[list[Version], bool]:
    seen = set(match_rids)
    sources = list(match_rids)
    included: list[Version] = []
    for level in range(MAX_LEVELS):
        active = specs if level == 0 else [s for s in specs if s.iterate]
        if not active or not sources:
            break
        ids, params = level_ids(active, sources)
        room = MAX_INCLUDED - len(included)
        rows = recorder.rows(
            f"include-{level}",
            f"SELECT r.rid, {_CONTENT_COLUMNS} FROM ({ids}) i CROSS JOIN resource r "
            "JOIN resource_version v ON v.res_type = r.res_type AND v.res_id = r.res_id AND v.version = r.version "
            "WHERE r.rid = i.rid AND r.deleted = ? ORDER BY r.rid LIMIT ?",
            [*params, False, room + len(seen) + 1],
        )
        sources = []
        for row in rows:
            if row[0] in seen:
                continue
            if len(included) >= MAX_INCLUDED:
                return included, True
            seen.add(row[0])
            sources.append(row[0])
            included.append(Version.from_row(row[1:]))
    return included, False
