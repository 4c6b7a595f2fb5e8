"""The CapabilityStatement (`GET /metadata`), generated from what this server implements."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from ficus import __version__
from ficus.auth.discovery import capability_security
from ficus.fhirtime import format_instant, now_micros
from ficus.operations import REGISTRY
from ficus.search.query import is_known_parameter

if TYPE_CHECKING:
    from ficus.api.interactions import Interactions

TYPE_INTERACTIONS = ("read", "vread", "update", "patch", "delete", "history-instance", "history-type", "create", "search-type")
SYSTEM_INTERACTIONS = ("transaction", "batch", "history-system", "search-system")
RESULT_PARAMETERS = ("_sort", "_count", "_total", "_summary", "_elements", "_include", "_revinclude")


def capability_statement(interactions: Interactions) -> dict:
    generation = getattr(interactions.definitions, "generation", 0)  # bumped when SearchParameters change
    return _build(interactions.settings.base_url, interactions, generation)


@functools.lru_cache(maxsize=4)
def _build(base_url: str, interactions: Interactions, generation: int) -> dict:
    definitions = interactions.definitions
    resources = []
    for res_type in sorted(definitions.resource_types):
        params = definitions.search_parameters_for(res_type)
        resources.append({
            "type": res_type,
            "profile": f"http://hl7.org/fhir/StructureDefinition/{res_type}",
            "interaction": [{"code": code} for code in TYPE_INTERACTIONS],
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": True,
            "conditionalCreate": True,
            "conditionalRead": "not-supported",
            "conditionalUpdate": True,
            "conditionalDelete": "single",
            "searchInclude": ["*", *sorted(f"{res_type}:{code}" for code, p in params.items() if p.type == "reference")],
            "searchRevInclude": ["*"],
            "searchParam": [
                {"name": code, "definition": param.url, "type": param.type}
                for code, param in sorted(params.items())
                if is_known_parameter(definitions, res_type, code)
            ] + [{"name": "_list", "type": "token"}],
        })
    statement = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": format_instant(now_micros()),
        "publisher": "Ficus",
        "kind": "instance",
        "software": {"name": "Ficus", "version": __version__},
        "implementation": {"description": "Ficus FHIR R4 server", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "patchFormat": ["application/json-patch+json", "application/fhir+json"],
        "rest": [{
            "mode": "server",
            "resource": resources,
            "interaction": [{"code": code} for code in SYSTEM_INTERACTIONS],
            "operation": [
                {"name": name, "definition": found[0].definition or f"{base_url}/OperationDefinition/{name}"}
                for name, found in sorted(REGISTRY.items())
            ],
            "compartment": [
                f"http://hl7.org/fhir/CompartmentDefinition/{name.lower()}" for name in sorted(definitions.compartments)
            ],
            "searchParam": [
                {"name": "_id", "type": "token"},
                {"name": "_lastUpdated", "type": "date"},
            ],
        }],
    }
    security = capability_security(base_url, interactions.settings.auth, interactions.settings.auth_issuer)
    if security is not None:
        statement["rest"][0]["security"] = security
    return statement
