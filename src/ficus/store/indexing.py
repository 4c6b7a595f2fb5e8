"""Search index rows for a resource, extracted from the SearchParameters' FHIRPath expressions.

Common expression shapes (paths, `as`/`ofType`, `where(resolve() is X)`, `where(field='v')`,
`extension('url')`, unions) compile to plain Python walkers; the rest run through fhirpathpy.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import Any

from ficus.fhirtime import date_range
from ficus.spec import Definitions, SearchParameter

IndexRows = dict[str, list[tuple]]
Extractor = Callable[[dict], Iterable[Any]]

INDEX_TABLES = ("string", "token", "date", "number", "quantity", "reference", "uri")
_IDENTIFIER = r"[A-Za-z][A-Za-z0-9_]*"
_STEP = re.compile(
    rf"^(?:(?P<child>{_IDENTIFIER})"
    rf"|where\(resolve\(\) is (?P<resolve>{_IDENTIFIER})\)"
    rf"|where\((?P<field>{_IDENTIFIER})\s*=\s*'(?P<value>[^']*)'\)"
    rf"|(?:as|ofType)\((?P<as>{_IDENTIFIER})\)"
    rf"|extension\('(?P<extension>[^']+)'\))$"
)


def normalize_string(value: str) -> str:
    """Case- and accent-insensitive form used by string search."""
    decomposed = unicodedata.normalize("NFKD", value)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def split_union(expression: str) -> list[str]:
    """Split a FHIRPath expression on top-level `|`."""
    parts, depth, current = [], 0, []
    for char in expression:
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        if char == "|" and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


def split_steps(path: str) -> list[str]:
    """Split a dotted path on dots outside parentheses and quotes."""
    steps, depth, quoted, current = [], 0, False, []
    for char in path:
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        if char == "." and depth == 0 and not quoted:
            steps.append("".join(current))
            current = []
        else:
            current.append(char)
    steps.append("".join(current))
    return steps


def compile_path(resource_type: str, part: str, definitions: Definitions) -> Extractor | None:
    """A walker for one union member, or None when it is not a shape we compile."""
    part = part.strip()
    as_match = re.fullmatch(rf"\((.+) as ({_IDENTIFIER})\)", part) or re.fullmatch(
        rf"(.+) as ({_IDENTIFIER})", part
    )
    if as_match:
        part = f"{as_match.group(1)}.as({as_match.group(2)})"
    steps = split_steps(part)
    if steps[0] not in (resource_type, "Resource", "DomainResource"):
        return None
    compiled: list[tuple[str, Any]] = []
    for step in steps[1:]:
        match = _STEP.match(step)
        if not match:
            return None
        if match["child"]:
            compiled.append(("child", match["child"]))
        elif match["resolve"]:
            compiled.append(("resolve", match["resolve"]))
        elif match["field"]:
            compiled.append(("where", (match["field"], match["value"])))
        elif match["as"]:
            if not compiled or compiled[-1][0] != "child":
                return None
            name = compiled.pop()[1]
            type_name = match["as"]
            compiled.append(("child", name + type_name[0].upper() + type_name[1:]))
        else:
            compiled.append(("extension", match["extension"]))
    choice_suffixes = {t[0].upper() + t[1:] for t in definitions.types}

    def walk(resource: dict) -> Iterator[Any]:
        nodes: list[Any] = [resource]
        for kind, argument in compiled:
            nodes = list(_apply_step(nodes, kind, argument, choice_suffixes))
            if not nodes:
                return iter(())
        return iter(nodes)

    return walk


def _apply_step(nodes: list[Any], kind: str, argument: Any, choice_suffixes: set[str]) -> Iterator[Any]:
    for node in nodes:
        if not isinstance(node, dict):
            continue
        if kind == "child":
            value = node.get(argument)
            if value is None:
                value = _choice_value(node, argument, choice_suffixes)
            if isinstance(value, list):
                yield from (v for v in value if v is not None)
            elif value is not None:
                yield value
        elif kind == "resolve":
            reference = node.get("reference", "")
            if isinstance(reference, str) and _reference_type(reference) == argument:
                yield node
        elif kind == "where":
            field, expected = argument
            if node.get(field) == expected:
                yield node
        else:
            for extension in node.get("extension", []):
                if isinstance(extension, dict) and extension.get("url") == argument:
                    yield extension


def _choice_value(node: dict, name: str, choice_suffixes: set[str]) -> Any:
    for key, value in node.items():
        if key.startswith(name) and key[len(name):] in choice_suffixes:
            return value
    return None


def _reference_type(reference: str) -> str | None:
    parts = reference.split("?", 1)[0].rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2][:1].isupper():
        return parts[-2]
    if len(parts) >= 4 and parts[-2] == "_history":
        return parts[-4]
    return None


def parse_reference(reference: str) -> tuple[str | None, str | None]:
    """(type, id) of a literal reference `Type/id`, `Type/id/_history/n` or an absolute URL."""
    parts = reference.split("?", 1)[0].rstrip("/").split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) >= 2 and parts[-2][:1].isupper():
        return parts[-2], parts[-1]
    return None, None


def _fhirpath_extractor(expression: str) -> Extractor | None:
    from fhirpathpy import compile as compile_fhirpath
    from fhirpathpy.models import models

    try:
        compiled = compile_fhirpath(expression, models["r4"])
    except Exception:  # noqa: BLE001 - an expression fhirpathpy cannot parse is not indexed
        return None

    def evaluate(resource: dict) -> list[Any]:
        try:
            return list(compiled(resource))
        except Exception:  # noqa: BLE001 - one odd resource must not block its write
            return []

    return evaluate


class IndexExtractor:
    """Turns a resource into rows for the typed `idx_*` tables."""

    def __init__(self, definitions: Definitions) -> None:
        self.definitions = definitions
        self._plans: dict[str, list[tuple[str, str, list[Extractor]]]] = {}

    def plan(self, resource_type: str) -> list[tuple[str, str, list[Extractor]]]:
        found = self._plans.get(resource_type)
        if found is None:
            found = []
            params = self.definitions.search_parameters_for(resource_type).values()
            for param in params:
                extractors = self._extractors(resource_type, param)
                if extractors and param.type in INDEX_TABLES:
                    found.append((param.code, param.type, extractors))
            self._plans[resource_type] = found
        return found

    def _extractors(self, resource_type: str, param: SearchParameter) -> list[Extractor]:
        extractors: list[Extractor] = []
        for part in split_union(param.expression):
            compiled = compile_path(resource_type, part, self.definitions)
            if compiled is None:
                head = split_steps(part.lstrip("("))[0]
                if head not in (resource_type, "Resource", "DomainResource"):
                    continue
                compiled = _fhirpath_extractor(part)
            if compiled is not None:
                extractors.append(compiled)
        return extractors

    def rows(self, resource_type: str, resource: dict) -> IndexRows:
        rows: IndexRows = {table: [] for table in INDEX_TABLES}
        for code, kind, extractors in self.plan(resource_type):
            converter = _CONVERTERS[kind]
            target = rows[kind]
            seen: set[tuple] = set()
            for extractor in extractors:
                for value in extractor(resource):
                    for row in converter(value):
                        if row not in seen:
                            seen.add(row)
                            target.append((code, *row))
        return rows


def _string_rows(value: Any) -> Iterator[tuple]:
    for text in _strings(value):
        yield normalize_string(text)[:512], text[:512]


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key in ("extension", "id", "use", "period", "system"):
                continue
            if isinstance(item, list):
                for element in item:
                    yield from _strings(element)
            else:
                yield from _strings(item)


def _token_rows(value: Any) -> Iterator[tuple]:
    if isinstance(value, bool):
        yield None, "true" if value else "false", None
    elif isinstance(value, str):
        yield None, value, None
    elif isinstance(value, dict):
        if "coding" in value or "text" in value and "value" not in value and "code" not in value:
            for coding in value.get("coding", []):
                yield from _coding_rows(coding, value.get("text"))
            if "text" in value and not value.get("coding"):
                yield None, None, value["text"]
        elif "code" in value or "system" in value and "value" not in value:
            yield from _coding_rows(value, None)
        elif "value" in value:
            type_text = (value.get("type") or {}).get("text") if isinstance(value.get("type"), dict) else None
            yield value.get("system"), str(value["value"]), type_text


def _coding_rows(coding: Any, text: str | None) -> Iterator[tuple]:
    if isinstance(coding, dict) and ("code" in coding or "display" in coding):
        yield coding.get("system"), coding.get("code"), coding.get("display") or text


def _date_rows(value: Any) -> Iterator[tuple]:
    if isinstance(value, str):
        found = date_range(value)
        if found:
            yield found
    elif isinstance(value, dict):
        if "start" in value or "end" in value:
            start = date_range(value["start"]) if isinstance(value.get("start"), str) else None
            end = date_range(value["end"]) if isinstance(value.get("end"), str) else None
            if start or end:
                yield (start[0] if start else -(2**62)), (end[1] if end else 2**62)
        for event in value.get("event", []):
            yield from _date_rows(event)


def _number_rows(value: Any) -> Iterator[tuple]:
    if isinstance(value, (int, Decimal, float)) and not isinstance(value, bool):
        yield (float(value),)


def _quantity_rows(value: Any) -> Iterator[tuple]:
    if isinstance(value, dict) and isinstance(value.get("value"), (int, Decimal, float)):
        code = value.get("code") or value.get("currency")
        yield float(value["value"]), value.get("system"), code, value.get("unit")


def _reference_rows(value: Any) -> Iterator[tuple]:
    if isinstance(value, str):
        yield None, None, value
    elif isinstance(value, dict):
        reference = value.get("reference")
        if isinstance(reference, str) and not reference.startswith("#"):
            target_type, target_id = parse_reference(reference)
            yield target_type, target_id, reference if target_id is None or "://" in reference else None


def _uri_rows(value: Any) -> Iterator[tuple]:
    if isinstance(value, str):
        yield (value,)


_CONVERTERS: dict[str, Callable[[Any], Iterator[tuple]]] = {
    "string": _string_rows,
    "token": _token_rows,
    "date": _date_rows,
    "number": _number_rows,
    "quantity": _quantity_rows,
    "reference": _reference_rows,
    "uri": _uri_rows,
}
