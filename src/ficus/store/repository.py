"""The repository: versioned resources, history, index rows and the outbox, one transaction each.

Reads return the stored JSON bytes untouched. Every write goes through `Writer`, which bumps
the version, stamps `meta`, stores the exact text, refreshes the index rows and appends an
outbox event, all inside the caller's database transaction.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ficus import fhirjson
from ficus.fhirtime import format_instant, now_micros
from ficus.outcome import FhirError
from ficus.spec import Definitions
from ficus.store.database import Cursor, Database
from ficus.store.indexing import (
    INDEX_ROW_COLUMNS,
    INDEX_TABLES,
    IndexExtractor,
    repeated_keys,
    search_parameter_from_resource,
    with_stored_parameters,
)

_VERSION_COLUMNS = "res_type, res_id, version, last_updated, method, content"
_RESOURCE_COLUMNS = ("rid", "res_type", "res_id", "version", "last_updated", "deleted")
_STORED_VERSION_COLUMNS = ("rid", "res_type", "res_id", "version", "last_updated", "method", "content")
_OUTBOX_COLUMNS = ("rid", "res_type", "res_id", "version", "action", "created")
_LATEST_VERSION = (
    f"SELECT {_VERSION_COLUMNS} FROM resource_version WHERE res_type = ? AND res_id = ? ORDER BY version DESC LIMIT 1"
)
_GIVEN_VERSION = f"SELECT {_VERSION_COLUMNS} FROM resource_version WHERE res_type = ? AND res_id = ? AND version = ?"
_CURRENT_VERSION = "v.res_type = r.res_type AND v.res_id = r.res_id AND v.version = r.version"


@dataclass(frozen=True)
class Version:
    """One stored version of a resource; `content` is None for a deletion."""

    res_type: str
    res_id: str
    version: int
    last_updated: int
    method: str
    content: bytes | None

    @property
    def deleted(self) -> bool:
        return self.content is None

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'

    @classmethod
    def from_row(cls, row: Any) -> Version:
        res_type, res_id, version, last_updated, method, content = row
        return cls(res_type, res_id, version, last_updated, method, bytes(content) if content is not None else None)


@dataclass(frozen=True)
class Head:
    """The current state of a logical resource, as locked by a writer."""

    rid: int
    version: int
    deleted: bool


_GENERATION = itertools.count(1)


class Repository:
    """Versioned FHIR storage on one `Database`."""

    def __init__(self, database: Database, definitions: Definitions, base_url: str | None = None) -> None:
        self.database = database
        self.definitions = with_stored_parameters(definitions)  # R4 plus stored SearchParameters
        self.extractor = IndexExtractor(self.definitions, base_url)
        self.load_search_parameters()
        # committed transactions that wrote each resource type, in this process: caches of what is
        # derived from stored resources (the terminology service's) compare these
        self.generations: dict[str, int] = {}
        self.known_repeated: set[int] = set()  # keys in `search_repeated_key`, as far as this process has seen

    @contextmanager
    def reading(self, tx: Cursor | None = None) -> Iterator[Cursor]:
        """The open transaction `tx` when given, else a new read-only one."""
        if tx is not None:
            yield tx
        else:
            with self.database.session() as opened:
                yield opened

    def read(self, res_type: str, res_id: str, tx: Cursor | None = None) -> Version:
        """The current version; 404 if it never existed, 410 if its latest version is a deletion."""
        with self.reading(tx) as tx:
            return current_version(_fetch_version(tx, _LATEST_VERSION, (res_type, res_id)), res_type, res_id)

    def vread(self, res_type: str, res_id: str, version: int, tx: Cursor | None = None) -> Version:
        with self.reading(tx) as tx:
            found = _fetch_version(tx, _GIVEN_VERSION, (res_type, res_id, version))
        return given_version(found, res_type, res_id, version)

    def history(
        self,
        res_type: str | None = None,
        res_id: str | None = None,
        since: int | None = None,
        before: int | None = None,
        count: int = 50,
        offset: int = 0,
        tx: Cursor | None = None,
        within: tuple[str, list] | None = None,
    ) -> tuple[list[Version], int]:
        """Versions newest first, with the total number matching the filters; `within`, a
        condition on `resource r`, keeps the versions of the resources it selects."""
        conditions, params = [], []
        for column, value in (("res_type", res_type), ("res_id", res_id)):
            if value is not None:
                conditions.append(f"{column} = ?")
                params.append(value)
        if within is not None:
            conditions.append(f"rid IN (SELECT r.rid FROM resource r WHERE {within[0]})")
            params += within[1]
        if since is not None:
            conditions.append("last_updated >= ?")
            params.append(since)
        if before is not None:
            conditions.append("last_updated < ?")
            params.append(before)
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        with self.reading(tx) as tx:
            total = tx.execute(f"SELECT COUNT(*) FROM resource_version {where}", params).fetchone()[0]
            rows = tx.execute(
                f"SELECT {_VERSION_COLUMNS} FROM resource_version {where} "
                "ORDER BY last_updated DESC, seq DESC LIMIT ? OFFSET ?",
                (*params, count, offset),
            ).fetchall()
        return [Version.from_row(row) for row in rows], total

    def load_search_parameters(self, tx: Cursor | None = None) -> int:
        """Take up the active SearchParameter resources stored here (done at start and by
        `reindex`); returns how many there are. Resources written before are not indexed for
        them until `reindex` runs."""
        with self.reading(tx) as opened:
            rows = opened.execute(
                f"SELECT v.content FROM resource r JOIN resource_version v ON {_CURRENT_VERSION} "
                "WHERE r.res_type = ? AND r.deleted = ?",
                ("SearchParameter", False),
            ).fetchall()
        params = []
        for (content,) in rows:
            param = search_parameter_from_resource(fhirjson.decode(bytes(content)))
            if param is not None:
                params.append(param)
        self.definitions.use_stored(params)
        return len(params)

    def reindex(self, res_type: str | None = None, batch: int = 500, progress: Any = None) -> int:
        """Rebuild the index rows of every current resource (of `res_type`) with the current
        SearchParameters, stored ones included, one transaction per `batch` resources.
        `progress(done)` is called after each batch. Returns the number of resources reindexed."""
        self.load_search_parameters()
        lock = " FOR UPDATE OF r" if self.database.dialect == "postgresql" else ""
        type_filter = " AND r.res_type = ?" if res_type else ""
        done, after = 0, 0
        while True:
            with self.database.session(write=True) as tx:
                rows = tx.execute(
                    f"SELECT r.rid, r.res_type, v.content FROM resource r JOIN resource_version v ON {_CURRENT_VERSION} "
                    f"WHERE r.rid > ? AND r.deleted = ?{type_filter} ORDER BY r.rid LIMIT ?{lock}",
                    (after, False, *([res_type] if res_type else []), batch),
                ).fetchall()
                if not rows:
                    return done
                rids = [row[0] for row in rows]
                marks = ", ".join("?" * len(rids))
                inserts: dict[str, list[tuple]] = {table: [] for table in INDEX_TABLES}
                repeated: set[int] = set()
                for rid, row_type, content in rows:
                    resource = fhirjson.decode(bytes(content))
                    extracted = self.extractor.rows(row_type, resource)
                    for table, index_rows in extracted.items():
                        inserts[table].extend((rid, row_type, *row) for row in index_rows)
                    repeated |= repeated_keys(extracted)
                for table in INDEX_TABLES:
                    tx.execute(f"DELETE FROM idx_{table} WHERE rid IN ({marks})", rids)
                    if inserts[table]:
                        self.database.insert_many(tx, f"idx_{table}", INDEX_ROW_COLUMNS[table], inserts[table])
                _record_repeated(tx, repeated)
            done += len(rows)
            after = rids[-1]
            if progress is not None:
                progress(done)

    @contextmanager
    def transaction(self) -> Iterator[Writer]:
        """One atomic unit of writes (and the reads they depend on)."""
        with self.database.session(write=True) as tx:
            writer = Writer(self, tx)
            yield writer
            writer.flush()
            _record_repeated(tx, writer.repeated)  # last: see `_record_repeated`
        self.known_repeated |= writer.repeated
        for res_type in writer.written_types:
            self.generations[res_type] = next(_GENERATION)


class Writer:
    """Writes inside one open database transaction.

    Inserts are buffered and sent with one `executemany` per statement when the transaction
    ends or before anything reads through `tx`, so a Bundle of creates costs a few round trips
    instead of several per resource. Every version it writes shares one `lastUpdated`.
    """

    def __init__(self, repository: Repository, tx: Cursor) -> None:
        self.repository = repository
        self._tx = tx
        self._pending: dict[tuple[str, tuple[str, ...]], list[tuple]] = {}
        self.repeated: set[int] = set()  # new keys for `search_repeated_key`, written as the transaction ends
        self._rids: list[int] = []
        self.written_types: set[str] = set()
        self._now: tuple[int, str] | None = None
        self._for_update = " FOR UPDATE" if repository.database.dialect == "postgresql" else ""

    @property
    def tx(self) -> Cursor:
        """The transaction's cursor, with every buffered write applied (for reads)."""
        self.flush()
        return self._tx

    def flush(self) -> None:
        pending, self._pending = self._pending, {}
        for (table, columns), rows in pending.items():
            self.repository.database.insert_many(self._tx, table, columns, rows)

    def reserve_rids(self, count: int) -> None:
        """Allocate row ids for `count` coming creates in one round trip."""
        if count > 0:
            self._rids.extend(self.repository.database.allocate_rids(self._tx, count))

    def _buffer(self, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        self._pending.setdefault((table, columns), []).extend(rows)

    def lock(self, key: str) -> None:
        """Hold a lock on `key` until this transaction ends (used by conditional writes)."""
        self.repository.database.lock(self.tx, key)

    def head(self, res_type: str, res_id: str) -> Head | None:
        row = self.tx.execute(
            f"SELECT rid, version, deleted FROM resource WHERE res_type = ? AND res_id = ?{self._for_update}",
            (res_type, res_id),
        ).fetchone()
        return Head(row[0], row[1], bool(row[2])) if row else None

    def read_current(self, res_type: str, res_id: str) -> Version | None:
        found = _fetch_version(self.tx, _LATEST_VERSION, (res_type, res_id))
        return None if found is None or found.deleted else found

    def create(self, resource: dict, res_id: str) -> Version:
        """Store a new resource under `res_id` (the caller picks the id)."""
        return self._store(resource["resourceType"], res_id, None, resource, "POST")

    def update(self, res_type: str, res_id: str, resource: dict, if_match: int | None = None) -> tuple[Version, bool]:
        """Store a new version (or the first one: update as create). Returns (version, created)."""
        head = self.head(res_type, res_id)
        if head is None:
            self.lock(f"{res_type}/{res_id}")  # two updates-as-create of one new id serialise here
            head = self.head(res_type, res_id)
        current = None if head is None or head.deleted else head.version
        if if_match is not None and current != if_match:
            raise FhirError.of(
                412, "conflict",
                f"If-Match expected version {if_match} of {res_type}/{res_id}, the current one is {current or 'absent'}",
            )
        created = head is None or head.deleted
        return self._store(res_type, res_id, head, resource, "PUT"), created

    def delete(self, res_type: str, res_id: str, if_match: int | None = None) -> Version | None:
        """Record a deletion; None when there is nothing current to delete."""
        head = self.head(res_type, res_id)
        if if_match is not None and (head is None or head.deleted or head.version != if_match):
            raise FhirError.of(412, "conflict", f"If-Match does not match the current version of {res_type}/{res_id}")
        if head is None or head.deleted:
            return None
        return self._store(res_type, res_id, head, None, "DELETE")

    def _timestamp(self) -> tuple[int, str]:
        """The transaction's one `lastUpdated` (microseconds, and as an instant), taken at its first write."""
        if self._now is None:
            now = now_micros()
            self._now = now, format_instant(now)
        return self._now

    def _store(self, res_type: str, res_id: str, head: Head | None, resource: dict | None, method: str) -> Version:
        self.written_types.add(res_type)
        version = head.version + 1 if head else 1
        now, instant = self._timestamp()
        content = None
        if resource is not None:
            content = fhirjson.encode(_stamped(resource, res_id, version, instant))
        if head is None:
            if not self._rids:
                self.reserve_rids(1)
            rid = self._rids.pop()
            self._buffer("resource", _RESOURCE_COLUMNS, [(rid, res_type, res_id, version, now, content is None)])
        else:
            rid = head.rid
            self._tx.execute(
                "UPDATE resource SET version = ?, last_updated = ?, deleted = ? WHERE rid = ?",
                (version, now, content is None, rid),
            )
            if not head.deleted:
                for table in INDEX_TABLES:
                    self._tx.execute(f"DELETE FROM idx_{table} WHERE rid = ?", (rid,))
        self._buffer("resource_version", _STORED_VERSION_COLUMNS, [(rid, res_type, res_id, version, now, method, content)])
        if resource is not None:
            extracted = self.repository.extractor.rows(res_type, resource)
            for table, rows in extracted.items():
                if rows:
                    self._buffer(f"idx_{table}", INDEX_ROW_COLUMNS[table], [(rid, res_type, *row) for row in rows])
            repeated = repeated_keys(extracted)
            if repeated:
                self.repeated |= repeated - self.repository.known_repeated
        self._buffer("outbox", _OUTBOX_COLUMNS, [(rid, res_type, res_id, version, method, now)])
        return Version(res_type, res_id, version, now, method, content)


def _record_repeated(tx: Cursor, keys: set[int]) -> None:
    """Add `keys` to `search_repeated_key` (see its migration), in the transaction that writes
    the rows. A new key is locked until that transaction commits, so it is written last, the
    keys in order: two transactions that add the same keys then wait for each other at most
    once, and never each for the other. (Searches inside the transaction see its keys in
    `Writer.repeated` until then.)"""
    if keys:
        tx.executemany(
            "INSERT INTO search_repeated_key (pkey) VALUES (?) ON CONFLICT (pkey) DO NOTHING", [(key,) for key in sorted(keys)],
        )


def current_version(found: Version | None, res_type: str, res_id: str) -> Version:
    """The latest version `found` for a read: 404 if there is none, 410 if it is a deletion."""
    if found is None:
        raise FhirError.of(404, "not-found", f"{res_type}/{res_id} is not known")
    if found.deleted:
        raise FhirError.of(410, "deleted", f"{res_type}/{res_id} was deleted in version {found.version}")
    return found


def given_version(found: Version | None, res_type: str, res_id: str, version: int) -> Version:
    """Version `version` `found` for a vread: 404 if there is none, 410 if it is a deletion."""
    if found is None:
        raise FhirError.of(404, "not-found", f"{res_type}/{res_id} has no version {version}")
    if found.deleted:
        raise FhirError.of(410, "deleted", f"Version {version} of {res_type}/{res_id} is a deletion")
    return found


def _fetch_version(tx: Cursor, sql: str, params: tuple) -> Version | None:
    row = tx.execute(sql, params).fetchone()
    return Version.from_row(row) if row else None


def _stamped(resource: dict, res_id: str, version: int, instant: str) -> dict:
    """The resource as stored: id and meta.versionId/lastUpdated set, resourceType first."""
    meta = dict(resource.get("meta") or {})
    meta["versionId"] = str(version)
    meta["lastUpdated"] = instant
    stamped = {"resourceType": resource["resourceType"], "id": res_id, "meta": meta}
    for key, value in resource.items():
        if key not in stamped:
            stamped[key] = value
    return stamped
