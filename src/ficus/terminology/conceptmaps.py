"""`ConceptMap/$translate`, forward and reverse.

A translation looks through the named ConceptMap (or every one it can find: passed with the
call, stored, or shipped) for groups whose source and target systems fit the request. Forward,
each element for the code gives its targets; reverse (`reverse=true`, or R5's `targetCode`),
each target equal to the code gives its element. R5 `relationship` codes are accepted in maps
and answered as R4 `equivalence`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ficus.terminology.context import Context, split_canonical
from ficus.terminology.issues import tx_error

RELATIONSHIP_TO_EQUIVALENCE = {
    "related-to": "relatedto", "equivalent": "equivalent", "source-is-narrower-than-target": "wider",
    "source-is-broader-than-target": "narrower", "not-related-to": "unmatched",
}
UNMATCHED = frozenset({"unmatched", "disjoint"})


@dataclass
class TranslateRequest:
    code: str
    system: str | None
    reverse: bool = False
    target_system: str | None = None
    source_system: str | None = None
    url: str | None = None
    version: str | None = None
    concept_map: dict | None = None


def translate(context: Context, request: TranslateRequest) -> dict:
    maps = _maps(context, request)
    matches: list[dict] = []
    for concept_map in maps:
        origin = canonical(concept_map)
        for group in concept_map.get("group", []):
            source, target = group.get("source"), group.get("target")
            if request.reverse:
                if request.system and target and split_canonical(target, None)[0] != request.system:
                    continue
                if request.source_system and source and split_canonical(source, None)[0] != request.source_system:
                    continue
                matches.extend(_reverse(group, request, origin))
            else:
                if request.system and source and split_canonical(source, None)[0] != request.system:
                    continue
                if request.target_system and target and split_canonical(target, None)[0] != request.target_system:
                    continue
                matches.extend(_forward(group, request, origin))
    found = any(_equivalence(m) not in UNMATCHED for m in matches)
    parameters: list[dict] = [{"name": "result", "valueBoolean": found}]
    if not found:
        parameters.append({"name": "message", "valueString": f"No translations found for {request.system or ''}#{request.code}"})
    parameters.extend(matches)
    return {"resourceType": "Parameters", "parameter": parameters}


def _maps(context: Context, request: TranslateRequest) -> list[dict]:
    if request.concept_map is not None:
        return [request.concept_map]
    if request.url:
        found = context.concept_map(request.url, request.version)
        if found is None:
            raise tx_error(
                404, "not-found", "not-found", f"A definition for the ConceptMap '{request.url}' could not be found",
                message_id="Unable_to_resolve_ConceptMap",
            )
        return [found]
    return context.concept_maps()


def _forward(group: dict, request: TranslateRequest, origin: str) -> list[dict]:
    found = []
    for element in group.get("element", []):
        if element.get("code") != request.code:
            continue
        for target in element.get("target", []):
            equivalence = _target_equivalence(target)
            coding = {"system": group.get("target"), "code": target.get("code")}
            if target.get("display"):
                coding["display"] = target["display"]
            found.append(_match(coding, equivalence, origin, None))
    if not found and group.get("unmapped"):
        unmapped = group["unmapped"]
        if unmapped.get("mode") in ("provided", "fixed"):
            code = request.code if unmapped["mode"] == "provided" else unmapped.get("code")
            if code:
                found.append(_match({"system": group.get("target"), "code": code}, unmapped.get("equivalence", "inexact"), origin, None))
    return found


def _reverse(group: dict, request: TranslateRequest, origin: str) -> list[dict]:
    found = []
    for element in group.get("element", []):
        for target in element.get("target", []):
            if target.get("code") != request.code:
                continue
            source = {"system": group.get("source"), "code": element.get("code")}
            concept = {"system": group.get("target"), "code": target.get("code")}
            found.append(_match(concept, _target_equivalence(target), origin, source))
    return found


def _target_equivalence(target: dict) -> str:
    if target.get("equivalence"):
        return target["equivalence"]
    return RELATIONSHIP_TO_EQUIVALENCE.get(target.get("relationship", ""), "equivalent")


def _match(concept: dict, equivalence: str, origin: str, source: dict | None) -> dict:
    parts: list[dict] = [
        {"name": "equivalence", "valueCode": equivalence},
        {"name": "concept", "valueCoding": {k: v for k, v in concept.items() if v}},
        {"name": "originMap", "valueCanonical": origin},
    ]
    if source is not None:
        parts.append({"name": "source", "valueCoding": source})
    return {"name": "match", "part": parts}


def _equivalence(match: dict) -> str:
    for part in match.get("part", []):
        if part.get("name") == "equivalence":
            return part.get("valueCode", "")
    return ""


def canonical(resource: dict) -> str:
    url = resource.get("url", "")
    return f"{url}|{resource['version']}" if resource.get("version") else url
