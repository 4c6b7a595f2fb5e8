"""Publication status of the code systems and value sets an operation relies on: what clients
are warned about (draft, experimental, deprecated or withdrawn content)."""

from __future__ import annotations

from ficus.terminology.model import CodeSystemProvider

STANDARDS_STATUS = "http://hl7.org/fhir/StructureDefinition/structuredefinition-standards-status"


def _standards_status(resource: dict | None) -> str | None:
    for extension in (resource or {}).get("extension", []):
        if isinstance(extension, dict) and extension.get("url") == STANDARDS_STATUS:
            return extension.get("valueCode")
    return None


def code_system_warnings(provider: CodeSystemProvider) -> list[str]:
    """`deprecated`/`withdrawn` (standards status), `draft`, `experimental`."""
    found = []
    standards = _standards_status(provider.resource)
    if standards in ("deprecated", "withdrawn"):
        found.append(standards)
    if provider.status == "draft":
        found.append("draft")
    elif provider.experimental:
        found.append("experimental")
    return found


def value_set_warnings(value_set: dict) -> list[str]:
    standards = _standards_status(value_set)
    return [standards] if standards in ("deprecated", "withdrawn") else []
