"""An in-memory inverted index over one code system version's names, for proposing candidates.

Each concept's display and designations are normalised once (`normalise.tokens`); a token maps
to the concepts that use it. A query is resolved token by token (exact, then prefix, then a
close spelling from the index's own vocabulary, so `potas` and `glucse` still find their
concepts) and only the tokens of useful selectivity drive retrieval, so a query touches a few
posting lists however large the code system. Indexes are built on first use and kept per
code system version.
"""

from __future__ import annotations

import heapq
import math
import re
import threading
import weakref
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from rapidfuzz import fuzz, process

from ficus.terminology.loaded import LoadedCodeSystem
from ficus.terminology.mapping import normalise
from ficus.terminology.model import CodeSystemProvider

LOINC = "http://loinc.org"
_LOINC_TERM = re.compile(r"\d+-\d")
_KEPT_INDEXES = 4
_RETRIEVAL_POSTINGS = 20_000  # tokens used by more concepts than this only score, never retrieve
_FUZZY_CUTOFF = 80


@dataclass(slots=True)
class IndexedConcept:
    """What scoring needs of one concept, computed once at index time."""

    code: str
    display: str
    name_tokens: tuple[str, ...]  # of the display (LOINC: without the [property] bracket)
    tokens: tuple[str, ...]  # of the display and every designation, once each (a tuple: far smaller than a set)
    variants: tuple[tuple[str, ...], ...] = ()  # other full names (ICD inclusion terms, modifiers left out)
    specimens: frozenset[str] = frozenset()
    property: str | None = None
    scale: str | None = None
    units: frozenset[str] = frozenset()
    rank: int | None = None  # LOINC COMMON_TEST_RANK: 1 is the most often ordered
    status: str | None = None  # LOINC: active, trial, discouraged
    codable: bool | None = None  # ICD-10-CM: billable (nothing is coded below it)


@dataclass
class ResolvedToken:
    """A query token as the index knows it: `matched` tokens of the index, each with its likeness."""

    token: str
    matched: list[tuple[str, float]] = field(default_factory=list)
    how: str = "exact"


class CandidateIndex:
    """Token postings and IDF weights over the concepts of one code system version."""

    def __init__(self, system: str, version: str | None, concepts: Iterable[IndexedConcept]) -> None:
        self.system = system
        self.version = version
        self.concepts: list[IndexedConcept] = []
        postings: dict[str, list[int]] = {}
        for concept in concepts:
            position = len(self.concepts)
            self.concepts.append(concept)
            for token in concept.tokens:
                postings.setdefault(token, []).append(position)
        self.postings = postings
        total = max(len(self.concepts), 1)
        self.idf = {token: math.log(1 + total / len(found)) for token, found in postings.items()}
        self.max_idf = math.log(1 + total)
        self.vocabulary = sorted(postings)
        self.by_code = {concept.code: concept for concept in self.concepts}
        self.ranked = any(concept.rank for concept in self.concepts)

    def __len__(self) -> int:
        return len(self.concepts)

    def weight(self, token: str) -> float:
        return self.idf.get(token, self.max_idf)

    def resolve(self, token: str) -> ResolvedToken:
        """The index tokens a query token stands for."""
        if token in self.postings:
            return ResolvedToken(token, [(token, 1.0)])
        if len(token) >= 3 and not token.isdigit():
            start = bisect_left(self.vocabulary, token)
            prefixed = []
            for known in self.vocabulary[start:start + 50]:
                if not known.startswith(token):
                    break
                prefixed.append(known)
            if prefixed:
                prefixed.sort(key=lambda t: -len(self.postings[t]))
                return ResolvedToken(token, [(t, 0.9) for t in prefixed[:3]], "prefix")
            if len(token) >= 4:
                close = process.extract(token, self.vocabulary, scorer=fuzz.ratio, limit=2, score_cutoff=_FUZZY_CUTOFF)
                if close:
                    return ResolvedToken(token, [(t, score / 100) for t, score, _ in close], "spelling")
        return ResolvedToken(token, [], "unknown")

    def retrieve(self, resolved: list[ResolvedToken], limit: int) -> list[int]:
        """The positions of the `limit` concepts sharing the most query weight."""
        matched = [(t, likeness) for r in resolved for t, likeness in r.matched]
        selective = [(t, s) for t, s in matched if len(self.postings[t]) <= _RETRIEVAL_POSTINGS]
        driving = selective or matched
        accumulated: dict[int, float] = {}
        for token, likeness in driving:
            weight = self.idf[token] * likeness
            for position in self.postings[token]:
                accumulated[position] = accumulated.get(position, 0.0) + weight
        concepts = self.concepts
        ranked = heapq.nsmallest(limit, accumulated.items(), key=lambda item: (-item[1], concepts[item[0]].code))
        return [position for position, _ in ranked]


# -- building -----------------------------------------------------------------------------------


def build_index(provider: CodeSystemProvider) -> CandidateIndex:
    if isinstance(provider, LoadedCodeSystem):
        concepts = _loaded_concepts(provider)
    else:
        concepts = _provider_concepts(provider)
    return CandidateIndex(provider.url, provider.version, concepts)


def _indexed(system: str, code: str, display: str, names: list[str], properties: dict[str, list[str]],
             status: str | None = None) -> IndexedConcept:
    loinc = system == LOINC
    name_tokens = normalise.tokens(display, drop_brackets=loinc)
    every = set(name_tokens)
    for name in names:
        every.update(normalise.tokens(name, drop_brackets=loinc))
    variants: list[tuple[str, ...]] = []
    synonyms = [*properties.get("inclusionTerm", []), *properties.get("includes", [])]
    for name in [display, *synonyms] if "billable" in properties else []:
        every.update(normalise.tokens(name))
        if "(" in name or name is not display:
            essential = normalise.tokens(name, drop_parentheses=True)  # ICD: (words) are nonessential modifiers
            if essential and essential != name_tokens:
                variants.append(essential)
    concept = IndexedConcept(code, display, name_tokens, tuple(sorted(every)), tuple(variants))
    billable = properties.get("billable")
    if billable:
        concept.codable = billable[0].lower() in ("true", "1")
    if loinc:
        short = next(iter(properties.get("SHORTNAME", [])), None)
        system_text = normalise.loinc_system_text(display)
        concept.specimens = normalise.specimens(normalise.tokens(system_text)) if system_text else frozenset()
        concept.property = _axis(properties.get("PROPERTY")) or normalise.loinc_property(display, short)
        concept.scale = _axis(properties.get("SCALE_TYP")) or normalise.scale_of(concept.property)
        units = properties.get("EXAMPLE_UCUM_UNITS", [])
        concept.units = frozenset(u.strip() for value in units for u in value.split(";") if u.strip())
        ranks = [int(r) for r in properties.get("COMMON_TEST_RANK", []) if r.isdigit() and r != "0"]
        concept.rank = min(ranks) if ranks else None
        concept.status = (status or "active").lower()
    return concept


def _axis(values: list[str] | None) -> str | None:
    """A LOINC axis property stored as a Coding (its JSON) -> the part's name (`SCnc`)."""
    for value in values or []:
        match = re.search(r'"display":\s*"([^"]+)"', value)
        if match:
            return match.group(1)
    return None


_INDEXED_PROPERTIES = ("EXAMPLE_UCUM_UNITS", "COMMON_TEST_RANK", "PROPERTY", "SCALE_TYP", "billable", "inclusionTerm", "includes")


def _loaded_concepts(provider: LoadedCodeSystem) -> Iterator[IndexedConcept]:
    """Concepts straight from the tx_* tables: three statements, whatever the size."""
    marks = ", ".join("?" * len(_INDEXED_PROPERTIES))
    with provider.database.session() as tx:
        rows = tx.execute(
            "SELECT code, display, CAST(inactive AS TEXT), status FROM tx_concept WHERE cs = ?", (provider.cs_id,)
        ).fetchall()
        designations = tx.execute(
            "SELECT code, value, use_code FROM tx_designation WHERE cs = ? AND (language IS NULL OR language LIKE ?)",
            (provider.cs_id, "en%"),
        ).fetchall()
        properties = tx.execute(
            f"SELECT code, property, value FROM tx_property WHERE cs = ? AND property IN ({marks})",
            (provider.cs_id, *_INDEXED_PROPERTIES),
        ).fetchall()
    names: dict[str, list[str]] = {}
    extra: dict[str, dict[str, list[str]]] = {}
    for code, value, use in designations:
        names.setdefault(code, []).append(value)
        if use == "SHORTNAME":
            extra.setdefault(code, {}).setdefault("SHORTNAME", []).append(value)
    for code, name, value in properties:
        extra.setdefault(code, {}).setdefault(name, []).append(value)
    loinc = provider.url == LOINC
    for code, display, inactive, status in rows:
        if str(inactive).lower() in ("1", "true", "t") or not display:
            continue
        if loinc and not _LOINC_TERM.fullmatch(code):
            continue  # parts and answers are not what a local test code maps to
        yield _indexed(provider.url, code, display, names.get(code, []), extra.get(code, {}), status)


def _provider_concepts(provider: CodeSystemProvider) -> Iterator[IndexedConcept]:
    for concept in provider.iter_concepts(provider.codes()):
        if concept.inactive or concept.abstract or not concept.display:
            continue
        names = [d.value for d in concept.designations if not d.language or d.language.startswith("en")]
        properties: dict[str, list[str]] = {}
        for name, _, value in concept.properties:
            properties.setdefault(name, []).append(str(value))
        yield _indexed(provider.url, concept.code, concept.display, names, properties, concept.status)


class IndexCache:
    """Built indexes, kept per code system version (the few most recently used), apart for
    each database the loaded ones come from."""

    def __init__(self) -> None:
        self._indexes: weakref.WeakKeyDictionary[object, OrderedDict[tuple, CandidateIndex]] = weakref.WeakKeyDictionary()
        self._shared = _Shared()
        self._lock = threading.Lock()

    def get(self, provider: CodeSystemProvider) -> CandidateIndex:
        resource = provider.resource or {}
        stamp = getattr(provider, "cs_id", None) or (resource.get("meta") or {}).get("versionId")
        key = (provider.url, provider.version, stamp)
        owner = getattr(provider, "database", None) or self._shared
        with self._lock:
            kept = self._indexes.setdefault(owner, OrderedDict())
            found = kept.get(key)
            if found is not None:
                kept.move_to_end(key)
                return found
        built = build_index(provider)
        with self._lock:
            kept[key] = built
            while len(kept) > _KEPT_INDEXES:
                kept.popitem(last=False)
        return built


class _Shared:
    """The owner of indexes over code systems that live in no database (shipped, stored)."""


INDEXES = IndexCache()
