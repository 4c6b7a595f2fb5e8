"""JSON Patch (RFC 6902) applied to a FHIR resource.

Errors name the offending operation with a JSON Pointer into the patch document (`/2`):
a malformed document is a 400, an operation that cannot apply to this resource is a 422.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from ficus.outcome import FhirError

OPERATIONS = ("add", "remove", "replace", "move", "copy", "test")
Container = dict | list


def apply_json_patch(resource: dict, operations: object) -> dict:
    """A patched deep copy of `resource`; `operations` is the parsed JSON Patch document."""
    if not isinstance(operations, list):
        raise FhirError.of(400, "structure", "A JSON Patch document must be a JSON array")
    try:
        document: Any = copy.deepcopy(resource)
        for number, operation in enumerate(operations):
            document = _apply(document, _checked(operation, number), f"/{number}")
    except RecursionError:
        raise FhirError.of(400, "structure", "The patch or resource is nested too deeply") from None
    if not isinstance(document, dict):
        raise FhirError.of(422, "processing", "The patched document is not a JSON object")
    return document


def _checked(operation: object, number: int) -> dict:
    """`operation` once its shape is known to be right: op, path (and from, value) present."""

    def malformed(message: str) -> FhirError:
        return FhirError.of(
            400, "invalid", f"JSON Patch operation {number}: {message}", f"/{number}"
        )

    if not isinstance(operation, dict):
        raise malformed("an operation must be a JSON object")
    op = operation.get("op")
    if op not in OPERATIONS:
        raise malformed(f"'op' must be one of {', '.join(OPERATIONS)}")
    members = ["path"] + (["from"] if op in ("move", "copy") else [])
    for member in members:
        if not isinstance(operation.get(member), str):
            raise malformed(f"'{member}' must be a string")
        if not _is_pointer(operation[member]):
            raise malformed(f"'{member}' is not a JSON Pointer: {operation[member]!r}")
    if op in ("add", "replace", "test") and "value" not in operation:
        raise malformed(f"'{op}' needs a 'value'")
    return operation


def _is_pointer(text: str) -> bool:
    return text == "" or text.startswith("/")


def _tokens(pointer: str) -> list[str]:
    return [token.replace("~1", "/").replace("~0", "~") for token in pointer.split("/")[1:]]


def _apply(document: Any, operation: dict, where: str) -> Any:
    op, path = operation["op"], operation["path"]

    def failed(message: str) -> FhirError:
        return FhirError.of(422, "processing", f"JSON Patch {op} {path}: {message}", where)

    try:
        if op == "add":
            return _add(document, path, copy.deepcopy(operation["value"]))
        if op == "remove":
            return _remove(document, path)[0]
        if op == "replace":
            return _add(_remove(document, path)[0], path, copy.deepcopy(operation["value"]))
        if op == "move":
            source = operation["from"]
            if path.startswith(source + "/"):
                raise _NotApplicable("cannot move a value into one of its own children")
            remaining, value = _remove(document, source)
            return _add(remaining, path, value)
        if op == "copy":
            return _add(document, path, copy.deepcopy(_resolve(document, operation["from"])))
        if not _json_equal(_resolve(document, path), operation["value"]):
            raise _NotApplicable("the value is not the one expected")
        return document
    except _NotApplicable as problem:
        raise failed(str(problem)) from None


class _NotApplicable(Exception):
    """An operation that is well formed but does not fit the document."""


def _resolve(document: Any, pointer: str) -> Any:
    value = document
    for token in _tokens(pointer):
        container = value
        value = _child(container, token, pointer)
    return value


def _child(container: Any, token: str, pointer: str) -> Any:
    if isinstance(container, dict) and token in container:
        return container[token]
    if isinstance(container, list):
        return container[_existing_index(container, token, pointer)]
    raise _NotApplicable(f"nothing at {pointer}")


def _existing_index(array: list, token: str, pointer: str) -> int:
    index = _array_index(token, pointer)
    if index >= len(array):
        raise _NotApplicable(f"index {index} is out of range at {pointer}")
    return index


def _array_index(token: str, pointer: str) -> int:
    if not token.isascii() or not token.isdigit() or (token.startswith("0") and token != "0"):
        raise _NotApplicable(f"{token!r} is not an array index at {pointer}")
    return int(token)


def _parent(document: Any, pointer: str) -> tuple[Container, str]:
    *parents, last = _tokens(pointer)
    container = document
    for token in parents:
        container = _child(container, token, pointer)
    if not isinstance(container, dict | list):
        raise _NotApplicable(f"the parent of {pointer} is not an object or array")
    return container, last


def _add(document: Any, pointer: str, value: Any) -> Any:
    if pointer == "":
        return value
    container, token = _parent(document, pointer)
    if isinstance(container, dict):
        container[token] = value
    elif token == "-":
        container.append(value)
    else:
        index = _array_index(token, pointer)
        if index > len(container):
            raise _NotApplicable(f"index {index} is out of range at {pointer}")
        container.insert(index, value)
    return document


def _remove(document: Any, pointer: str) -> tuple[Any, Any]:
    """The document without the value at `pointer`, and that value."""
    if pointer == "":
        return None, document
    container, token = _parent(document, pointer)
    if isinstance(container, dict):
        if token not in container:
            raise _NotApplicable(f"nothing at {pointer}")
        return document, container.pop(token)
    return document, container.pop(_existing_index(container, token, pointer))


def _json_equal(left: Any, right: Any) -> bool:
    """JSON equality: numbers by value (1 == 1.0), but never a boolean equal to a number."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if _is_number(left) and _is_number(right):
        return left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_json_equal(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(_json_equal, left, right))
    return type(left) is type(right) and left == right


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)
