"""The terminology service of one repository: packages, loaded code systems, stored resources.

`service_for(repository)` returns the process-wide service; operations open a `Context` per
call. Code systems built from package resources are kept (they never change). Stored
CodeSystems, ValueSets and ConceptMaps are cached under a `stamp`: the repository's count of
committed writes of those types in this process (so an update here is seen at once) and, re-read
from the database at most every STAMP_SECONDS, the last change to them and the active loaded
releases (so a change by another process or a finished load is seen within that time).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict

from ficus import fhirjson
from ficus.search import search_versions
from ficus.store.repository import Repository
from ficus.terminology.codesystems import ResourceCodeSystem
from ficus.terminology.context import Context
from ficus.terminology.loaded import LoadedCodeSystems
from ficus.terminology.packages import package_index

_PACKAGE_SYSTEMS = 256
_STORED_LIMIT = 1000
_STORED_CACHED = 2048
STAMP_SECONDS = 1.0
WATCHED = ("CodeSystem", "ValueSet", "ConceptMap")
Stamp = tuple


class TerminologyService:
    def __init__(self, repository: Repository) -> None:
        self.repository = repository
        self.packages = package_index()
        self.loaded = LoadedCodeSystems(repository.database)
        self._systems: OrderedDict[tuple, ResourceCodeSystem] = OrderedDict()
        self._stored: OrderedDict[tuple[str, str | None], tuple[Stamp, list[dict]]] = OrderedDict()
        self._database_stamp: tuple = ()
        self._stamp_read_at = -STAMP_SECONDS
        self._lock = threading.Lock()

    def context(self, tx_resources: list[dict] | None = None) -> Context:
        return Context(self, tx_resources)

    def stamp(self, read: bool = True) -> Stamp | None:
        """What the cached answers depend on (see the module's docstring); None when the
        database part is due to be re-read and `read` is False (the caller is in a transaction)."""
        local = tuple(self.repository.generations.get(kind, 0) for kind in WATCHED)
        if time.monotonic() - self._stamp_read_at > STAMP_SECONDS:
            if not read:
                return None
            self._read_database_stamp()
        return (local, self._database_stamp)

    def _read_database_stamp(self) -> None:
        with self.repository.database.session() as tx:
            marks = ", ".join("?" * len(WATCHED))
            changed = tx.execute(f"SELECT MAX(last_updated), COUNT(*) FROM resource WHERE res_type IN ({marks})", WATCHED).fetchone()
            loaded = tuple(row[0] for row in tx.execute("SELECT id FROM tx_code_system WHERE state = ? ORDER BY id", ("active",)).fetchall())
        if loaded != tuple(sorted(cs_id for _, cs_id in self.loaded.active_ids())):
            self.loaded.refresh()  # a load finished: do not wait for the loaded list's own re-read
        self._database_stamp = (changed[0], changed[1], loaded)
        self._stamp_read_at = time.monotonic()

    def stored_resources(self, kind: str, url: str | None) -> list[dict]:
        """Current stored resources of `kind` (with canonical `url`, when given)."""
        stamp = self.stamp()
        key = (kind, url)
        with self._lock:
            found = self._stored.get(key)
            if found is not None and found[0] == stamp:
                self._stored.move_to_end(key)
                return found[1]
        pairs = [("url", url)] if url else []
        with self.repository.reading() as tx:
            versions, _ = search_versions(tx, self.repository.definitions, kind, pairs, _STORED_LIMIT, 0)
        resources = [fhirjson.decode(v.content) for v in versions if v.content]
        with self._lock:
            self._stored[key] = (stamp, resources)
            if len(self._stored) > _STORED_CACHED:
                self._stored.popitem(last=False)
        return resources

    def package_code_system(self, key: tuple, resource: dict) -> ResourceCodeSystem:
        with self._lock:
            found = self._systems.get(key)
            if found is not None:
                self._systems.move_to_end(key)
                return found
        found = ResourceCodeSystem(resource)
        with self._lock:
            self._systems[key] = found
            if len(self._systems) > _PACKAGE_SYSTEMS:
                self._systems.popitem(last=False)
        return found


_SERVICES: weakref.WeakKeyDictionary[Repository, TerminologyService] = weakref.WeakKeyDictionary()
_SERVICES_LOCK = threading.Lock()


def service_for(repository: Repository) -> TerminologyService:
    with _SERVICES_LOCK:
        found = _SERVICES.get(repository)
        if found is None:
            found = TerminologyService(repository)
            _SERVICES[repository] = found
        return found
