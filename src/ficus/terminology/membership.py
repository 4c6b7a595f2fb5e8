"""Whether a code is in a value set, decided from the compose rules without expanding it.

An include matches a code when its system matches and the concept passes its concept list and
every filter, and the code is in every value set it imports; an exclude removes what it
matches. Code systems are resolved with the same version rules as `$expand`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ficus.outcome import FhirError
from ficus.terminology.context import split_canonical
from ficus.terminology.expand import Expander
from ficus.terminology.filters import FilterError, concept_matches
from ficus.terminology.issues import tx_error
from ficus.terminology.model import CodeSystemProvider


@dataclass(frozen=True)
class Candidate:
    """The code being tested, with the code system version the caller settled on."""

    system: str
    code: str
    provider: CodeSystemProvider | None


class Membership:
    def __init__(self, expander: Expander) -> None:
        self.expander = expander
        self._stack: list[str] = []

    def check_cycles(self, value_set: dict, path: tuple[str, ...] = ()) -> None:
        """Refuse a value set whose includes or excludes import it again (at any depth)."""
        key = value_set.get("url") or f"#{value_set.get('id', '')}"
        if key in path:
            raise tx_error(
                400, "processing", "vs-invalid",
                f"Found a circularity pointing to {key} processing ValueSet with pathway [{', '.join(path)}]",
                message_id="VALUESET_CIRCULAR_REFERENCE",
            )
        compose = value_set.get("compose") or {}
        for part in [*compose.get("include", []), *compose.get("exclude", [])]:
            for reference in part.get("valueSet", []):
                try:
                    imported = self._imported(value_set, reference)
                except FhirError:
                    continue
                self.check_cycles(imported, (*path, key))

    def contains(self, value_set: dict, candidate: Candidate) -> bool:
        key = value_set.get("url") or f"#{value_set.get('id', '')}"
        if key in self._stack:
            raise tx_error(
                400, "processing", "vs-invalid",
                f"Found a circularity pointing to {key} processing ValueSet with pathway [{', '.join(self._stack)}]",
                message_id="VALUESET_CIRCULAR_REFERENCE",
            )
        self._stack.append(key)
        try:
            return self._contains(value_set, candidate)
        finally:
            self._stack.pop()

    def _contains(self, value_set: dict, candidate: Candidate) -> bool:
        compose = value_set.get("compose")
        if not isinstance(compose, dict):
            expansion = value_set.get("expansion") or {}
            return any(self._in_contains(item, candidate) for item in expansion.get("contains", []))
        included = False
        for index, include in enumerate(compose.get("include", [])):
            if self._matches(value_set, include, candidate, f"ValueSet.compose.include[{index}]"):
                included = True
                break
        if not included:
            return False
        for index, exclude in enumerate(compose.get("exclude", [])):
            if self._matches(value_set, exclude, candidate, f"ValueSet.compose.exclude[{index}]"):
                return False
        if compose.get("inactive") is False and candidate.provider is not None:
            concept = candidate.provider.concept(candidate.code)
            if concept is not None and concept.inactive:
                return False
        return True

    def _in_contains(self, item: dict, candidate: Candidate) -> bool:
        if item.get("system") == candidate.system and item.get("code") == candidate.code:
            return True
        return any(self._in_contains(child, candidate) for child in item.get("contains", []))

    def _matches(self, value_set: dict, include: dict, candidate: Candidate, path: str) -> bool:
        system = include.get("system")
        references = include.get("valueSet", [])
        if not system and not references:
            return False
        if system and (system != candidate.system or not self._system_matches(include, candidate, path)):
            return False
        for reference in references:
            imported = self._imported(value_set, reference)
            if not self.contains(imported, candidate):
                return False
        return True

    def _system_matches(self, include: dict, candidate: Candidate, path: str) -> bool:
        provider = candidate.provider
        if provider is None:
            return False
        concept = provider.concept(candidate.code)
        if concept is None:
            return False
        listed = include.get("concept")
        if listed:
            codes = {item.get("code") for item in listed if isinstance(item, dict)}
            if not provider.case_sensitive:
                return concept.code.lower() in {c.lower() for c in codes if isinstance(c, str)}
            return concept.code in codes
        for index, condition in enumerate(include.get("filter", [])):
            value = condition.get("value")
            try:
                if not concept_matches(provider, concept, condition.get("property"), condition.get("op"), value if value != "" else None):
                    return False
            except FilterError as error:
                message_id = "UNABLE_TO_HANDLE_SYSTEM_FILTER_WITH_NO_VALUE" if error.kind == "no-value" else "FILTER_NOT_UNDERSTOOD"
                raise tx_error(400, "invalid", "vs-invalid", str(error), f"{path}.filter[{index}]", message_id) from error
        return True

    def _imported(self, value_set: dict, reference: str) -> dict:
        if reference.startswith("#"):
            for contained in value_set.get("contained", []):
                if isinstance(contained, dict) and contained.get("id") == reference[1:]:
                    return contained
        url, version = split_canonical(reference, None)
        version = version or self.expander.options.value_set_versions.get(url)
        found = self.expander.context.value_set(url, version)
        if found is None:
            raise tx_error(
                404, "not-found", "not-found",
                f"A definition for the value Set '{url}{'|' + version if version else ''}' could not be found",
                message_id="Unable_to_resolve_value_Set_",
            )
        return found
