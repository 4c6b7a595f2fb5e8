"""`_summary` and `_elements`: the subset of a resource a client asked for."""

from __future__ import annotations

from ficus.outcome import FhirError
from ficus.spec import Definitions

SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}
_ALWAYS = ("resourceType", "id", "meta")


def wants_subset(summary: str | None, elements: str | None) -> bool:
    if summary not in (None, "false", "true", "text", "data", "count"):
        raise FhirError.of(400, "invalid", f"_summary must be true, text, data, count or false, not {summary!r}", "_summary")
    return bool(elements) or summary in ("true", "text", "data")


def subset(resource: dict, definitions: Definitions, summary: str | None, elements: str | None) -> dict:
    """A copy of `resource` reduced per `_summary`/`_elements`, tagged SUBSETTED."""
    res_type = resource.get("resourceType", "")
    info = definitions.types.get(res_type, {})
    mandatory = {
        name for name, element in definitions.children(res_type, res_type).items() if element.min > 0
    } if res_type in definitions.types else set()
    if elements:
        keep = {name.strip() for name in elements.split(",") if name.strip()} | mandatory
        shaped = {k: v for k, v in resource.items() if k in _ALWAYS or k in keep}
    elif summary == "true":
        keep = set(info.get("summary", ()))
        shaped = {k: v for k, v in resource.items() if k in _ALWAYS or k in keep}
    elif summary == "text":
        shaped = {k: v for k, v in resource.items() if k in _ALWAYS or k == "text" or k in mandatory}
    elif summary == "data":
        shaped = {k: v for k, v in resource.items() if k != "text"}
    else:
        return resource
    meta = dict(shaped.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), SUBSETTED]
    shaped["meta"] = meta
    return shaped
