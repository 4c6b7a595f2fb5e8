"""ValueSet `compose.include.filter` over one code system: the codes a filter selects.

Operators: `=`, `is-a`, `descendent-of`, `is-not-a`, `generalizes`, `child-of`,
`descendent-leaf`, `in`, `not-in`, `regex`, `exists`. The property is `concept`/`code` (the
hierarchy), `display`, a standard concept property (`inactive`, `status`, `notSelectable`,
`parent`, `child`) or one the code system declares. Regular expressions match whole values.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

from ficus.terminology.model import CONCEPT_PROPERTIES, CodeSystemProvider, Concept

HIERARCHY_PROPERTIES = frozenset({"concept", "code"})
HIERARCHY_OPERATORS = frozenset({"is-a", "descendent-of", "is-not-a", "generalizes", "child-of", "descendent-leaf"})
OPERATORS = HIERARCHY_OPERATORS | {"=", "in", "not-in", "regex", "exists"}
_NESTED_QUANTIFIER = re.compile(r"\(([^()]*[+*])\)[+*]")
_DOUBLE_GROUP = re.compile(r"\(\(([^()]*)\)\)")


class FilterError(Exception):
    """A filter that cannot be applied; `kind` names the message to report."""

    def __init__(self, kind: str, text: str) -> None:
        super().__init__(text)
        self.kind = kind


def filter_codes(system: CodeSystemProvider, prop: str | None, op: str | None, value: str | None) -> list[str]:
    """The codes of `system` that the filter selects, in the code system's order."""
    if not prop or not op:
        raise FilterError("invalid", f"The filter on {system.url} needs a property and an operator")
    if value is None:
        raise FilterError(
            "no-value", f"The system {system.url} filter with property = {prop}, op = {op} has no value"
        )
    if op not in OPERATORS:
        raise FilterError("unsupported", f"The filter operator '{op}' is not supported for {system.url}")
    if prop in HIERARCHY_PROPERTIES and op in HIERARCHY_OPERATORS | {"in", "not-in", "="}:
        return _hierarchy(system, op, value)
    if op in HIERARCHY_OPERATORS:
        raise FilterError("unsupported", f"The filter '{prop} {op} {value}' is not supported for {system.url}")
    if op == "regex":
        pattern = compile_regex(value)
        return [c.code for c in _all(system) if any(_text(v) is not None and pattern.fullmatch(_text(v) or "") for v in _values(system, c, prop))]
    if op == "exists":
        wanted = value.lower() == "true"
        return [c.code for c in _all(system) if bool(_values(system, c, prop)) == wanted]
    wanted_values = {v.strip() for v in value.split(",")} if op in ("in", "not-in") else {value}
    fast = _fast_equals(system, prop, value) if op == "=" else None
    if fast is not None:
        return fast
    selected = []
    for concept in _all(system):
        found = {_text(v) for v in _values(system, concept, prop)}
        hit = bool(found & wanted_values) if op != "=" else _equals(found, value, prop)
        if hit != (op == "not-in"):
            selected.append(concept.code)
    return selected


def concept_matches(system: CodeSystemProvider, concept: Concept, prop: str | None, op: str | None, value: str | None) -> bool:
    """Whether one concept passes a filter (what `$validate-code` needs, without expanding)."""
    if not prop or not op:
        raise FilterError("invalid", f"The filter on {system.url} needs a property and an operator")
    if value is None:
        raise FilterError(
            "no-value", f"The system {system.url} filter with property = {prop}, op = {op} has no value"
        )
    if op not in OPERATORS:
        raise FilterError("unsupported", f"The filter operator '{op}' is not supported for {system.url}")
    code = concept.code
    if prop in HIERARCHY_PROPERTIES and op in HIERARCHY_OPERATORS | {"in", "not-in", "="}:
        if op in ("in", "not-in"):
            return (code in {v.strip() for v in value.split(",")}) != (op == "not-in")
        root = system.normalise(value)
        if op == "=":
            return root == code
        if root is None:
            return op == "is-not-a"
        if op == "is-a":
            return system.subsumes(root, code)
        if op == "descendent-of":
            return root != code and system.subsumes(root, code)
        if op == "is-not-a":
            return not system.subsumes(root, code)
        if op == "generalizes":
            return system.subsumes(code, root)
        if op == "child-of":
            return root in concept.parents
        return root != code and system.subsumes(root, code) and not concept.children
    if op in HIERARCHY_OPERATORS:
        raise FilterError("unsupported", f"The filter '{prop} {op} {value}' is not supported for {system.url}")
    found = [_text(v) for v in _values(system, concept, prop)]
    if op == "regex":
        pattern = compile_regex(value)
        return any(v is not None and pattern.fullmatch(v) for v in found)
    if op == "exists":
        return bool(found) == (value.lower() == "true")
    if op == "=":
        return _equals(set(found), value, prop)
    wanted = {v.strip() for v in value.split(",")}
    return bool(set(found) & wanted) != (op == "not-in")


@functools.lru_cache(maxsize=256)
def compile_regex(value: str) -> re.Pattern[str]:
    """The pattern, with nested quantifiers such as `(a+)+` collapsed (they match the same
    strings and would otherwise backtrack exponentially)."""
    previous = None
    while previous != value:
        previous = value
        value = _NESTED_QUANTIFIER.sub(lambda m: f"({m.group(1)})", value)
        value = _DOUBLE_GROUP.sub(lambda m: f"({m.group(1)})", value)
    try:
        return re.compile(value)
    except re.error as error:
        raise FilterError("invalid", f"The regular expression '{value}' is not valid: {error}") from error


def _hierarchy(system: CodeSystemProvider, op: str, value: str) -> list[str]:
    if op in ("in", "not-in"):
        wanted = {v.strip() for v in value.split(",")}
        return [code for code in system.codes() if (code in wanted) != (op == "not-in")]
    if op == "=":
        concept = system.concept(value)
        return [concept.code] if concept else []
    concept = system.concept(value)
    if concept is None:
        return [] if op != "is-not-a" else list(system.codes())
    root = concept.code
    if op == "is-a":
        return [root, *system.descendants(root)]
    if op == "descendent-of":
        return system.descendants(root)
    if op == "child-of":
        return system.children(root)
    if op == "descendent-leaf":
        return [code for code in system.descendants(root) if not system.children(code)]
    if op == "generalizes":
        ancestors = system.ancestors(root) | {root}
        return [code for code in system.codes() if code in ancestors]
    excluded = {root, *system.descendants(root)}
    return [code for code in system.codes() if code not in excluded]


def _all(system: CodeSystemProvider) -> Iterable[Concept]:
    return system.iter_concepts(system.codes())


def _values(system: CodeSystemProvider, concept: Concept, prop: str) -> list[Any]:
    """The values of `prop` for a concept, standard properties included."""
    if prop in ("display",):
        return [concept.display] if concept.display else []
    if prop in HIERARCHY_PROPERTIES:
        return [concept.code]
    found = concept.property_values(prop)
    definition = system.property_def(prop)
    standard = definition.uri.removeprefix(CONCEPT_PROPERTIES) if definition and definition.uri and definition.uri.startswith(CONCEPT_PROPERTIES) else prop
    if found:
        return found
    if standard == "inactive" and not system.property_def(prop):
        return [concept.inactive]
    if standard == "notSelectable" and not system.property_def(prop):
        return [concept.abstract] if concept.abstract else []
    if standard == "status" and concept.status and not system.property_def(prop):
        return [concept.status]
    if standard == "parent":
        return list(concept.parents)
    if standard == "child":
        return list(concept.children)
    return []


def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return value.get("code")
    return None if value is None else str(value)


def _equals(found: set[str | None], value: str, prop: str) -> bool:
    if value in found:
        return True
    return prop == "display" and any(v is not None and v.lower() == value.lower() for v in found)


def _fast_equals(system: CodeSystemProvider, prop: str, value: str) -> list[str] | None:
    lookup = getattr(system, "codes_with_property", None)
    if lookup is None or prop in ("display", *HIERARCHY_PROPERTIES):
        return None
    return lookup(prop, value)
