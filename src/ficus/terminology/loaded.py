"""Code systems loaded into the database (LOINC, SNOMED CT, RxNorm, ICD-10-CM), read in SQL.

The tables are those of migrations 0005 and 0010. Only `active` versions are visible. The list of loaded
versions is re-read at most every few seconds, so a load finished by `ficus terminology load`
in another process shows up without a restart.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any

from ficus.store.database import Database
from ficus.terminology.model import CodeSystemProvider, Concept, Designation, PropertyDef

REFRESH_SECONDS = 5.0
_CONCEPT_CACHE = 20_000
_CHUNK = 250  # codes per IN (...) list
_ANCHOR_EVERY = 4096  # a large subtree's codes remembered for paging: one in this many
_SUBTREES = 1024  # subtrees whose anchors are kept


class LoadedCodeSystems:
    """The active loaded code system versions of one database."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._rows: dict[str, dict[str, tuple[int, str | None, str | None, dict, int]]] = {}
        self._read_at = 0.0
        self._providers: dict[int, LoadedCodeSystem] = {}
        self._lock = threading.Lock()

    def refresh(self) -> None:
        with self.database.session() as tx:
            rows = tx.execute(
                "SELECT id, url, version, name, title, meta, concepts FROM tx_code_system WHERE state = ?", ("active",)
            ).fetchall()
        found: dict[str, dict[str, tuple[int, str | None, str | None, dict, int]]] = {}
        for cs_id, url, version, name, title, meta, concepts in rows:
            found.setdefault(url, {})[version] = (cs_id, name, title, json.loads(meta), concepts)
        with self._lock:
            self._rows = found
            self._read_at = time.monotonic()
            live = {row[0] for versions in found.values() for row in versions.values()}
            self._providers = {k: v for k, v in self._providers.items() if k in live}

    def _current(self) -> dict[str, dict[str, tuple[int, str | None, str | None, dict, int]]]:
        if time.monotonic() - self._read_at > REFRESH_SECONDS:
            self.refresh()
        return self._rows

    def active_ids(self) -> list[tuple[str, int]]:
        """(url, id) of every active version as last read (no database round trip)."""
        return [(url, row[0]) for url, versions in self._rows.items() for row in versions.values()]

    def versions(self, url: str) -> list[str]:
        return list(self._current().get(url, {}))

    def provider(self, url: str, version: str) -> LoadedCodeSystem | None:
        row = self._current().get(url, {}).get(version)
        if row is None:
            return None
        cs_id, name, title, meta, concepts = row
        with self._lock:
            found = self._providers.get(cs_id)
            if found is None:
                found = LoadedCodeSystem(self.database, cs_id, url, version, name, title, meta, concepts)
                self._providers[cs_id] = found
        return found


class LoadedCodeSystem(CodeSystemProvider):
    """One loaded version, answered from the tx_* tables (concepts cached as they are read)."""

    def __init__(
        self, database: Database, cs_id: int, url: str, version: str, name: str | None, title: str | None,
        meta: dict, concepts: int,
    ) -> None:
        super().__init__()
        self.database = database
        self.cs_id = cs_id
        self.url = url
        self.version = version
        self.name = name
        self.title = title
        self.status = meta.get("status", "active")
        self.content = "complete"
        self.case_sensitive = meta.get("caseSensitive", True)
        self.language = meta.get("language")
        self.hierarchy_meaning = meta.get("hierarchyMeaning", "is-a")
        self.publisher = meta.get("publisher")
        self.copyright = meta.get("copyright")
        self.properties = [PropertyDef(p["code"], p.get("uri"), p.get("type", "string"), p.get("description")) for p in meta.get("property", [])]
        self._count = concepts
        self._cache: OrderedDict[str, Concept | None] = OrderedDict()
        self._subtrees: OrderedDict[str, list[str]] = OrderedDict()
        self._ancestors: OrderedDict[str, frozenset[str]] = OrderedDict()
        self._lock = threading.Lock()

    def _rows(self, sql: str, params: tuple) -> list:
        with self.database.session() as tx:
            return tx.execute(sql, params).fetchall()

    def concept(self, code: str) -> Concept | None:
        with self._lock:
            if code in self._cache:
                self._cache.move_to_end(code)
                return self._cache[code]
        found = self._read(code)
        with self._lock:
            self._cache[code] = found
            if len(self._cache) > _CONCEPT_CACHE:
                self._cache.popitem(last=False)
        return found

    def _read(self, code: str) -> Concept | None:
        found = self._read_many([code])
        if not found and not self.case_sensitive:
            with self.database.session() as tx:
                row = tx.execute("SELECT code FROM tx_concept WHERE cs = ? AND lower(code) = ?", (self.cs_id, code.lower())).fetchone()
            found = self._read_many([row[0]]) if row else {}
        return next(iter(found.values()), None)

    def _read_many(self, codes: list[str]) -> dict[str, Concept]:
        """The concepts for `codes` (those that exist): one round trip per chunk, the concept
        rows, designations, properties and both hierarchy directions in one UNION ALL."""
        found: dict[str, Concept] = {}
        rest: list[tuple] = []
        with self.database.session() as tx:
            for start in range(0, len(codes), _CHUNK):
                chunk = codes[start:start + _CHUNK]
                marks = ", ".join("?" * len(chunk))
                params = [self.cs_id, *chunk] * 5
                rows = tx.execute(
                    "SELECT 0, code, display, definition, status, CAST(inactive AS TEXT), CAST(abstract AS TEXT) "
                    f"FROM tx_concept WHERE cs = ? AND code IN ({marks}) "
                    "UNION ALL SELECT 1, code, language, use_system, use_code, use_display, value "
                    f"FROM tx_designation WHERE cs = ? AND code IN ({marks}) "
                    "UNION ALL SELECT 2, code, property, type, value, NULL, NULL "
                    f"FROM tx_property WHERE cs = ? AND code IN ({marks}) "
                    "UNION ALL SELECT 3, child, parent, NULL, NULL, NULL, NULL "
                    f"FROM tx_hierarchy WHERE cs = ? AND child IN ({marks}) "
                    "UNION ALL SELECT 4, parent, child, NULL, NULL, NULL, NULL "
                    f"FROM tx_hierarchy WHERE cs = ? AND parent IN ({marks})",
                    params,
                ).fetchall()
                for row in rows:
                    if row[0] == 0:
                        code, display, definition, status, inactive, abstract = row[1:]
                        found[code] = Concept(code=code, display=display, definition=definition, status=status,
                                              inactive=_truthy(inactive), abstract=_truthy(abstract))
                    else:
                        rest.append(row)
        for kind, code, a, b, c, d, e in sorted(rest, key=lambda r: (r[0], r[1], r[2] or "")):
            concept = found.get(code)
            if concept is None:
                continue
            if kind == 1:
                use = {k: v for k, v in (("system", b), ("code", c), ("display", d)) if v} or None
                concept.designations.append(Designation(e, a, use))
            elif kind == 2:
                concept.properties.append((a, _VALUE_KEYS.get(b, "valueString"), _decode(b, c)))
            elif kind == 3:
                concept.parents.append(a)
            else:
                concept.children.append(a)
        return found

    def iter_concepts(self, codes: Iterable[str]) -> Iterator[Concept]:
        wanted = list(codes)
        missing = [c for c in wanted if c not in self._cache]
        for start in range(0, len(missing), _CHUNK * 4):
            batch = missing[start:start + _CHUNK * 4]
            read = self._read_many(batch)
            with self._lock:
                for code in batch:
                    self._cache[code] = read.get(code)
                while len(self._cache) > _CONCEPT_CACHE:
                    self._cache.popitem(last=False)
        for code in wanted:
            concept = self._cache.get(code) if code in self._cache else self.concept(code)
            if concept is not None:
                yield concept

    def page(self, filters: list[tuple[str, str, str]], active_only: bool, text: str | None, offset: int, count: int | None) -> tuple[int, list[str]] | None:
        """(total, one page of codes in code order) for concepts passing `filters` (is-a,
        descendent-of, property =), or None when a filter cannot be answered in SQL."""
        if len(filters) == 1 and not active_only and not text:
            prop, op, value = filters[0]
            if prop in ("concept", "code") and op in ("is-a", "descendent-of") and self.concept(value) is not None:
                return self._subtree_page(value, op == "is-a", offset, count)
        where = ["c.cs = ?"]
        params: list = [self.cs_id]
        for prop, op, value in filters:
            if prop in ("concept", "code") and op in ("is-a", "descendent-of"):
                own = " UNION SELECT ?" if op == "is-a" else ""
                where.append(f"c.code IN (SELECT descendant FROM tx_closure WHERE cs = ? AND ancestor = ?{own})")
                params += [self.cs_id, value] + ([value] if op == "is-a" else [])
            elif op == "=" and prop not in ("concept", "code", "display"):
                where.append("EXISTS (SELECT 1 FROM tx_property p WHERE p.cs = c.cs AND p.code = c.code AND p.property = ? AND p.value = ?)")
                params += [prop, value]
            else:
                return None
        if active_only:
            where.append("c.inactive = ?")
            params.append(False)
        for word in (text or "").lower().split():
            where.append("(lower(c.display) LIKE ? OR lower(c.display) LIKE ? OR lower(c.code) LIKE ?)")
            params += [f"{word}%", f"% {word}%", f"{word}%"]
        clause = " AND ".join(where)
        with self.database.session() as tx:
            total = tx.execute(f"SELECT COUNT(*) FROM tx_concept c WHERE {clause}", params).fetchone()[0]
            limit = count if count is not None else total
            rows = tx.execute(f"SELECT c.code FROM tx_concept c WHERE {clause} ORDER BY c.code LIMIT ? OFFSET ?", (*params, limit, offset)).fetchall()
        return total, [r[0] for r in rows]

    def codes(self) -> Iterator[str]:
        for (code,) in self._rows("SELECT code FROM tx_concept WHERE cs = ? ORDER BY code", (self.cs_id,)):
            yield code

    def roots(self) -> list[str]:
        return [r[0] for r in self._rows(
            "SELECT c.code FROM tx_concept c WHERE c.cs = ? AND NOT EXISTS "
            "(SELECT 1 FROM tx_hierarchy h WHERE h.cs = c.cs AND h.child = c.code) ORDER BY c.code",
            (self.cs_id,),
        )]

    def count(self) -> int:
        return self._count

    def children(self, code: str) -> list[str]:
        concept = self.concept(code)
        return list(concept.children) if concept else []

    def parents(self, code: str) -> list[str]:
        concept = self.concept(code)
        return list(concept.parents) if concept else []

    def descendants(self, code: str) -> list[str]:
        return [r[0] for r in self._rows(
            "SELECT descendant FROM tx_closure WHERE cs = ? AND ancestor = ? ORDER BY descendant", (self.cs_id, code)
        )]

    def ancestors(self, code: str) -> set[str]:
        with self._lock:
            found = self._ancestors.get(code)
            if found is not None:
                self._ancestors.move_to_end(code)
                return set(found)
        found = frozenset(r[0] for r in self._rows("SELECT ancestor FROM tx_closure WHERE cs = ? AND descendant = ?", (self.cs_id, code)))
        with self._lock:
            self._ancestors[code] = found
            if len(self._ancestors) > _CONCEPT_CACHE:
                self._ancestors.popitem(last=False)
        return set(found)

    def subsumes(self, ancestor: str, descendant: str) -> bool:
        """From the descendant's ancestors (kept like concepts: membership tests of an is-a value
        set ask this of the same codes again and again)."""
        return ancestor == descendant or ancestor in self.ancestors(descendant)

    def _subtree_page(self, root: str, with_root: bool, offset: int, count: int | None) -> tuple[int, list[str]]:
        """A page of a subtree straight from the closure index (already in code order); for
        `is-a` the root is slotted in at its place in that order."""
        with self.database.session() as tx:
            below = self._subtree_size(tx, root)
            total = below + (1 if with_root else 0)
            limit = total if count is None else count
            if not with_root:
                return total, self._descendants(tx, root, below, offset, limit)
            if offset == 0:
                return total, sorted([*self._descendants(tx, root, below, 0, limit), root])[:limit]
            # the code before the page tells on which side of the page the root sorts
            rows = self._descendants(tx, root, below, offset - 1, limit + 1)
            if not rows or rows[0] > root:
                return total, rows[:limit]
            return total, sorted([*rows[1:], root])[:limit]

    def _descendants(self, tx: Any, root: str, below: int, skip: int, take: int) -> list[str]:
        """`take` codes below `root` from the `skip`-th on, in code order. A deep page starts from
        the nearest remembered code at or before `skip`, so that OFFSET steps over fewer than
        _ANCHOR_EVERY index entries however deep the page is."""
        if take <= 0 or skip >= below:
            return []
        start = ""
        if skip >= _ANCHOR_EVERY:
            anchors = self._anchors(tx, root)
            anchor = min(skip // _ANCHOR_EVERY, len(anchors) - 1)
            start, skip = anchors[anchor], skip - anchor * _ANCHOR_EVERY
        return [r[0] for r in tx.execute(
            "SELECT descendant FROM tx_closure WHERE cs = ? AND ancestor = ? AND descendant >= ? ORDER BY descendant LIMIT ? OFFSET ?",
            (self.cs_id, root, start, take, skip),
        ).fetchall()]

    def _subtree_size(self, tx: Any, root: str) -> int:
        """The codes below `root`: written at load (tx_subtree), else counted (a leaf, or a
        release loaded before that table)."""
        row = tx.execute("SELECT descendants FROM tx_subtree WHERE cs = ? AND code = ?", (self.cs_id, root)).fetchone()
        if row is not None:
            return int(row[0])
        return int(tx.execute("SELECT COUNT(*) FROM tx_closure WHERE cs = ? AND ancestor = ?", (self.cs_id, root)).fetchone()[0])

    def _anchors(self, tx: Any, root: str) -> list[str]:
        """Every _ANCHOR_EVERY-th code below `root` in code order (read once per subtree: a
        loaded release never changes)."""
        with self._lock:
            found = self._subtrees.get(root)
            if found is not None:
                self._subtrees.move_to_end(root)
                return found
        found = [r[0] for r in tx.execute(
            "SELECT descendant FROM (SELECT descendant, ROW_NUMBER() OVER (ORDER BY descendant) AS n "
            "FROM tx_closure WHERE cs = ? AND ancestor = ?) numbered WHERE n % ? = 1 ORDER BY descendant",
            (self.cs_id, root, _ANCHOR_EVERY),
        ).fetchall()]
        with self._lock:
            self._subtrees[root] = found
            if len(self._subtrees) > _SUBTREES:
                self._subtrees.popitem(last=False)
        return found

    def codes_with_property(self, name: str, value: str) -> list[str]:
        return [r[0] for r in self._rows(
            "SELECT code FROM tx_property WHERE cs = ? AND property = ? AND value = ? ORDER BY code", (self.cs_id, name, value)
        )]


_VALUE_KEYS = {
    "code": "valueCode", "string": "valueString", "Coding": "valueCoding", "boolean": "valueBoolean",
    "integer": "valueInteger", "decimal": "valueDecimal", "dateTime": "valueDateTime",
}


def _truthy(value: Any) -> bool:
    return str(value).lower() in ("1", "true", "t")


def _decode(kind: str, value: str) -> Any:
    if kind == "Coding":
        return json.loads(value)
    if kind == "boolean":
        return value == "true"
    if kind == "integer":
        return int(value)
    return value
