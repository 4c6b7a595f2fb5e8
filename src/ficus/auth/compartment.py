"""Which resources a patient-context token may see: the Patient compartment and scope queries.

`PatientCompartment.contains(resource, patient_id)` answers from the resource itself, with the
reference parameters the R4 Patient CompartmentDefinition lists for its type, evaluated by the
same extractors the search index uses; so it agrees with compartment search
(`GET /Patient/[id]/[type]`). `matches_query` checks a granular scope's query
(`category=system|code`) against one resource.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

from ficus.spec import Definitions
from ficus.store.indexing import compile_expression, parse_reference

Extractor = Callable[[Any], list[Any]]


class PatientCompartment:
    """Membership of resources in a Patient's compartment.

    References count as the search index counts them: relative ones (`Patient/a`) and absolute
    ones under this server's `base_url`; `http://elsewhere/fhir/Patient/a` is another server's
    patient, never ours.
    """

    def __init__(self, definitions: Definitions, base_url: str | None = None) -> None:
        self.definitions = definitions
        self.members: dict[str, list[str]] = definitions.compartments.get("Patient", {})
        self.local_prefix = base_url.rstrip("/") + "/" if base_url else None

    def can_contain(self, res_type: str) -> bool:
        """Whether resources of `res_type` can be in a Patient compartment at all."""
        return res_type == "Patient" or bool(self.members.get(res_type))

    def member_types(self) -> list[str]:
        return sorted({t for t, params in self.members.items() if params} | {"Patient"})

    def contains(self, resource: dict, patient_id: str) -> bool:
        res_type = resource.get("resourceType")
        if not isinstance(res_type, str):
            return False
        if res_type == "Patient" and resource.get("id") == patient_id:
            return True
        return patient_id in self.patients_of(resource)

    def patients_of(self, resource: dict) -> set[str]:
        """The ids of the Patients whose compartment holds `resource` (by its references)."""
        res_type = resource.get("resourceType")
        found: set[str] = set()
        if res_type == "Patient" and isinstance(resource.get("id"), str):
            found.add(resource["id"])
        for extractor in self._extractors(res_type) if isinstance(res_type, str) else ():
            for value in extractor(resource):
                reference = value.get("reference") if isinstance(value, dict) else None
                target_type, target_id = self.target(reference)
                if target_type == "Patient" and target_id:
                    found.add(target_id)
        return found

    def target(self, reference: Any) -> tuple[str | None, str | None]:
        """(type, id) of a reference to a resource on this server, else (None, None)."""
        if not isinstance(reference, str) or not reference or reference.startswith("#"):
            return None, None
        if "://" in reference:
            if not self.local_prefix or not reference.startswith(self.local_prefix):
                return None, None
            reference = reference[len(self.local_prefix):]
        return parse_reference(reference)

    @functools.lru_cache(maxsize=256)  # noqa: B019 - one instance per process, bounded
    def _extractors(self, res_type: str) -> tuple[Extractor, ...]:
        params = self.definitions.search_parameters_for(res_type)
        extractors: list[Extractor] = []
        for name in self.members.get(res_type, ()):
            param = params.get(name)
            if param is not None and param.expression:
                extractors += compile_expression(res_type, param.expression, self.definitions)
        return tuple(extractors)


class QueryMatcher:
    """Evaluates a granular scope's query (search parameters and values) on one resource.

    Token, reference and string parameters are understood (comma means OR, each pair must
    match); anything else does not match, so an unsupported restriction denies rather than
    leaks.
    """

    def __init__(self, definitions: Definitions) -> None:
        self.definitions = definitions

    def matches(self, resource: dict, query: Iterable[tuple[str, str]]) -> bool:
        res_type = resource.get("resourceType")
        if not isinstance(res_type, str):
            return False
        return all(self._pair_matches(res_type, resource, name, value) for name, value in query)

    def _pair_matches(self, res_type: str, resource: dict, name: str, value: str) -> bool:
        if ":" in name or "." in name:
            return False
        if name == "_id":
            return resource.get("id") in value.split(",")
        param = self.definitions.search_parameters_for(res_type).get(name)
        if param is None or not param.expression:
            return False
        values = [v for extractor in self._extractors(res_type, name) for v in extractor(resource)]
        wanted = value.split(",")
        if param.type == "token":
            return any(_token_matches(v, w) for v in values for w in wanted)
        if param.type == "reference":
            return any(_reference_matches(v, w) for v in values for w in wanted)
        if param.type == "string":
            return any(_string_matches(v, w) for v in values for w in wanted)
        return False

    @functools.lru_cache(maxsize=256)  # noqa: B019
    def _extractors(self, res_type: str, name: str) -> tuple[Extractor, ...]:
        param = self.definitions.search_parameters_for(res_type)[name]
        return tuple(compile_expression(res_type, param.expression, self.definitions)) if param.expression else ()


def _codings(value: Any) -> list[tuple[str | None, str | None]]:
    if isinstance(value, dict):
        if "coding" in value:
            return [(c.get("system"), c.get("code")) for c in value["coding"] if isinstance(c, dict)]
        if "code" in value or "system" in value:
            return [(value.get("system"), value.get("code"))]
        if "value" in value:  # Identifier, ContactPoint
            return [(value.get("system"), value.get("value"))]
        return []
    if isinstance(value, bool):
        return [(None, "true" if value else "false")]
    if isinstance(value, str):
        return [(None, value)]
    return []


def _token_matches(value: Any, wanted: str) -> bool:
    if "|" in wanted:
        system, _, code = wanted.partition("|")
        return any(
            (s or "") == system and (not code or c == code) if system else (not s and c == code)
            for s, c in _codings(value)
        )
    return any(c == wanted for _, c in _codings(value))


def _reference_matches(value: Any, wanted: str) -> bool:
    reference = value.get("reference") if isinstance(value, dict) else None
    if not isinstance(reference, str):
        return False
    target = parse_reference(reference)
    wanted_target = parse_reference(wanted) if "/" in wanted else (None, wanted)
    return target[1] == wanted_target[1] and (wanted_target[0] is None or wanted_target[0] == target[0])


def _string_matches(value: Any, wanted: str) -> bool:
    from ficus.store.indexing import normalize_string

    texts: list[str] = []
    if isinstance(value, str):
        texts.append(value)
    elif isinstance(value, dict):
        texts += [v for v in value.values() if isinstance(v, str)]
        texts += [v for vs in value.values() if isinstance(vs, list) for v in vs if isinstance(v, str)]
    target = normalize_string(wanted)
    return any(normalize_string(text).startswith(target) for text in texts)
