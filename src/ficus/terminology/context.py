"""Where canonical resources come from, and which version of one an operation uses.

A `Context` serves one operation call. It looks a canonical URL up, in this order of rank:
resources passed with the call (`tx-resource`), resources stored in the server, code systems
loaded into the database from a publisher's release, then the shipped packages (THO before R4
core). With a version, the highest-ranked resource of that version (or of the latest version
matching a `1.0.x` pattern) wins; without one, the highest-ranked source wins, latest version
first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ficus.terminology import versions
from ficus.terminology.codesystems import ResourceCodeSystem
from ficus.terminology.model import CodeSystemProvider
from ficus.terminology.packages import PackageIndex

if TYPE_CHECKING:
    from ficus.terminology.service import TerminologyService

TX_RANK = 100
STORED_RANK = 50
LOADED_RANK = 40


@dataclass
class Candidate:
    """One resource (or loaded code system) that answers a canonical URL."""

    rank: int
    version: str | None
    fetch: Callable[[], Any]
    content: str | None = None  # CodeSystem.content, to skip `not-present` stubs
    key: tuple | None = None  # package resources: a stable identity for caching


class Context:
    """Resolves canonical URLs for one operation call."""

    def __init__(self, service: TerminologyService, tx_resources: list[dict] | None = None) -> None:
        self.service = service
        self.packages: PackageIndex = service.packages
        self.tx_resources = [r for r in tx_resources or [] if isinstance(r, dict)]
        self._stored: dict[tuple[str, str], list[dict]] = {}
        self._systems: dict[tuple[str, str | None, tuple[str, ...]], CodeSystemProvider | None] = {}

    # -- candidates ---------------------------------------------------------------------

    def candidates(self, kind: str, url: str) -> list[Candidate]:
        found: list[Candidate] = []
        for resource in self.tx_resources:
            if resource.get("resourceType") == kind and resource.get("url") == url:
                found.append(Candidate(TX_RANK, resource.get("version"), _constant(resource), resource.get("content")))
        for resource in self.stored(kind, url):
            found.append(Candidate(STORED_RANK, resource.get("version"), _constant(resource), resource.get("content")))
        if kind == "CodeSystem":
            for version in self.service.loaded.versions(url):
                found.append(Candidate(LOADED_RANK, version, _loaded(self.service, url, version), "complete"))
        for entry in self.packages.entries(kind, url):
            fetch = _package(self.packages, entry)
            content = self.packages.resource(entry).get("content") if kind == "CodeSystem" else None
            found.append(Candidate(entry.rank, entry.version, fetch, content, entry.key))
        return found

    def stored(self, kind: str, url: str) -> list[dict]:
        key = (kind, url)
        if key not in self._stored:
            self._stored[key] = self.service.stored_resources(kind, url)
        return self._stored[key]

    def choose(self, kind: str, url: str, version: str | None = None) -> Candidate | None:
        url, version = split_canonical(url, version)
        found = self.candidates(kind, url)
        if kind == "CodeSystem":
            usable = [c for c in found if c.content != "not-present"]
            found = usable or found
        return choose(found, version)

    def versions(self, kind: str, url: str) -> list[str]:
        url, _ = split_canonical(url, None)
        return sorted({c.version for c in self.candidates(kind, url) if c.version}, key=versions.version_key)

    # -- resources ----------------------------------------------------------------------

    def value_set(self, url: str, version: str | None = None) -> dict | None:
        candidate = self.choose("ValueSet", url, version)
        return candidate.fetch() if candidate else None

    def concept_map(self, url: str, version: str | None = None) -> dict | None:
        candidate = self.choose("ConceptMap", url, version)
        return candidate.fetch() if candidate else None

    def code_system(self, url: str, version: str | None = None, supplements: tuple[str, ...] = ()) -> CodeSystemProvider | None:
        """The code system, with the named supplements (canonical URLs) applied."""
        url, version = split_canonical(url, version)
        key = (url, version, supplements)
        if key not in self._systems:
            self._systems[key] = self._code_system(url, version, supplements)
        return self._systems[key]

    def _code_system(self, url: str, version: str | None, supplements: tuple[str, ...]) -> CodeSystemProvider | None:
        candidate = self.choose("CodeSystem", url, version)
        if candidate is None:
            return None
        found = candidate.fetch()
        if isinstance(found, CodeSystemProvider):
            return found
        if found.get("content") == "supplement":
            return None
        extra = [s for s in (self.supplement(name) for name in supplements) if s is not None]
        if candidate.key is not None and not extra:
            return self.service.package_code_system(candidate.key, found)
        return ResourceCodeSystem(found, extra)

    def supplement(self, canonical: str) -> dict | None:
        url, version = split_canonical(canonical, None)
        candidate = choose([c for c in self.candidates("CodeSystem", url) if c.content == "supplement"], version)
        return candidate.fetch() if candidate else None

    def concept_maps(self) -> list[dict]:
        """Every ConceptMap passed with the call, stored, or shipped."""
        found = [r for r in self.tx_resources if r.get("resourceType") == "ConceptMap"]
        found.extend(self.service.stored_resources("ConceptMap", None))
        for url in self.packages.urls("ConceptMap"):
            for entry in self.packages.entries("ConceptMap", url):
                found.append(self.packages.resource(entry))
        return found


def choose(found: list[Candidate], version: str | None) -> Candidate | None:
    if not found:
        return None
    if version:
        if versions.is_wildcard(version):
            best = versions.best_match(version, [c.version for c in found])
            pool = [c for c in found if best is not None and c.version == best]
        else:
            pool = [c for c in found if c.version == version]
        return max(pool, key=lambda c: c.rank) if pool else None
    top = max(c.rank for c in found)
    pool = [c for c in found if c.rank == top]
    return max(pool, key=lambda c: versions.version_key(c.version))


def split_canonical(url: str, version: str | None) -> tuple[str, str | None]:
    """`url|version` into its parts; an explicit `version` wins over the one in the URL."""
    if "|" in url:
        url, _, embedded = url.partition("|")
        return url, version or embedded or None
    return url, version or None


def _constant(value: Any) -> Callable[[], Any]:
    return lambda: value


def _package(index: PackageIndex, entry: Any) -> Callable[[], Any]:
    return lambda: index.resource(entry)


def _loaded(service: TerminologyService, url: str, version: str) -> Callable[[], Any]:
    return lambda: service.loaded.provider(url, version)

