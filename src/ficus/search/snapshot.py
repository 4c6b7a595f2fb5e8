"""Stored snapshots of sorted results: the first matches' row ids in sort order, kept for a while.

A sorted search whose matches fill more than one page writes its first `MAX_ENTRIES` matches
once (one INSERT ... SELECT of a bounded sort, in its own write transaction) and serves its
pages from there, by position: an entry whose sort value changes, or that stops matching, keeps
its place, so those pages neither skip nor repeat entries while others write. Pages show each
entry's current version; entries deleted since, or moved out of a searched compartment (an
access token's patient, say), are left out. A snapshot is tied to its search by a fingerprint
(a cursor cannot be replayed on another search, or by a caller confined to another
compartment) and expires after `LIFETIME_SECONDS` (410 after that).

A snapshot that holds fewer than `MAX_ENTRIES` entries holds every match, and its size is the
search's total. A full one is continued (`continues`): past its last entry, pages are keyset
pages (`ficus.search.paging`) over the matches it does not hold, in the sort order as it is
when each page is read, from the first of them; the total is then counted like that of any
search. So no stored entry is served twice, and past the stored entries the keyset rules hold:
a match is served once unless its sort value changes while those pages are read (it may then
be skipped or served again), and one created meanwhile is served if it sorts after the page
being read. A match the snapshot does not hold that sorts before its last entry by the time the
pages get there (created since, or its value changed) is not lost: it comes first after the
stored entries, so the order may step back there.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import TYPE_CHECKING

import msgspec

from ficus.fhirtime import now_micros
from ficus.outcome import FhirError

if TYPE_CHECKING:
    from ficus.search.execute import Recorder

LIFETIME_SECONDS = 1800
MAX_ENTRIES = 1_000  # stored per snapshot: a bounded sort and write, whatever the number of matches


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


def create(recorder: Recorder, ordered: str, params: list, search: str) -> tuple[int, int]:
    """Store the rids `ordered` (a `SELECT rid, position`, positions from 1 in order, at most
    `MAX_ENTRIES` of them) yields.

    Returns (snapshot id, number of entries): the size is read back, since the statements of a
    transaction may see different commits of others."""
    purge_expired(recorder)
    snapshot = secrets.randbits(62) + 1
    recorder.rows(
        "snapshot",
        f"INSERT INTO search_snapshot_entry (snapshot, position, rid) SELECT ?, o.position, o.rid FROM ({ordered}) o",
        [snapshot, *params],
        fetch=False,
    )
    total = recorder.rows(
        "snapshot-size", "SELECT MAX(position) FROM search_snapshot_entry WHERE snapshot = ?", [snapshot]
    )[0][0] or 0
    recorder.rows(
        "snapshot",
        "INSERT INTO search_snapshot (id, fingerprint, total, expires) VALUES (?, ?, ?, ?)",
        [snapshot, search, total, now_micros() + LIFETIME_SECONDS * 1_000_000],
        fetch=False,
    )
    return snapshot, total


def continues(size: int) -> bool:
    """Whether matches may follow the entries of a snapshot of `size` entries: it is full."""
    return size >= MAX_ENTRIES


def size(recorder: Recorder, snapshot: int, search: str) -> int:
    """The number of entries of a live snapshot made by this search; 410 once it has expired."""
    rows = recorder.rows(
        "snapshot-check", "SELECT fingerprint, total, expires FROM search_snapshot WHERE id = ?", [snapshot]
    )
    if not rows or rows[0][2] < now_micros():
        raise FhirError.of(410, "not-found", "The paging snapshot of this search has expired; run the search again", "_cursor")
    if rows[0][0] != search:
        raise FhirError.of(400, "invalid", "_cursor does not belong to this search", "_cursor")
    return rows[0][1]
