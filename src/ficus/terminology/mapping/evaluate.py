"""Precision of the suggestions on a labelled sample: local codes with the standard code a
person chose for each, independently of the assistant."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from ficus.terminology.mapping.score import LocalConcept
from ficus.terminology.mapping.suggest import MappingAssistant


@dataclass
class Precision:
    at_1: float
    at_3: float
    total: int
    ms_per_code: float
    misses: list[str] = field(default_factory=list)  # one line per code whose label was not ranked first


def evaluate(assistant: MappingAssistant, rows: Iterable[dict[str, str]], target: str, source_system: str) -> Precision:
    """`rows` carry code, display, optional unit, and expected (the right target code)."""
    labelled = [(LocalConcept(r["code"], r["display"], (r.get("unit") or "").strip() or None, source_system), r["expected"].strip())
                for r in rows]
    assistant.target(target)  # build the index before the clock starts
    started = time.perf_counter()
    suggestions = assistant.suggest([local for local, _ in labelled], target, 3)
    elapsed = time.perf_counter() - started
    first = third = 0
    misses = []
    for (local, expected), suggestion in zip(labelled, suggestions, strict=True):
        codes = [candidate.code for candidate in suggestion.candidates]
        first += codes[:1] == [expected]
        third += expected in codes
        if codes[:1] != [expected]:
            misses.append(f"{local.code} {local.display!r}: expected {expected}, ranked {', '.join(codes) or 'nothing'}")
    total = len(labelled)
    return Precision(first / total if total else 0.0, third / total if total else 0.0, total,
                     1000 * elapsed / total if total else 0.0, misses)
