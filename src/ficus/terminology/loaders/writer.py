"""Writes one code system release into the tx_* tables (migrations 0005, 0010), in bulk and atomically.

A load gets its own `tx_code_system` row in state `loading`; rows are inserted in batches (each
batch its own transaction, so a large load does not hold one huge transaction open), the
transitive closure and the size of every subtree are computed in SQL, and only then does one short transaction make the new
version `active` and the version it replaces `superseded`. Readers see the old version until
that moment; a failed load deletes its rows and leaves the old version as it was.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol, Self

from ficus.store.database import Database

BATCH = 5_000
_INSERTS = {  # table -> columns; rows go in with the database's bulk insert (binary COPY on PostgreSQL)
    "concept": ("cs", "code", "display", "definition", "status", "inactive", "abstract"),
    "designation": ("cs", "code", "language", "use_system", "use_code", "use_display", "value"),
    "property": ("cs", "code", "property", "type", "value"),
    "hierarchy": ("cs", "parent", "child"),
}
CONTENT_TABLES = ("tx_concept", "tx_designation", "tx_property", "tx_hierarchy", "tx_closure", "tx_subtree")


class Progress(Protocol):
    """What a loader reports: a phase (with its size when known) and advances within it."""

    def phase(self, name: str, total: int | None = None) -> None: ...

    def advance(self, amount: int = 1) -> None: ...


class Silent:
    def phase(self, name: str, total: int | None = None) -> None:
        pass

    def advance(self, amount: int = 1) -> None:
        pass


@dataclass
class Release:
    """The code system a load creates: canonical URL, version and metadata (`meta` is kept as
    JSON: property definitions, caseSensitive, language, hierarchyMeaning, publisher, ...)."""

    url: str
    version: str
    name: str
    title: str
    meta: dict[str, Any] = field(default_factory=dict)


class BulkWriter:
    """Context manager: `with BulkWriter(db, release) as w: w.concept(...)` — commits the new
    version when the block ends normally, discards it when it raises."""

    def __init__(self, database: Database, release: Release, progress: Progress | None = None) -> None:
        self.database = database
        self.release = release
        self.progress = progress or Silent()
        self.cs_id: int | None = None
        self.concepts = 0
        self._buffers: dict[str, list[tuple]] = {name: [] for name in _INSERTS}
        self._edges: set[tuple[str, str]] = set()
        self._bool: Callable[[bool], Any] = (lambda v: v) if database.dialect == "postgresql" else int

    def __enter__(self) -> Self:
        with self.database.session(write=True) as tx:
            row = tx.execute(
                "INSERT INTO tx_code_system (url, version, name, title, state, meta, concepts, loaded) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (self.release.url, self.release.version, self.release.name, self.release.title, "loading",
                 json.dumps(self.release.meta), 0, int(time.time())),
            ).fetchone()
        self.cs_id = int(row[0])
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        if kind is None:
            self._finish()
        else:
            self._discard()

    # -- rows -------------------------------------------------------------------------------

    def concept(self, code: str, display: str | None, definition: str | None = None, status: str | None = None,
                inactive: bool = False, abstract: bool = False) -> None:
        self.concepts += 1
        self._add("concept", (self.cs_id, code, display, definition, status, self._bool(inactive), self._bool(abstract)))

    def designation(self, code: str, value: str, language: str | None = None, use: dict | None = None) -> None:
        use = use or {}
        self._add("designation", (self.cs_id, code, language, use.get("system"), use.get("code"), use.get("display"), value))

    def property(self, code: str, name: str, kind: str, value: Any) -> None:
        """One property value; `kind` is the FHIR type (code, string, Coding, boolean, ...)."""
        if value is None or value == "":
            return
        if kind == "Coding":
            text = json.dumps(value, sort_keys=True)
        elif kind == "boolean":
            text = "true" if value else "false"
        else:
            text = str(value)
        self._add("property", (self.cs_id, code, name, kind, text))

    def parent(self, child: str, parent: str) -> None:
        if (parent, child) in self._edges or parent == child:
            return
        self._edges.add((parent, child))
        self._add("hierarchy", (self.cs_id, parent, child))

    def _add(self, table: str, row: tuple) -> None:
        buffer = self._buffers[table]
        buffer.append(row)
        if len(buffer) >= BATCH:
            self._flush(table)

    def _flush(self, table: str) -> None:
        rows = self._buffers[table]
        if not rows:
            return
        with self.database.session(write=True) as tx:
            self.database.insert_many(tx, f"tx_{table}", _INSERTS[table], rows)
        self._buffers[table] = []

    # -- completion ---------------------------------------------------------------------------

    def _finish(self) -> None:
        for table in _INSERTS:
            self._flush(table)
        self.progress.phase("closure", None)
        with self.database.session(write=True) as tx:
            tx.execute("ANALYZE tx_hierarchy")  # without statistics SQLite walks the wrong index
            tx.execute(
                "WITH RECURSIVE up (descendant, ancestor) AS ("
                " SELECT child, parent FROM tx_hierarchy WHERE cs = ?"
                " UNION"
                " SELECT u.descendant, h.parent FROM up u JOIN tx_hierarchy h ON h.cs = ? AND h.child = u.ancestor"
                ") INSERT INTO tx_closure (cs, ancestor, descendant) SELECT ?, ancestor, descendant FROM up WHERE ancestor <> descendant",
                (self.cs_id, self.cs_id, self.cs_id),
            )
            tx.execute(
                "INSERT INTO tx_subtree (cs, code, descendants) SELECT cs, ancestor, COUNT(*) FROM tx_closure WHERE cs = ? GROUP BY cs, ancestor",
                (self.cs_id,),
            )
        self.progress.phase("activate", None)
        with self.database.session(write=True) as tx:
            self.database.lock(tx, f"tx-load:{self.release.url}")
            replaced = [r[0] for r in tx.execute(
                "SELECT id FROM tx_code_system WHERE url = ? AND version = ? AND state = ?",
                (self.release.url, self.release.version, "active"),
            ).fetchall()]
            if replaced:
                tx.execute(
                    f"UPDATE tx_code_system SET state = ? WHERE id IN ({', '.join('?' * len(replaced))})", ("superseded", *replaced),
                )
            tx.execute("UPDATE tx_code_system SET state = ?, concepts = ? WHERE id = ?", ("active", self.concepts, self.cs_id))
        for old in replaced:
            self._delete_content(old)

    def _discard(self) -> None:
        if self.cs_id is None:
            return
        self._delete_content(self.cs_id)
        with self.database.session(write=True) as tx:
            tx.execute("UPDATE tx_code_system SET state = ? WHERE id = ?", ("failed", self.cs_id))

    def _delete_content(self, cs_id: int) -> None:
        for table in CONTENT_TABLES:
            with self.database.session(write=True) as tx:
                tx.execute(f"DELETE FROM {table} WHERE cs = ?", (cs_id,))
