"""Code system hierarchies and ValueSet expansions for token `:above`, `:below`, `:in` and
`:not-in`.

Within a request to the server they come from its terminology service
(`ficus.terminology.inprocess`): the packages, stored CodeSystems and ValueSets, and loaded
releases, whose hierarchy is joined in SQL (`tx_closure`) so a broad `:below` stays one query.
Outside one (a query compiled with no server behind it) the R4 package alone answers, loaded on
first use (about 0.4 s) and kept for the life of the process.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field

from ficus.spec import Definitions
from ficus.terminology.inprocess import current

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


def subsumption_condition(alias: str, system: str, code: str, upward: bool) -> tuple[str, list]:
    """The index rows (`alias`) coded `system|code` or with a code it subsumes (`upward`: that
    subsumes it); just `code` when the code system or the code is unknown."""
    resolver = current()
    loaded = resolver.loaded_ids(system) if resolver is not None else ()
    if loaded:
        near, far = ("descendant", "ancestor") if upward else ("ancestor", "descendant")
        marks = ", ".join("?" * len(loaded))
        related = f"SELECT t.{far} FROM tx_closure t WHERE t.cs IN ({marks}) AND t.{near} = ?"
        return f"({alias}.system = ? AND ({alias}.code = ? OR {alias}.code IN ({related})))", [system, code, *loaded, code]
    found = resolver.closure(system, code, upward) if resolver is not None else None
    if found is None:
        found = _closure(code, package_terminology().parents.get(system, {}) if upward else _children_of(system))
    codes = sorted(found)
    marks = ", ".join("?" * len(codes))
    return f"({alias}.code IN ({marks}) AND {alias}.system = ?)", [*codes, system]


def _closure(code: str, edges: dict[str, set[str]]) -> set[str]:
    found, frontier = {code}, [code]
    while frontier:
        for following in edges.get(frontier.pop(), ()):
            if following not in found:
                found.add(following)
                frontier.append(following)
    return found


def value_set_codes(definitions: Definitions, url: str) -> frozenset[tuple[str, str]] | None:
    """The (system, code) pairs of a ValueSet, or None when the terminology cannot expand it
    (the search then matches the codes a stored ValueSet lists, in SQL)."""
    found = definitions.value_sets.get(url.split("|", 1)[0])
    if found is not None:
        return found
    resolver = current()
    if resolver is not None:
        return resolver.value_set_codes(url)
    return _package_expansion(url.split("|", 1)[0])


@functools.lru_cache(maxsize=512)
def _package_expansion(url: str) -> frozenset[tuple[str, str]] | None:
    expander = package_terminology().expander
    with _LOCK:  # the expander's cache is not thread-safe
        codes = expander.expand(url) if expander is not None else None  # type: ignore[attr-defined]
    return frozenset((s, c) for s, c in codes) if codes is not None else None
