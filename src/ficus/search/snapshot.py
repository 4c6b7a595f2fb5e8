"""Stored snapshots of sorted results: the matches' row ids in sort order, stored a chunk at a
time as pages reach them, and kept for a while.

A sorted search whose matches fill more than one page stores its first `FIRST_CHUNK` matches
(found by a walk of the sort parameter's index, `ficus.search.ordered`, or a bounded sort; in
its own write transaction), and every page of the
search is served from the snapshot, by position. A forward page that reaches past the stored
entries of a snapshot that is not complete first appends the next chunk, in the write
transaction of that page: the first matches the snapshot does not hold, in the sort order as it
is then, numbered on after its last entry. Each chunk is twice as large as the one before (at
most `MAX_CHUNK`), so paging through n matches sorts them O(log n) times, and the first page
stays bounded. A chunk that comes back short held the last matches: the snapshot is then
complete (its header says so) and its size is the search's total; until then the total is
counted like that of any search. The header row is locked while a chunk is appended (`lock`)
and the size checked again, so two clients paging the same snapshot at once never both append
one.

So, while others write:

- no entry is served twice: a chunk only holds matches the snapshot does not hold yet;
- a stored entry keeps its place whatever its sort value does since; pages show its current
  version, and leave it out if it has been deleted or moved out of a searched compartment (an
  access token's patient, say);
- no resource that matches when a chunk is stored and was not stored before is skipped: it is
  in that chunk or a later one, and a complete snapshot held every match when its last chunk
  was stored (a resource created after that is not shown; one that matches only between two
  chunks may be missed);
- a resource created, or whose sort value changes, after the part of the order where it now
  sorts was stored is served in a later chunk, as it sorts then: one that sorts before the last
  stored entry comes first in the next chunk. Pages follow the order as it was when each chunk
  was stored, so at the start of a chunk the order may step back; nowhere else.

A snapshot is tied to its search by a fingerprint (a cursor cannot be replayed on another
search, or by a caller confined to another compartment) and expires `LIFETIME_SECONDS` after
its first page (410 after that).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import TYPE_CHECKING

import msgspec

from ficus.fhirtime import now_micros
from ficus.outcome import FhirError

if TYPE_CHECKING:
    from ficus.search.execute import Recorder

LIFETIME_SECONDS = 1800
FIRST_CHUNK = 128  # entries stored by a search's first page: a few pages, a bounded walk or sort
MAX_CHUNK = 100_000  # the most entries one page stores


def fingerprint(types: list[str] | None, criteria: list, sort: list, compartment: tuple | None, viewer: tuple = ()) -> str:
    """What makes two searches return the same ordered matches (`viewer`: whom the policy
    confines the search for)."""
    text = msgspec.json.encode([
        list(viewer),
        types,
        [[c.name, c.modifier, c.value] for c in criteria],
        [[k.name, k.descending] for k in sort],
        [compartment[0], compartment[1], sorted(compartment[2].items())] if compartment else None,
    ])
    return hashlib.sha256(text).hexdigest()


def purge_expired(recorder: Recorder) -> None:
    """Remove the snapshots that have expired (what the last `LIFETIME_SECONDS` left behind)."""
    now = now_micros()
    recorder.rows(
        "snapshot-purge",
        "DELETE FROM search_snapshot_entry WHERE snapshot IN (SELECT s.id FROM search_snapshot s WHERE s.expires < ?)",
        [now],
        fetch=False,
    )
    recorder.rows("snapshot-purge", "DELETE FROM search_snapshot WHERE expires < ?", [now], fetch=False)


def create(recorder: Recorder, search: str, chunk: int, ordered: str | list[int], params: list) -> tuple[int, tuple[int, bool]]:
    """Store a new snapshot of this search holding the rids `ordered` yields (see `_store`),
    after removing the expired ones. Returns (snapshot id, (entries stored, complete))."""
    purge_expired(recorder)
    snapshot = secrets.randbits(62) + 1
    stored, complete = _store(recorder, snapshot, 0, chunk, ordered, params)
    recorder.rows(
        "snapshot",
        "INSERT INTO search_snapshot (id, fingerprint, total, complete, expires) VALUES (?, ?, ?, ?, ?)",
        [snapshot, search, stored, complete, now_micros() + LIFETIME_SECONDS * 1_000_000],
        fetch=False,
    )
    return snapshot, (stored, complete)


def chunk_after(size: int) -> int:
    """How many entries the chunk after the first `size` ones holds: twice the one before."""
    return min(size + FIRST_CHUNK, MAX_CHUNK)


def append(recorder: Recorder, snapshot: int, size: int, chunk: int, ordered: str | list[int], params: list) -> tuple[int, bool]:
    """Store the rids `ordered` yields after the `size` entries of a snapshot whose header the
    caller has `lock`ed and found of that size. Returns (entries stored, complete)."""
    stored, complete = _store(recorder, snapshot, size, chunk, ordered, params)
    recorder.rows(
        "snapshot", "UPDATE search_snapshot SET total = ?, complete = ? WHERE id = ?", [stored, complete, snapshot], fetch=False,
    )
    return stored, complete


def _store(recorder: Recorder, snapshot: int, size: int, chunk: int, ordered: str | list[int], params: list) -> tuple[int, bool]:
    """Store the rids `ordered` holds, or yields (a `SELECT rid, position`, positions from 1 in
    order), at most `chunk` of them, numbered on after `size`. The size of a SELECT's chunk is
    read back, since the statements of a transaction may see different commits of others; a
    chunk that comes back short held the last matches (the snapshot is complete)."""
    if isinstance(ordered, list):
        # the rids as one parameter: a statement with a parameter per value costs more to run
        source, values = (
            ("unnest(?::bigint[]) WITH ORDINALITY o(rid, position)", ordered)
            if recorder.dialect == "postgresql"
            else ("(SELECT j.value AS rid, j.key + 1 AS position FROM json_each(?) j) o", json.dumps(ordered))
        )
        recorder.rows(
            "snapshot",
            f"INSERT INTO search_snapshot_entry (snapshot, position, rid) SELECT ?, ? + o.position, o.rid FROM {source}",
            [snapshot, size, values],
            fetch=False,
        )
        return size + len(ordered), len(ordered) < chunk
    recorder.rows(
        "snapshot",
        f"INSERT INTO search_snapshot_entry (snapshot, position, rid) SELECT ?, ? + o.position, o.rid FROM ({ordered}) o",
        [snapshot, size, *params],
        fetch=False,
    )
    stored = recorder.rows(
        "snapshot-size", "SELECT MAX(position) FROM search_snapshot_entry WHERE snapshot = ?", [snapshot]
    )[0][0] or 0
    return stored, stored - size < chunk


def header(recorder: Recorder, snapshot: int, search: str) -> tuple[int, bool]:
    """(entries stored, complete) of a live snapshot made by this search; 410 once it has expired."""
    rows = recorder.rows(
        "snapshot-check", "SELECT fingerprint, total, complete, expires FROM search_snapshot WHERE id = ?", [snapshot]
    )
    if not rows or rows[0][3] < now_micros():
        raise _expired()
    if rows[0][0] != search:
        raise FhirError.of(400, "invalid", "_cursor does not belong to this search", "_cursor")
    return rows[0][1], bool(rows[0][2])


def lock(recorder: Recorder, snapshot: int) -> tuple[int, bool]:
    """(entries stored, complete) of a snapshot, its header locked until the transaction ends
    (PostgreSQL; SQLite has one writer anyway), so that two pages never append to it at once."""
    rows = recorder.rows(
        "snapshot-lock",
        "SELECT total, complete FROM search_snapshot WHERE id = ?" + (" FOR UPDATE" if recorder.dialect == "postgresql" else ""),
        [snapshot],
    )
    if not rows:
        raise _expired()  # removed since it was checked
    return rows[0][0], bool(rows[0][1])


def _expired() -> FhirError:
    return FhirError.of(410, "not-found", "The paging snapshot of this search has expired; run the search again", "_cursor")
