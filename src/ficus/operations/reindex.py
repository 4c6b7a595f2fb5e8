"""`$reindex`: rebuild search index rows with the current SearchParameters (stored ones included)."""

from __future__ import annotations

from ficus.api.exchange import FhirResponse
from ficus.operations import Invocation, operation


@operation("reindex", system=True, type_level=True, affects_state=True)
def reindex(invocation: Invocation) -> FhirResponse:
    count = invocation.interactions.repository.reindex(invocation.res_type)
    return FhirResponse(200, {
        "resourceType": "Parameters",
        "parameter": [{"name": "count", "valueInteger": count}],
    })
