"""Display languages: `displayLanguage` / `Accept-Language` preference lists and the display a
concept shows in them.

A list such as `de, en;q=0.5` is tried in order; `*` allows the code system's own display as a
fallback, and `*;q=0` forbids it (a "hard" request: no display rather than one in another
language). A plain list without `*` falls back softly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ficus.terminology.model import Concept, Designation

TERM_MAINT = "http://terminology.hl7.org/CodeSystem/hl7TermMaintInfra"
PREFERRED_FOR_LANGUAGE = {"system": TERM_MAINT, "code": "preferredForLanguage", "display": "Preferred For Language"}


@dataclass(frozen=True)
class Languages:
    """A parsed preference list, best first (entries with q=0 dropped, `*` kept apart)."""

    tags: tuple[str, ...] = ()
    hard: bool = False
    source: str | None = None
    ranges: tuple[tuple[str, float], ...] = field(default=())

    def __bool__(self) -> bool:
        return bool(self.tags)

    @property
    def text(self) -> str | None:
        """The list as echoed in expansion parameters."""
        if self.source is None:
            return None
        if ";" not in self.source:
            return self.source
        parts = []
        for tag, q in self.ranges:
            parts.append(tag if q == 1 else f"{tag}; q={q:g}")
        return ", ".join(parts)


def parse_languages(value: str | None) -> Languages:
    if not value or not value.strip():
        return Languages()
    ranges: list[tuple[str, float]] = []
    for part in value.split(","):
        pieces = [p.strip() for p in part.split(";")]
        tag = pieces[0]
        if not tag:
            continue
        q = 1.0
        for piece in pieces[1:]:
            if piece.startswith("q="):
                try:
                    q = float(piece[2:])
                except ValueError:
                    q = 0.0
        ranges.append((tag, q))
    ordered = sorted(ranges, key=lambda r: -r[1])
    tags = tuple(tag for tag, q in ordered if q > 0 and tag != "*")
    hard = any(tag == "*" and q == 0 for tag, q in ranges)
    return Languages(tags, hard, value, tuple(ranges))


def language_matches(wanted: str, found: str | None) -> bool:
    """`de` matches `de` and `de-CH`; comparison ignores case."""
    if not found:
        return False
    wanted, found = wanted.lower(), found.lower()
    return found == wanted or found.startswith(wanted + "-")


@dataclass
class Shown:
    """The display a concept shows for a language preference."""

    display: str | None
    used: Designation | None = None  # the designation that became the display
    switched: bool = False  # the display is not the code system's own


def display_for(concept: Concept, system_language: str | None, languages: Languages) -> Shown:
    if not languages:
        return Shown(concept.display)
    for tag in languages.tags:
        if system_language and language_matches(tag, system_language):
            return Shown(concept.display)
        exact = [d for d in concept.designations if d.language and d.language.lower() == tag.lower()]
        close = exact or [d for d in concept.designations if language_matches(tag, d.language)]
        if close:
            return Shown(close[0].value, close[0], True)
        if not system_language and concept.display:
            return Shown(concept.display)
    if languages.hard:
        return Shown(None, None, True)
    return Shown(concept.display)


def designations_for(concept: Concept, system_language: str | None, shown: Shown) -> list[Designation]:
    """The designations an expansion lists next to the display it shows."""
    found: list[Designation] = []
    if shown.switched and concept.display:
        found.append(Designation(concept.display, system_language, PREFERRED_FOR_LANGUAGE))
    found.extend(d for d in concept.designations if d is not shown.used)
    return found
