"""Compile the R4 core package into the compact tables Ficus runs on.

The result is plain data (dicts, lists, strings) so it can be cached as MessagePack and
loaded in a fraction of the time it takes to read the package.
"""

from __future__ import annotations

from collections.abc import Iterable

FHIR_TYPE_EXTENSION = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
REGEX_EXTENSION = "http://hl7.org/fhir/StructureDefinition/regex"
SYSTEM_TYPE_PREFIX = "http://hl7.org/fhirpath/System."


def compile_package(resources: Iterable[dict]) -> dict:
    structure_definitions: list[dict] = []
    search_parameters: list[dict] = []
    compartments: dict[str, dict[str, list[str]]] = {}
    code_systems: dict[str, dict] = {}
    value_sets: dict[str, dict] = {}
    for resource in resources:
        kind = resource["resourceType"]
        if kind == "StructureDefinition":
            structure_definitions.append(resource)
        elif kind == "SearchParameter":
            search_parameters.append(_compile_search_parameter(resource))
        elif kind == "CompartmentDefinition":
            compartments[resource["code"]] = {
                entry["code"]: entry.get("param", []) for entry in resource.get("resource", [])
            }
        elif kind == "CodeSystem":
            code_systems[resource["url"]] = resource
        elif kind == "ValueSet":
            value_sets[resource["url"]] = resource

    types: dict[str, dict] = {}
    for definition in structure_definitions:
        if definition.get("derivation") == "constraint" or definition["kind"] == "logical":
            continue
        types[definition["type"]] = _compile_type(definition)
    resource_types = sorted(
        name for name, info in types.items() if info["kind"] == "resource" and not info["abstract"]
    )
    required = sorted(
        {
            element[3]
            for info in types.values()
            for children in info["elements"].values()
            for element in children.values()
            if element[3]
        }
    )
    expander = _Expander(code_systems, value_sets)
    expansions = {url: expander.expand(url) for url in required}
    return {
        "resource_types": resource_types,
        "types": types,
        "search_parameters": sorted(search_parameters, key=lambda p: p["url"]),
        "compartments": compartments,
        "value_sets": {url: codes for url, codes in expansions.items() if codes is not None},
    }


def _compile_search_parameter(resource: dict) -> dict:
    return {
        "url": resource["url"],
        "code": resource["code"],
        "base": resource.get("base", []),
        "type": resource["type"],
        "expression": resource.get("expression", ""),
        "target": resource.get("target", []),
        "component": [
            {"definition": c["definition"], "expression": c["expression"]}
            for c in resource.get("component", [])
        ],
        "comparator": resource.get("comparator", []),
        "modifier": resource.get("modifier", []),
    }


def _element_type_code(type_entry: dict) -> str:
    code = type_entry["code"]
    if code.startswith(SYSTEM_TYPE_PREFIX):
        for extension in type_entry.get("extension", []):
            if extension["url"] == FHIR_TYPE_EXTENSION:
                return extension.get("valueUrl") or extension.get("valueUri") or "string"
        return "string"
    return code


def _compile_type(definition: dict) -> dict:
    """One StructureDefinition: its elements grouped by parent path.

    Each element is `[min, many, types, required_value_set, content_reference, choice_name]`;
    a choice `value[x]` is expanded into `valueQuantity`, `valueString`, ... sharing choice_name.
    `summary` lists the top-level elements that `_summary=true` keeps (summary or mandatory).
    """
    root = definition["type"]
    elements: dict[str, dict[str, list]] = {}
    summary: list[str] = []
    regex = None
    for element in definition["snapshot"]["element"]:
        path: str = element["path"]
        if "." not in path:
            continue
        parent, name = path.rsplit(".", 1)
        type_codes = [_element_type_code(t) for t in element.get("type", [])]
        if definition["kind"] == "primitive-type" and name == "value":
            for type_entry in element.get("type", []):
                for extension in type_entry.get("extension", []):
                    if extension["url"] == REGEX_EXTENSION:
                        regex = extension["valueString"]
        binding = element.get("binding", {})
        value_set = None
        if binding.get("strength") == "required" and binding.get("valueSet"):
            value_set = binding["valueSet"].split("|", 1)[0]
        content_reference = element.get("contentReference")
        if content_reference:
            content_reference = content_reference.lstrip("#")
        many = element.get("max", "1") != "1"
        minimum = int(element.get("min", 0))
        children = elements.setdefault(parent, {})
        if name.endswith("[x]"):
            base = name[:-3]
            names = [base + code[0].upper() + code[1:] for code in type_codes]
            for key, code in zip(names, type_codes):
                children[key] = [minimum, many, [code], value_set, None, base]
        else:
            names = [name]
            children[name] = [minimum, many, type_codes, value_set, content_reference, None]
        if parent == root and (element.get("isSummary") or minimum > 0):
            summary.extend(names)
    return {
        "kind": definition["kind"],
        "abstract": definition.get("abstract", False),
        "base": (definition.get("baseDefinition") or "").rsplit("/", 1)[-1] or None,
        "regex": regex,
        "summary": summary,
        "elements": elements,
    }


class _Expander:
    """Expands ValueSets whose content is entirely in the package; None when it is not."""

    def __init__(self, code_systems: dict[str, dict], value_sets: dict[str, dict]) -> None:
        self.code_systems = code_systems
        self.value_sets = value_sets
        self.cache: dict[str, list[list[str]] | None] = {}

    def expand(self, url: str) -> list[list[str]] | None:
        if url not in self.cache:
            self.cache[url] = None  # guards against cycles
            self.cache[url] = self._expand(url)
        return self.cache[url]

    def _expand(self, url: str) -> list[list[str]] | None:
        value_set = self.value_sets.get(url)
        if value_set is None or "compose" not in value_set:
            return None
        included: set[tuple[str, str]] = set()
        for include in value_set["compose"].get("include", []):
            codes = self._include(include)
            if codes is None:
                return None
            included |= codes
        for exclude in value_set["compose"].get("exclude", []):
            codes = self._include(exclude)
            if codes is None:
                return None
            included -= codes
        return sorted([system, code] for system, code in included)

    def _include(self, include: dict) -> set[tuple[str, str]] | None:
        result: set[tuple[str, str]] | None = None
        system = include.get("system")
        if system:
            if "concept" in include:
                result = {(system, c["code"]) for c in include["concept"]}
            else:
                concepts = self._concepts(system)
                codes = self._filter(concepts, include.get("filter", [])) if concepts else None
                if codes is None:
                    return None
                result = {(system, code) for code in codes}
        for nested in include.get("valueSet", []):
            codes = self.expand(nested.split("|", 1)[0])
            if codes is None:
                return None
            nested_codes = {(s, c) for s, c in codes}
            result = nested_codes if result is None else result & nested_codes
        return result if result is not None else set()

    def _concepts(self, system: str) -> dict[str, list[str]] | None:
        """code -> parent codes, for a complete CodeSystem in the package."""
        code_system = self.code_systems.get(system)
        if code_system is None or code_system.get("content") not in ("complete", None):
            return None
        parents: dict[str, list[str]] = {}

        def walk(concepts: list[dict], parent: str | None) -> None:
            for concept in concepts:
                parents.setdefault(concept["code"], [])
                if parent:
                    parents[concept["code"]].append(parent)
                walk(concept.get("concept", []), concept["code"])

        walk(code_system.get("concept", []), None)
        return parents

    @staticmethod
    def _filter(concepts: dict[str, list[str]], filters: list[dict]) -> set[str] | None:
        codes = set(concepts)
        for condition in filters:
            op, value = condition.get("op"), condition.get("value")
            if op in ("is-a", "descendent-of") and condition.get("property") == "concept":
                keep = {value} if op == "is-a" else set()
                frontier = [value]
                while frontier:
                    current = frontier.pop()
                    for code, parents in concepts.items():
                        if current in parents and code not in keep:
                            keep.add(code)
                            frontier.append(code)
                codes &= keep
            else:
                return None
        return codes
