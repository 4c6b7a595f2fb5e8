"""`CodeSystem/$lookup` and `CodeSystem/$subsumes`."""

from __future__ import annotations

import dataclasses
from typing import Any

from ficus.outcome import FhirError
from ficus.terminology.expand import Expander, canonical
from ficus.terminology.issues import tx_error
from ficus.terminology.languages import PREFERRED_FOR_LANGUAGE, Languages, display_for
from ficus.terminology.model import CodeSystemProvider, Concept

STANDARD = ("inactive", "parent", "child")


def lookup(expander: Expander, system: str, version: str | None, code: str, properties: list[str], languages: Languages) -> dict:
    """The Parameters answer of `$lookup` for one code."""
    provider = resolve(expander, system, version, "the code cannot be looked up")
    concept = provider.concept(code)
    if concept is None:
        version_text = f" version '{provider.version}'" if provider.version else ""
        raise tx_error(
            404, "not-found", "invalid-code", f"Unknown code '{code}' in the CodeSystem '{provider.url}'{version_text}",
            "code", "Unknown_Code_in_Version",
        )
    shown = display_for(concept, provider.language, languages)
    parameters: list[dict] = []
    if provider.name:
        parameters.append({"name": "name", "valueString": provider.name})
    parameters.append({"name": "system", "valueUri": provider.url})
    parameters.append({"name": "code", "valueCode": concept.code})
    if provider.version:
        parameters.append({"name": "version", "valueString": provider.version})
    if shown.display or concept.display:
        parameters.append({"name": "display", "valueString": shown.display or concept.display})
    if concept.definition:
        parameters.append({"name": "definition", "valueString": concept.definition})
    parameters.append({"name": "abstract", "valueBoolean": concept.abstract})
    if concept.display:
        parameters.append(_designation(provider.language or "en", PREFERRED_FOR_LANGUAGE, concept.display, None))
    supplements = {id(s): s for s in provider.supplements}
    for designation in concept.designations:
        source = _source_of(designation.value, provider)
        parameters.append(_designation(designation.language, designation.use, designation.value, source))
    for name, key, value, description in _properties(provider, concept, properties):
        parts: list[dict] = [{"name": "code", "valueCode": name}, {"name": "value", key: value}]
        if description:
            parts.append({"name": "description", "valueString": description})
        parameters.append({"name": "property", "part": parts})
    for supplement in supplements.values():
        parameters.append({"name": "used-supplement", "valueCanonical": canonical(supplement)})
    return {"resourceType": "Parameters", "parameter": parameters}


def resolve(expander: Expander, system: str, version: str | None, purpose: str) -> CodeSystemProvider:
    if not system:
        raise tx_error(400, "invalid", "invalid-data", "A system is needed to look a code up", "system")
    try:
        return expander.resolve_system(system, version, tuple(expander.options.supplements), purpose)
    except FhirError as error:
        error.issues = [
            dataclasses.replace(issue, expression=issue.expression or "system")
            if issue.message_id and issue.message_id.startswith("UNKNOWN_CODESYSTEM") else issue
            for issue in error.issues
        ]
        raise


def subsumes(expander: Expander, system: str, version: str | None, code_a: str, code_b: str) -> dict:
    """`$subsumes`: equivalent, subsumes, subsumed-by or not-subsumed."""
    provider = resolve(expander, system, version, "the subsumption cannot be tested")
    a, b = provider.concept(code_a), provider.concept(code_b)
    for code, concept, name in ((code_a, a, "codeA"), (code_b, b, "codeB")):
        if concept is None:
            raise tx_error(
                404, "not-found", "invalid-code", f"Unknown code '{code}' in the CodeSystem '{provider.versioned_url}'", name,
                "Unknown_Code_in_Version",
            )
    assert a is not None and b is not None
    if a.code == b.code:
        outcome = "equivalent"
    elif provider.subsumes(a.code, b.code):
        outcome = "subsumes"
    elif provider.subsumes(b.code, a.code):
        outcome = "subsumed-by"
    else:
        outcome = "not-subsumed"
    return {"resourceType": "Parameters", "parameter": [{"name": "outcome", "valueCode": outcome}]}


def _designation(language: str | None, use: dict | None, value: str, source: str | None) -> dict:
    parts: list[dict] = []
    if language:
        parts.append({"name": "language", "valueCode": language})
    if use:
        parts.append({"name": "use", "valueCoding": use})
    if source:
        parts.append({"name": "source", "valueCanonical": source})
    parts.append({"name": "value", "valueString": value})
    return {"name": "designation", "part": parts}


def _source_of(value: str, provider: CodeSystemProvider) -> str | None:
    for supplement in provider.supplements:
        for item in _flatten(supplement.get("concept", [])):
            for designation in item.get("designation", []):
                if isinstance(designation, dict) and designation.get("value") == value:
                    return canonical(supplement)
    return None


def _flatten(concepts: list) -> list[dict]:
    found = []
    for item in concepts:
        if isinstance(item, dict):
            found.append(item)
            found.extend(_flatten(item.get("concept", [])))
    return found


def _properties(provider: CodeSystemProvider, concept: Concept, wanted: list[str]) -> list[tuple[str, str, Any, str | None]]:
    """(code, value[x] key, value, description) of the concept's properties that were asked for
    (all of them when none or `*` was asked for), with `inactive`, `parent` and `child`."""
    every = not wanted or "*" in wanted
    found: list[tuple[str, str, Any, str | None]] = []

    def asked(name: str) -> bool:
        return every or name in wanted

    if asked("inactive"):
        found.append(("inactive", "valueBoolean", concept.inactive, None))
    for name, key, value in concept.properties:
        if name in STANDARD or not asked(name):
            continue
        description = None
        if key == "valueCode" and isinstance(value, str):
            target = provider.concept(value) if name in ("parent", "child") else None
            description = target.display if target else None
        found.append((name, key, value, description))
    if concept.abstract and asked("notSelectable") and not any(n == "notSelectable" for n, _, _ in concept.properties):
        found.append(("notSelectable", "valueBoolean", True, None))
    if asked("parent"):
        for parent in concept.parents:
            target = provider.concept(parent)
            found.append(("parent", "valueCode", parent, target.display if target else None))
    if asked("child"):
        for child in concept.children:
            target = provider.concept(child)
            found.append(("child", "valueCode", child, target.display if target else None))
    return found
