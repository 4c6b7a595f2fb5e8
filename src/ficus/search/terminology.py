"""Code system hierarchies and ValueSet expansions from the R4 package, for token `:above`,
`:below`, `:in` and `:not-in`.

Loaded on first use (about 0.4 s) and kept for the life of the process. ValueSets that are not
in the package are looked up among the ValueSet resources stored in the server, in SQL.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field

from ficus.spec import Definitions

_LOCK = threading.RLock()


@dataclass
class PackageTerminology:
    """Parents per code of each hierarchical CodeSystem, and the ValueSets of the package."""

    parents: dict[str, dict[str, set[str]]] = field(default_factory=dict)
    expander: object | None = None


@functools.cache
def package_terminology() -> PackageTerminology:
    from ficus.spec.compile import _Expander  # the same expansion rules the definitions use
    from ficus.spec.package import iter_package_resources

    with _LOCK:
        code_systems: dict[str, dict] = {}
        value_sets: dict[str, dict] = {}
        for resource in iter_package_resources():
            if resource["resourceType"] == "CodeSystem" and "url" in resource:
                code_systems[resource["url"]] = resource
            elif resource["resourceType"] == "ValueSet" and "url" in resource:
                value_sets[resource["url"]] = resource
        terminology = PackageTerminology()
        for url, code_system in code_systems.items():
            parents: dict[str, set[str]] = {}
            _walk(code_system.get("concept", []), None, parents)
            for concept_code, concept in _flatten(code_system.get("concept", [])):
                for prop in concept.get("property", []):
                    if prop.get("code") in ("subsumedBy", "parent") and isinstance(prop.get("valueCode"), str):
                        parents.setdefault(concept_code, set()).add(prop["valueCode"])
            if any(parents.values()):
                terminology.parents[url] = parents
        terminology.expander = _Expander(code_systems, value_sets)
        return terminology


def _walk(concepts: list[dict], parent: str | None, parents: dict[str, set[str]]) -> None:
    for concept in concepts:
        code = concept.get("code")
        if not isinstance(code, str):
            continue
        parents.setdefault(code, set())
        if parent is not None:
            parents[code].add(parent)
        _walk(concept.get("concept", []), code, parents)


def _flatten(concepts: list[dict]) -> list[tuple[str, dict]]:
    found = []
    for concept in concepts:
        if isinstance(concept.get("code"), str):
            found.append((concept["code"], concept))
        found.extend(_flatten(concept.get("concept", [])))
    return found


@functools.lru_cache(maxsize=256)
def _children_of(system: str) -> dict[str, set[str]]:
    children: dict[str, set[str]] = {}
    for code, parents in package_terminology().parents.get(system, {}).items():
        for parent in parents:
            children.setdefault(parent, set()).add(code)
    return children


def is_hierarchical(system: str) -> bool:
    return system in package_terminology().parents


def descendants_and_self(system: str, code: str) -> set[str]:
    """`code` and every code it subsumes in `system` (just `code` when the system is unknown)."""
    return _closure(code, _children_of(system))


def ancestors_and_self(system: str, code: str) -> set[str]:
    return _closure(code, package_terminology().parents.get(system, {}))


def _closure(code: str, edges: dict[str, set[str]]) -> set[str]:
    found, frontier = {code}, [code]
    while frontier:
        for following in edges.get(frontier.pop(), ()):
            if following not in found:
                found.add(following)
                frontier.append(following)
    return found


def value_set_codes(definitions: Definitions, url: str) -> frozenset[tuple[str, str]] | None:
    """The (system, code) pairs of a ValueSet of the package, or None when it is not there
    (or cannot be expanded from the package alone)."""
    url = url.split("|", 1)[0]
    found = definitions.value_sets.get(url)
    if found is not None:
        return found
    return _package_expansion(url)


@functools.lru_cache(maxsize=512)
def _package_expansion(url: str) -> frozenset[tuple[str, str]] | None:
    expander = package_terminology().expander
    with _LOCK:  # the expander's cache is not thread-safe
        codes = expander.expand(url) if expander is not None else None  # type: ignore[attr-defined]
    return frozenset((s, c) for s, c in codes) if codes is not None else None
