"""The PATCH engines of FHIR R4 (http.html#patch): JSON Patch and FHIRPath Patch.

Both return a patched deep copy of the resource and raise `FhirError` (400 for a malformed patch,
422 for a patch that does not apply to this resource).
"""

from ficus.patch.fhirpath_patch import apply_fhirpath_patch
from ficus.patch.json_patch import apply_json_patch

__all__ = ["apply_fhirpath_patch", "apply_json_patch"]
