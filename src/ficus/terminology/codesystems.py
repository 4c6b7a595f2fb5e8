"""Code systems defined by a CodeSystem resource (package, stored, or passed as `tx-resource`).

The concept tree is flattened once into a dictionary; parents come from nesting and from the
`parent`/`subsumedBy` properties, so both hierarchy styles answer `is-a` the same way.
Supplements add designations, properties and extensions to the concepts they name.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ficus.terminology.model import (
    CONCEPT_PROPERTIES,
    INACTIVE_STATUSES,
    CodeSystemProvider,
    Concept,
    Designation,
    PropertyDef,
)

PARENT_PROPERTIES = frozenset({"parent", "subsumedBy"})
STANDARDS_STATUS = "http://hl7.org/fhir/StructureDefinition/structuredefinition-standards-status"


class ResourceCodeSystem(CodeSystemProvider):
    """A CodeSystem resource's concepts, with its supplements applied."""

    def __init__(self, resource: dict, supplements: list[dict] | None = None) -> None:
        super().__init__()
        self.resource = resource
        self.url = resource.get("url", "")
        self.version = resource.get("version")
        self.name = resource.get("name")
        self.title = resource.get("title")
        self.status = resource.get("status", "active")
        self.experimental = bool(resource.get("experimental", False))
        self.content = resource.get("content", "complete")
        self.case_sensitive = resource.get("caseSensitive", True) is not False
        self.language = resource.get("language")
        self.hierarchy_meaning = resource.get("hierarchyMeaning")
        self.supplements = list(supplements or [])
        self.properties = [_property_def(p) for p in resource.get("property", []) if isinstance(p, dict) and p.get("code")]
        self._concepts: dict[str, Concept] = {}
        self._order: list[str] = []
        self._roots: list[str] = []
        self._folded: dict[str, str] = {}
        self._walk(resource.get("concept", []), None)
        for supplement in self.supplements:
            self._apply(supplement)
        self._link_property_parents()
        for concept in self._concepts.values():
            self._flag(concept)
        if not self.case_sensitive:
            self._folded = {code.lower(): code for code in self._order}

    def _walk(self, concepts: list, parent: str | None) -> None:
        for item in concepts:
            if not isinstance(item, dict) or not isinstance(item.get("code"), str):
                continue
            code = item["code"]
            concept = self._concepts.get(code)
            if concept is None:
                concept = Concept(
                    code=code,
                    display=item.get("display"),
                    definition=item.get("definition"),
                    designations=[_designation(d) for d in item.get("designation", []) if isinstance(d, dict) and d.get("value")],
                    properties=[_property(p) for p in item.get("property", []) if isinstance(p, dict) and p.get("code")],
                    extensions=list(item.get("extension", [])),
                )
                self._concepts[code] = concept
                self._order.append(code)
            if parent is None:
                if code not in self._roots:
                    self._roots.append(code)
            else:
                _link(self._concepts[parent], concept)
            self._walk(item.get("concept", []), code)

    def _apply(self, supplement: dict) -> None:
        known = {p.code for p in self.properties}
        for definition in supplement.get("property", []):
            if isinstance(definition, dict) and definition.get("code") and definition["code"] not in known:
                self.properties.append(_property_def(definition))
        for item in _flatten(supplement.get("concept", [])):
            concept = self._concepts.get(item.get("code", ""))
            if concept is None:
                continue
            for designation in item.get("designation", []):
                if isinstance(designation, dict) and designation.get("value"):
                    concept.designations.append(_designation(designation))
            if item.get("display") and item.get("display") != concept.display:
                language = supplement.get("language")
                concept.designations.append(Designation(item["display"], language))
            concept.properties.extend(_property(p) for p in item.get("property", []) if isinstance(p, dict) and p.get("code"))
            concept.extensions.extend(item.get("extension", []))

    def _link_property_parents(self) -> None:
        parent_codes = {p.code for p in self.properties if p.uri in (CONCEPT_PROPERTIES + "parent",)} | PARENT_PROPERTIES
        child_codes = {p.code for p in self.properties if p.uri == CONCEPT_PROPERTIES + "child"} | {"child"}
        for concept in list(self._concepts.values()):
            for name, _, value in concept.properties:
                if name in parent_codes and isinstance(value, str) and value in self._concepts:
                    _link(self._concepts[value], concept)
                elif name in child_codes and isinstance(value, str) and value in self._concepts:
                    _link(concept, self._concepts[value])
        self._roots = [code for code in self._order if not self._concepts[code].parents]

    def _flag(self, concept: Concept) -> None:
        status_codes = self._codes_for("status")
        inactive_codes = self._codes_for("inactive")
        selectable_codes = self._codes_for("notSelectable")
        for name, _, value in concept.properties:
            if name in status_codes and isinstance(value, str):
                concept.status = value
            elif name in inactive_codes and value is True:
                concept.inactive = True
            elif name in selectable_codes and value is True:
                concept.abstract = True
        for extension in concept.extensions:
            if isinstance(extension, dict) and extension.get("url") == STANDARDS_STATUS and concept.status is None:
                concept.status = extension.get("valueCode")
        if concept.status in INACTIVE_STATUSES:
            concept.inactive = True

    def _codes_for(self, name: str) -> set[str]:
        """The property codes that mean the standard concept property `name` here: declared
        with its URI, or (when the code system declares no such property) named so."""
        return {p.code for p in self.properties if p.uri == CONCEPT_PROPERTIES + name} | {name}

    # -- CodeSystemProvider ---------------------------------------------------------------

    def concept(self, code: str) -> Concept | None:
        found = self._concepts.get(code)
        if found is None and self._folded:
            original = self._folded.get(code.lower())
            found = self._concepts.get(original) if original else None
        return found

    def codes(self) -> Iterator[str]:
        return iter(self._order)

    def roots(self) -> list[str]:
        return list(self._roots)

    def count(self) -> int:
        return len(self._order)


def _link(parent: Concept, child: Concept) -> None:
    if child.code not in parent.children:
        parent.children.append(child.code)
    if parent.code not in child.parents:
        child.parents.append(parent.code)


def _flatten(concepts: list) -> Iterator[dict]:
    for item in concepts:
        if isinstance(item, dict):
            yield item
            yield from _flatten(item.get("concept", []))


def _designation(item: dict) -> Designation:
    return Designation(item["value"], item.get("language"), item.get("use"), tuple(item.get("extension", ())))


def _property(item: dict) -> tuple[str, str, Any]:
    for key, value in item.items():
        if key.startswith("value"):
            return item["code"], key, value
    return item["code"], "valueString", None


def _property_def(item: dict) -> PropertyDef:
    return PropertyDef(item["code"], item.get("uri"), item.get("type", "string"), item.get("description"))
