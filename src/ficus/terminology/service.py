"""The terminology service of one repository: packages, loaded code systems, stored resources.

`service_for(repository)` returns the process-wide service; operations open a `Context` per
call. Code systems built from package resources are kept (they never change); stored ones are
read again at each call, so an update is seen at once.
"""

from __future__ import annotations

import threading
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


class TerminologyService:
    def __init__(self, repository: Repository) -> None:
        self.repository = repository
        self.packages = package_index()
        self.loaded = LoadedCodeSystems(repository.database)
        self._systems: OrderedDict[tuple, ResourceCodeSystem] = OrderedDict()
        self._lock = threading.Lock()

    def context(self, tx_resources: list[dict] | None = None) -> Context:
        return Context(self, tx_resources)

    def stored_resources(self, kind: str, url: str | None) -> list[dict]:
        """Current stored resources of `kind` (with canonical `url`, when given)."""
        pairs = [("url", url)] if url else []
        with self.repository.reading() as tx:
            found, _ = search_versions(tx, self.repository.definitions, kind, pairs, _STORED_LIMIT, 0)
        return [fhirjson.decode(v.content) for v in found if v.content]

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
