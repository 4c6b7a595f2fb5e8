"""Accepted mappings as a FHIR ConceptMap (one group per source and target system), merged into
the map already stored at the same canonical URL and written through the REST interactions,
so `$translate` and the HL7 v2 bridge use it at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ficus import fhirjson
from ficus.api.exchange import FhirRequest
from ficus.fhirtime import format_instant, now_micros
from ficus.policy import Caller
from ficus.search import search_versions
from ficus.terminology.mapping.review import Accepted
from ficus.terminology.mapping.suggest import MappingAssistant, MappingError

if TYPE_CHECKING:
    from ficus.api.interactions import Interactions

ASSISTANT_CALLER = Caller(subject="ficus-terminology-map", scopes=frozenset({"system/ConceptMap.cruds"}), client_id="ficus-cli")


def map_id(source_system: str, target_system: str) -> str:
    """A resource id for the map from one local system to one standard (FHIR id rules)."""
    words = re.sub(r"[^A-Za-z0-9]+", "-", f"{source_system.rsplit('/', 1)[-1]}-to-{target_system.rsplit('/', 1)[-1]}")
    return words.strip("-")[:64] or "local-map"


def check_targets(assistant: MappingAssistant, accepted: list[Accepted]) -> None:
    """Every accepted target code exists in its code system; displays are taken from there. A
    row whose code was changed by hand (its display no longer the code's) loses the score
    comment, which described another candidate."""
    for number, mapping in enumerate(accepted, start=1):
        index = assistant.target(mapping.target_system)
        concept = index.by_code.get(mapping.target_code)
        if concept is None:
            raise MappingError(400, f"Accepted mapping {number} ({mapping.code}): {mapping.target_code} is not an active code "
                                    f"of {index.system}", mapping.code)
        if mapping.target_display and mapping.target_display != concept.display:
            mapping.comment = None
        mapping.target_display = concept.display


def build_concept_map(accepted: Iterable[Accepted], map_url: str, res_id: str, existing: dict | None = None,
                      name: str | None = None) -> dict:
    """The ConceptMap holding `existing`'s elements with the accepted ones laid over them (an
    accepted code replaces what the map said for that code)."""
    concept_map: dict[str, Any] = {k: v for k, v in existing.items() if k != "text"} if existing else {
        "resourceType": "ConceptMap", "id": res_id, "url": map_url, "status": "active",
        "name": name or re.sub(r"[^A-Za-z0-9]", "", res_id.title()) or "LocalCodeMap",
        "title": f"Local codes mapped with the Ficus mapping assistant ({res_id})",
    }
    concept_map["id"] = res_id
    concept_map["date"] = format_instant(now_micros())[:10]
    groups: dict[tuple[str, str], dict] = {}
    for group in concept_map.get("group", []):
        groups[(group.get("source", ""), group.get("target", ""))] = {**group, "element": list(group.get("element", []))}
    elements: dict[tuple[str, str, str], dict] = {}
    for mapping in accepted:
        element = elements.setdefault((mapping.source_system, mapping.target_system, mapping.code), {"code": mapping.code})
        if mapping.display:
            element["display"] = mapping.display
        target = {"code": mapping.target_code, "equivalence": mapping.equivalence}
        if mapping.target_display:
            target["display"] = mapping.target_display
        if mapping.comment:
            target["comment"] = mapping.comment
        element.setdefault("target", []).append(target)
    for (source, target_system, code), element in elements.items():
        group = groups.setdefault((source, target_system), {"source": source, "target": target_system, "element": []})
        group["element"] = [*(e for e in group["element"] if e.get("code") != code), element]
    concept_map["group"] = list(groups.values())
    return concept_map


def stored_map(interactions: Interactions, map_url: str) -> dict | None:
    with interactions.repository.reading() as tx:
        found, _ = search_versions(tx, interactions.repository.definitions, "ConceptMap", [("url", map_url)], 2, 0)
    if len(found) > 1:
        raise MappingError(409, f"More than one ConceptMap has the url {map_url}", "url")
    return fhirjson.decode(found[0].content) if found and found[0].content else None


def save_concept_map(interactions: Interactions, accepted: list[Accepted], map_url: str | None = None,
                     res_id: str | None = None, name: str | None = None, caller: Caller = ASSISTANT_CALLER) -> dict:
    """Check, merge and store the accepted mappings; the stored ConceptMap is returned."""
    if not accepted:
        raise MappingError(400, "No mapping is accepted: mark rows in the accept column")
    assistant = MappingAssistant(interactions.repository)
    check_targets(assistant, accepted)
    first = accepted[0]
    base = (interactions.settings.base_url or "").rstrip("/")
    if map_url is None:
        res_id = res_id or map_id(first.source_system, first.target_system)
        map_url = f"{base}/ConceptMap/{res_id}" if base else f"urn:ficus:conceptmap:{res_id}"
    existing = stored_map(interactions, map_url)
    res_id = res_id or (existing or {}).get("id") or map_id(first.source_system, first.target_system)
    concept_map = build_concept_map(accepted, map_url, res_id, existing, name)
    response = interactions.handle(FhirRequest("PUT", f"ConceptMap/{res_id}", body=fhirjson.encode(concept_map), caller=caller))
    if response.status not in (200, 201):
        body = response.body if isinstance(response.body, dict) else fhirjson.decode(response.body or b"{}")
        details = "; ".join(i.get("diagnostics", "") for i in body.get("issue", []))
        raise MappingError(response.status, f"The ConceptMap was not stored: {details}")
    return concept_map
