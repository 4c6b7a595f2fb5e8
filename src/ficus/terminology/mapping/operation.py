"""`ConceptMap/$suggest-mappings`: candidate standard codes for local codes, each with its score
and the parts of the score, plus a draft ConceptMap of the best candidates a client can review
and store with a plain `PUT`. Importing this module registers the operation.

Inputs (GET query or POSTed Parameters): `targetSystem` (URI or loinc/snomed/rxnorm/icd10cm),
`targetVersion`, `sourceSystem` (the local system of `concept`s that name none), `concept`
(repeating; parts `code`, `display`, `unit`, `system`), or `source` = `resources` | `messages`
(the local codes found in stored resources, or in stored v2 messages, narrowed by `facility`);
`count` (candidates per code, default 3), `threshold` (lowest score the draft map takes, default 0.8),
`offset` and `limit` (a page of the local codes, most often seen first; default 0 and 200, at most 1000).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ficus.api.exchange import FhirResponse
from ficus.operations import Invocation, operation
from ficus.outcome import FhirError
from ficus.terminology.mapping import sources
from ficus.terminology.mapping.conceptmap import build_concept_map, map_id
from ficus.terminology.mapping.review import Accepted
from ficus.terminology.mapping.score import Candidate, LocalConcept
from ficus.terminology.mapping.suggest import MappingAssistant, MappingError, Suggestion

DEFINITION = "http://ficus.dev/fhir/OperationDefinition/ConceptMap-suggest-mappings"
DEFAULT_THRESHOLD = 0.8
DEFAULT_LIMIT, MAX_LIMIT = 200, 1000
_SOURCES = ("resources", "messages")


@operation("suggest-mappings", type_level=True, resource_types=("ConceptMap",), definition=DEFINITION)
def suggest_mappings(invocation: Invocation) -> FhirResponse:
    """ConceptMap/$suggest-mappings."""
    assistant = MappingAssistant(invocation.interactions.repository)
    target = _text(invocation, "targetSystem")
    if not target:
        raise FhirError.of(400, "required", "targetSystem is required (a code system URI, or loinc, snomed, rxnorm, icd10cm)",
                           "Parameters.parameter[targetSystem]")
    count = _number(invocation, "count", 3, int)
    threshold = _number(invocation, "threshold", DEFAULT_THRESHOLD, float)
    offset = _number(invocation, "offset", 0, int)
    limit = _number(invocation, "limit", DEFAULT_LIMIT, int)
    if limit > MAX_LIMIT:
        raise FhirError.of(400, "too-costly", f"limit is at most {MAX_LIMIT} local codes per call; page with offset",
                           "Parameters.parameter[limit]")
    try:
        assistant.target(target, _text(invocation, "targetVersion"))
        local_concepts = _local_concepts(invocation, assistant)
        page = local_concepts[offset:offset + limit]
        suggestions = assistant.suggest(page, target, count, _text(invocation, "targetVersion"))
    except MappingError as error:
        raise FhirError.of(error.status, "not-found" if error.status == 404 else "invalid", str(error),
                           f"Parameters.parameter[{error.where}]" if error.where else None) from None
    parameters: list[dict] = [{"name": "total", "valueInteger": len(local_concepts)}]
    parameters.extend(_suggestion(s) for s in suggestions)
    draft = _draft(invocation, suggestions, threshold)
    if draft is not None:
        parameters.append({"name": "conceptMap", "resource": draft})
    return FhirResponse(200, {"resourceType": "Parameters", "parameter": parameters})


def _local_concepts(invocation: Invocation, assistant: MappingAssistant) -> list[LocalConcept]:
    default_system = _text(invocation, "sourceSystem")
    source = _text(invocation, "source")
    given = invocation.get_all("concept")
    if source is not None and source not in _SOURCES:
        raise MappingError(400, f"source must be one of {', '.join(_SOURCES)}, not {source!r}", "source")
    if source is not None:
        _require_whole_server(invocation)
    if source == "resources":
        found = sources.from_resources(assistant.repository.database, assistant.known_systems())
    elif source == "messages":
        found = sources.from_messages(assistant.repository.database, _text(invocation, "facility"))
    else:
        found = [_concept(part, position, default_system) for position, part in enumerate(given)]
    if not found:
        raise MappingError(400, "Nothing to map: give concept parameters, or source=resources|messages "
                                "(no local codes were found there)", "concept" if source is None else "source")
    return found


def _require_whole_server(invocation: Invocation) -> None:
    """Stored resources and v2 messages are read across every patient: the policy must let the
    caller search the whole server without restriction (a patient-context token may not)."""
    if invocation.interactions.policy.search_restriction(invocation.request.caller, "*") is not None:
        raise FhirError.of(403, "forbidden", "source=resources|messages reads codes across every patient's data: it needs "
                                             "unrestricted search of every type (e.g. system/*.s)", "Parameters.parameter[source]")


def _concept(parameter: Any, position: int, default_system: str | None) -> LocalConcept:
    where = f"concept[{position}]"
    if not isinstance(parameter, dict) or not isinstance(parameter.get("part"), list):
        raise MappingError(400, "Each concept needs parts code and display", where)
    parts = {p.get("name"): next((v for k, v in p.items() if k.startswith("value")), None)
             for p in parameter["part"] if isinstance(p, dict)}
    code, display = parts.get("code"), parts.get("display")
    if not isinstance(code, str) or not code or not isinstance(display, str) or not display:
        raise MappingError(400, "Each concept needs parts code and display (strings)", where)
    system = parts.get("system") or default_system
    if not isinstance(system, str) or not system:
        raise MappingError(400, "A concept needs a system part, or give sourceSystem", where)
    unit = parts.get("unit")
    return LocalConcept(code, display, unit if isinstance(unit, str) and unit else None, system)


def _suggestion(suggestion: Suggestion) -> dict:
    local = suggestion.local
    source: dict[str, str] = {"system": local.system or "", "code": local.code, "display": local.display}
    parts: list[dict] = [{"name": "source", "valueCoding": source}]
    if local.unit:
        parts.append({"name": "unit", "valueString": local.unit})
    if local.facility:
        parts.append({"name": "facility", "valueString": local.facility})
    parts.append({"name": "seen", "valueInteger": local.count})
    parts.extend(_candidate(candidate, position) for position, candidate in enumerate(suggestion.candidates, start=1))
    return {"name": "suggestion", "part": parts}


def _candidate(candidate: Candidate, position: int) -> dict:
    coding = {"system": candidate.system, "code": candidate.code, "display": candidate.display}
    if candidate.version:
        coding = {"system": candidate.system, "version": candidate.version, "code": candidate.code, "display": candidate.display}
    parts: list[dict] = [
        {"name": "rank", "valueInteger": position},
        {"name": "concept", "valueCoding": coding},
        {"name": "score", "valueDecimal": Decimal(f"{candidate.score:.3f}")},
    ]
    for name, value in candidate.parts.items():
        parts.append({"name": "component", "part": [
            {"name": "name", "valueCode": name}, {"name": "value", "valueDecimal": Decimal(f"{value:.3f}")}]})
    return {"name": "candidate", "part": parts}


def _draft(invocation: Invocation, suggestions: list[Suggestion], threshold: float) -> dict | None:
    """The best candidate of each code at or above `threshold`, as a draft ConceptMap."""
    accepted = [
        Accepted(s.local.system or "", s.local.code, s.local.display, c.system, c.code, c.display, "equivalent",
                 f"Suggested (score {c.score:.3f}: {c.explain()})")
        for s in suggestions for c in s.candidates[:1] if c.score >= threshold
    ]
    if not accepted:
        return None
    res_id = map_id(accepted[0].source_system, accepted[0].target_system)
    base = (invocation.interactions.settings.base_url or "").rstrip("/")
    draft = build_concept_map(accepted, f"{base}/ConceptMap/{res_id}" if base else f"urn:ficus:conceptmap:{res_id}", res_id)
    draft["status"] = "draft"
    return draft


def _text(invocation: Invocation, name: str) -> str | None:
    value = invocation.get(name)
    if value is not None and not isinstance(value, str):
        raise FhirError.of(400, "invalid", f"{name} must be a string", f"Parameters.parameter[{name}]")
    return value


def _number(invocation: Invocation, name: str, default: Any, kind: type) -> Any:
    value = invocation.get(name)
    if value is None:
        return default
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise FhirError.of(400, "invalid", f"{name} must be a number, not {value!r}", f"Parameters.parameter[{name}]") from None
    if number < 0:
        raise FhirError.of(400, "invalid", f"{name} must not be negative", f"Parameters.parameter[{name}]")
    return number
