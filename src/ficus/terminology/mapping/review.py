"""The review file: suggestions as CSV, one row per candidate (score, the parts of the score, and
for the best one its `margin` over the second), with an `accept` column a person marks (`x`,
`y`, `yes`, `1`) and may correct (another target code, an equivalence); read back as the
accepted mappings.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from ficus.terminology.mapping.suggest import MappingError, Suggestion

COLUMNS = (
    "accept", "source_system", "code", "display", "unit", "seen", "rank", "target_system", "target_code",
    "target_display", "score", "margin", "parts", "equivalence",
)
ACCEPT_MARKS = frozenset({"x", "y", "yes", "1", "true", "ok", "accept"})
# R4 ConceptMapEquivalence
EQUIVALENCES = frozenset({
    "relatedto", "equivalent", "equal", "wider", "subsumes", "narrower", "specializes", "inexact", "unmatched", "disjoint",
})


@dataclass
class Accepted:
    """One accepted mapping: local code -> standard code."""

    source_system: str
    code: str
    display: str | None
    target_system: str
    target_code: str
    target_display: str | None
    equivalence: str = "equivalent"
    comment: str | None = None


def write_review(suggestions: list[Suggestion], target_system: str, preselect: float | None = None) -> str:
    """The review CSV. With `preselect`, each code's best candidate at or above that score is
    already marked; a code without candidates gets an empty row to fill in by hand."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for suggestion in suggestions:
        local = suggestion.local
        head = [local.system or "", local.code, local.display, local.unit or "", local.count]
        if not suggestion.candidates:
            writer.writerow(["", *head, "", target_system, "", "", "", "", "", "equivalent"])
        for position, candidate in enumerate(suggestion.candidates, start=1):
            marked = preselect is not None and position == 1 and candidate.score >= preselect
            writer.writerow([
                "x" if marked else "", *head, position, candidate.system, candidate.code, candidate.display,
                f"{candidate.score:.3f}", _margin(suggestion, position), candidate.explain(), "equivalent",
            ])
    return out.getvalue()


def _margin(suggestion: Suggestion, position: int) -> str:
    """For the best candidate, its lead over the second: a small lead is a choice to look at."""
    if position != 1 or len(suggestion.candidates) < 2:
        return ""
    return f"{suggestion.candidates[0].score - suggestion.candidates[1].score:.3f}"


def read_review(text: str) -> list[Accepted]:
    """The marked rows of a review CSV, checked; a bad row raises MappingError naming it."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    missing = [c for c in ("accept", "source_system", "code", "target_system", "target_code") if c not in (reader.fieldnames or [])]
    if missing:
        raise MappingError(400, f"The review file lacks the column(s) {', '.join(missing)}", "row 1")
    accepted: list[Accepted] = []
    for number, row in enumerate(reader, start=2):
        if (row.get("accept") or "").strip().lower() not in ACCEPT_MARKS:
            continue
        values = {key: (value or "").strip() for key, value in row.items() if key}
        for column in ("source_system", "code", "target_system", "target_code"):
            if not values.get(column):
                raise MappingError(400, f"Row {number} is accepted but has no {column}", f"row {number}")
        equivalence = values.get("equivalence") or "equivalent"
        if equivalence not in EQUIVALENCES:
            raise MappingError(400, f"Row {number}: {equivalence!r} is not a ConceptMap equivalence "
                                    f"({', '.join(sorted(EQUIVALENCES))})", f"row {number}")
        comment = f"Accepted suggestion (score {values['score']}: {values['parts']})" if values.get("score") else None
        accepted.append(Accepted(
            values["source_system"], values["code"], values.get("display") or None, values["target_system"],
            values["target_code"], values.get("target_display") or None, equivalence, comment,
        ))
    return accepted
