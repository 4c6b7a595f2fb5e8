"""The score of a candidate standard code for a local code, made of named parts a person can check.

Parts (each 0..1, or absent when one side says nothing about it):
- `display`: how well the names agree: the share of the local name's weight (IDF) the
  candidate's names and synonyms cover, the agreement (both ways) with its best-fitting full
  name, and a character-level likeness of the normalised names (catches spellings the tokens
  miss);
- `specimen`: the specimen (LOINC system) named locally against the candidate's;
- `unit`: the local unit's kind of quantity (mmol/L: substance concentration) against the LOINC
  property, full marks when the unit is one of the term's example UCUM units;
- `scale`: quantitative (a unit), ordinal (`Ql`, `screen`) or nominal (`culture`, `id`) against
  the LOINC scale;
- `common`: how often the term is ordered (LOINC's common test rank), a tie-breaker;
- `status`: 1 for an active term, 0 for one its publisher discourages (or trial);
- `codable`: ICD-10-CM: 1 for a billable code, 0 for a category with codes below it.
The score is the weighted mean of the parts present.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from rapidfuzz import fuzz

from ficus.terminology.mapping import normalise
from ficus.terminology.mapping.index import CandidateIndex, IndexedConcept, ResolvedToken

WEIGHTS = {"display": 0.6, "specimen": 0.15, "unit": 0.15, "scale": 0.05, "common": 0.05, "status": 0.05, "codable": 0.1}
_DISPLAY_PARTS = (0.4, 0.45, 0.15)  # local name covered by any name, agreement with the best full name, likeness
_ORDINAL_WORDS = frozenset({"presence", "detected", "positive", "negative", "pos", "neg", "reactive"})
_NOMINAL_WORDS = frozenset({"culture", "identified", "microorganism"})
_RANK_SCALE = math.log(20_000)


@dataclass
class LocalConcept:
    """A code as a local system (a lab's catalogue, a v2 sender) uses it."""

    code: str
    display: str
    unit: str | None = None
    system: str | None = None  # the local code system URI
    facility: str | None = None  # a v2 sending facility, when the code comes from one
    count: int = 1  # how often it was seen

    def key(self) -> tuple[str, str]:
        return self.system or "", self.code


@dataclass
class Candidate:
    """One proposed standard code with its score and the parts it is made of."""

    system: str
    version: str | None
    code: str
    display: str
    score: float
    parts: dict[str, float] = field(default_factory=dict)
    matched: list[str] = field(default_factory=list)  # the candidate tokens the local name met

    def explain(self) -> str:
        return ", ".join(f"{name} {value:.2f}" for name, value in self.parts.items())


@dataclass
class Query:
    """A local concept read once: its tokens as the index resolves them, specimen, unit, scale."""

    local: LocalConcept
    tokens: tuple[str, ...]
    resolved: list[ResolvedToken]
    specimens: frozenset[str]
    unit_property: str | None
    unit: str | None
    scale: str | None
    weights: list[float] = field(default_factory=list)  # of each resolved token, in the index
    seen: frozenset[str] = frozenset()  # every index token the query resolved to


def read_query(index: CandidateIndex, local: LocalConcept) -> Query:
    found = normalise.tokens(local.display)
    unit = normalise.ucum_unit(local.unit) if local.unit else None
    unit_property = normalise.unit_property(local.unit) if local.unit else None
    scale = None
    if unit_property:
        scale = "Qn"
    elif _ORDINAL_WORDS & set(found):
        scale = "Ord"
    elif _NOMINAL_WORDS & set(found):
        scale = "Nom"
    resolved = [index.resolve(token) for token in dict.fromkeys(found)]
    weights = [index.weight(r.token) for r in resolved]
    seen = frozenset(token for r in resolved for token, _ in r.matched)
    return Query(local, found, resolved, normalise.specimens(found), unit_property, unit, scale, weights, seen)


def score(index: CandidateIndex, query: Query, concept: IndexedConcept) -> Candidate:
    parts: dict[str, float] = {}
    display, matched = _display(index, query, concept)
    parts["display"] = display
    if query.specimens and concept.specimens:
        parts["specimen"] = _overlap(query.specimens, concept.specimens)
    if query.unit_property and concept.property:
        fits = normalise.property_matches(query.unit_property, concept.property)
        parts["unit"] = 1.0 if query.unit in concept.units or (fits and not concept.units) else 0.8 if fits else 0.0
    if query.scale and concept.scale:
        parts["scale"] = 1.0 if query.scale == concept.scale else 0.0
    if index.ranked:
        parts["common"] = max(0.0, 1.0 - math.log(concept.rank) / _RANK_SCALE) if concept.rank else 0.0
    if concept.codable is not None:
        parts["codable"] = 1.0 if concept.codable else 0.0
    if concept.status is not None:
        parts["status"] = 1.0 if concept.status == "active" else 0.0
    weight = sum(WEIGHTS[name] for name in parts)
    total = sum(WEIGHTS[name] * value for name, value in parts.items()) / weight
    rounded = {name: round(value, 3) for name, value in parts.items()}
    return Candidate(index.system, index.version, concept.code, concept.display, round(total, 4), rounded, matched)


def _display(index: CandidateIndex, query: Query, concept: IndexedConcept) -> tuple[float, list[str]]:
    recall, matched = _recall(index, query, concept.tokens)
    best_name = max(_agreement(index, query, name) for name in (concept.name_tokens, *concept.variants))
    likeness = fuzz.token_set_ratio(" ".join(query.tokens), " ".join(concept.name_tokens)) / 100
    a, b, c = _DISPLAY_PARTS
    return a * recall + b * best_name + c * likeness, matched


def _recall(index: CandidateIndex, query: Query, tokens: tuple[str, ...] | set[str]) -> tuple[float, list[str]]:
    """The share of the local name's weight that `tokens` cover (and the tokens that did)."""
    local_weight = covered = 0.0
    matched: list[str] = []
    for resolved, weight in zip(query.resolved, query.weights, strict=True):
        local_weight += weight
        hits = [(token, likeness) for token, likeness in resolved.matched if token in tokens]
        if hits:
            covered += weight * max(likeness for _, likeness in hits)
            matched.extend(token for token, _ in hits)
    return (covered / local_weight if local_weight else 0.0), matched


def _agreement(index: CandidateIndex, query: Query, name: tuple[str, ...]) -> float:
    """How well one full name of the candidate and the local name say the same thing: the
    harmonic mean of how much of each the other covers."""
    recall, _ = _recall(index, query, name)
    total = covered = 0.0
    for token in dict.fromkeys(name):
        if token not in normalise.FREE_TOKENS:
            weight = index.weight(token)
            total += weight
            if token in query.seen:
                covered += weight
    precision = covered / total if total else 0.0
    return 2 * recall * precision / (recall + precision) if recall + precision else 0.0


def _overlap(local: frozenset[str], candidate: frozenset[str]) -> float:
    return len(local & candidate) / len(local | candidate)


def rank(index: CandidateIndex, local: LocalConcept, count: int = 5, pool: int = 200) -> list[Candidate]:
    """The `count` best candidates for `local`, best first (ties by code)."""
    query = read_query(index, local)
    positions = index.retrieve(query.resolved, pool)
    scored = [score(index, query, index.concepts[position]) for position in positions]
    scored.sort(key=lambda c: (-c.score, c.code))
    return scored[:count]
