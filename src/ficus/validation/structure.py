"""Structural validation of FHIR R4 JSON resources against the core StructureDefinitions.

Each (type, path) is compiled once into a `_Node`; validation walks the JSON with the nodes.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable
from decimal import Decimal

from ficus.outcome import Issue
from ficus.spec import Definitions, Element, definitions
from ficus.terminology.inprocess import in_value_set

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
INTEGER_RANGES = {"integer": INT32_MIN, "unsignedInt": 0, "positiveInt": 1}
BACKBONE_TYPES = ("BackboneElement", "Element")
SHOWN_VALUE_LENGTH = 60
MAX_STRING_LENGTH = 1024 * 1024
UNLIMITED_STRING_TYPES = ("base64Binary",)
SCRIPT_TAG = re.compile("<script", re.IGNORECASE)

Problem = tuple[str, str]
PrimitiveCheck = Callable[[object], "Problem | None"]


def validate_resource(resource: dict) -> list[Issue]:
    """The structural errors of `resource` (parsed FHIR JSON); empty when it is valid."""
    issues: list[Issue] = []
    _walk_resource(resource, None, issues)
    return issues


class _Field:
    """One child element: how to check its values, and what its JSON shape must be."""

    __slots__ = (
        "name",
        "many",
        "choice",
        "check",
        "node",
        "primitive",
        "extensible",
        "codes",
        "systems",
        "pairs",
    )

    def __init__(self, name: str, element: Element) -> None:
        self.name = name
        self.many = element.many
        self.choice = element.choice_name
        self.check: Callable[[_Field, object, str, list[Issue]], None] = _check_complex
        self.node: _Node | None = None
        self.primitive: PrimitiveCheck | None = None
        self.extensible = False
        self.codes: frozenset[str] | None = None
        self.systems: frozenset[str] = frozenset()
        self.pairs: frozenset[tuple[str, str]] = frozenset()


class _Node:
    """The children allowed in one JSON object, e.g. `HumanName` or `Patient.contact`."""

    __slots__ = ("label", "fields", "required", "required_choices", "is_resource", "after")

    def __init__(self, label: str, is_resource: bool) -> None:
        self.label = label
        self.is_resource = is_resource
        self.fields: dict[str, _Field] = {}
        self.required: tuple[tuple[str, str], ...] = ()
        self.required_choices: tuple[tuple[str, tuple[str, ...]], ...] = ()
        self.after: Callable[[dict, str, list[Issue]], None] | None = None


class _Compiler:
    """Builds and caches the `_Node`s; recursive types share one node."""

    def __init__(self, defs: Definitions) -> None:
        self.defs = defs
        self.resource_types = frozenset(defs.resource_types)
        self.nodes: dict[tuple[str, str], _Node] = {}
        self._built: dict[str, _Node] = {}  # resource nodes complete with every descendant
        self._building = threading.Lock()  # a node is registered before its fields are filled in
        self.primitives = {
            name: _primitive_check(name, info["regex"])
            for name, info in defs.types.items()
            if info["kind"] == "primitive-type"
        }
        self.element_node = self.node("Element", "Element")

    def resource_node(self, resource_type: str) -> _Node:
        node = self._built.get(resource_type)
        if node is None:
            with self._building:  # concurrent first writes must not see a half-built node
                node = self._built[resource_type] = self.node(resource_type, resource_type)
        return node

    def node(self, type_name: str, path: str) -> _Node:
        key = (type_name, path)
        node = self.nodes.get(key)
        if node is not None:
            return node
        is_resource = path == type_name and self.defs.types[type_name]["kind"] == "resource"
        node = self.nodes[key] = _Node(path, is_resource)
        children = self.defs.children(type_name, path)
        for name, element in children.items():
            node.fields[name] = self._field(type_name, path, name, element, is_resource)
        _index_cardinality(node, children)
        if type_name == "Extension" and path == "Extension":
            node.after = _check_extension_content
        return node

    def _field(
        self, type_name: str, path: str, name: str, element: Element, in_resource: bool
    ) -> _Field:
        field = _Field(name, element)
        element_type = element.types[0] if element.types else None
        reference = element.content_reference
        if reference:
            field.node = self.node(reference.split(".", 1)[0], reference)
        elif in_resource and name == "id":
            self._primitive_field(field, "id", extensible=True)
        elif element_type in BACKBONE_TYPES and self.defs.children(type_name, f"{path}.{name}"):
            field.node = self.node(type_name, f"{path}.{name}")
        elif element_type == "Resource":
            is_contained = in_resource and name == "contained"
            field.check = _check_contained if is_contained else _check_resource
        elif self.defs.types[element_type]["kind"] == "primitive-type":
            is_attribute = name == "id" or (type_name == "Extension" and name == "url")
            self._primitive_field(field, element_type, extensible=not is_attribute)
        else:
            field.node = self.node(element_type, element_type)
        self._bind(field, element.required_value_set, element_type)
        return field

    def _primitive_field(self, field: _Field, type_name: str, extensible: bool) -> None:
        """`extensible` is False for Element.id and Extension.url (XML attributes: no `_id`)."""
        field.primitive = self.primitives[type_name]
        field.check = _check_primitive
        field.extensible = extensible

    def _bind(self, field: _Field, url: str | None, element_type: str | None) -> None:
        codes = self.defs.value_set_codes.get(url) if url else None
        if codes is None:
            if url is not None and element_type in _SERVICE_BOUND:
                field.check = _service_bound(field.check, url, element_type)
            return
        pairs = self.defs.value_sets[url]
        field.codes, field.pairs = codes, pairs
        field.systems = frozenset(system for system, _ in pairs)
        if element_type == "Coding":
            field.check = _check_bound_coding
        elif element_type == "CodeableConcept":
            field.check = _check_bound_concept


@functools.cache
def _compiler() -> _Compiler:
    return _Compiler(definitions())


def _index_cardinality(node: _Node, children: dict[str, Element]) -> None:
    required_choices: dict[str, list[str]] = {}
    for name, element in children.items():
        if not element.min:
            continue
        if element.choice_name:
            required_choices.setdefault(element.choice_name, []).extend((name, "_" + name))
        else:
            node.required += ((name, "_" + name),)
    node.required_choices = tuple((group, tuple(keys)) for group, keys in required_choices.items())


def _error(issues: list[Issue], code: str, path: str | None, diagnostics: str) -> None:
    issues.append(Issue("error", code, diagnostics, path))


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float, Decimal)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _shown(value: str) -> str:
    if len(value) > SHOWN_VALUE_LENGTH:
        value = value[:SHOWN_VALUE_LENGTH] + "..."
    return repr(value)


def _walk_resource(resource: object, path: str | None, issues: list[Issue]) -> None:
    if type(resource) is not dict:
        kind = _json_kind(resource)
        _error(issues, "structure", path, f"A resource must be a JSON object, not {kind}")
        return
    compiler = _compiler()
    resource_type = resource.get("resourceType")
    type_path = f"{path}.resourceType" if path else "resourceType"
    if resource_type is None:
        _error(issues, "required", type_path, "The resource has no resourceType")
    elif type(resource_type) is not str or resource_type not in compiler.resource_types:
        _error(issues, "structure", type_path, f"Unknown resourceType {resource_type!r}")
    else:
        _walk(compiler.resource_node(resource_type), resource, path or resource_type, issues)


def _walk(node: _Node, obj: object, path: str, issues: list[Issue]) -> None:
    if type(obj) is not dict:
        kind = _json_kind(obj)
        _error(issues, "structure", path, f"Expected a JSON object for {node.label}, not {kind}")
        return
    if not obj:
        _error(issues, "structure", path, "An element must not be an empty object")
        return
    fields = node.fields
    choices = 0
    for key, item in obj.items():
        field = fields.get(key)
        if field is None:
            _check_other_key(node, obj, key, item, path, issues)
            continue
        if field.choice is not None:
            choices += 1
        if field.many:
            _check_list(field, obj, key, item, path, issues)
        elif item is None or type(item) is list:
            _error_not_single(key, item, path, issues)
        else:
            field.check(field, item, f"{path}.{key}", issues)
    if choices > 1:
        _check_one_value_per_choice(node, obj, path, issues)
    for name, underscored in node.required:
        if name not in obj and underscored not in obj:
            _error(issues, "required", f"{path}.{name}", f"'{name}' is required in {node.label}")
    for group, names in node.required_choices:
        if not any(name in obj for name in names):
            where = f"{path}.{group}[x]"
            _error(issues, "required", where, f"'{group}[x]' is required in {node.label}")
    if node.after is not None:
        node.after(obj, path, issues)


def _error_not_single(key: str, item: object, path: str, issues: list[Issue]) -> None:
    kind = _json_kind(item)
    _error(issues, "structure", f"{path}.{key}", f"'{key}' must be a single value, not {kind}")


def _check_other_key(
    node: _Node, obj: dict, key: str, item: object, path: str, issues: list[Issue]
) -> None:
    if key[:1] == "_":
        field = node.fields.get(key[1:])
        if field is not None and field.extensible:
            _check_primitive_extension(field, obj, item, path, issues)
            return
    elif key == "resourceType" and node.is_resource:
        return
    _error(issues, "structure", f"{path}.{key}", f"Unknown element '{key}' in {node.label}")


def _check_list(
    field: _Field, obj: dict, key: str, items: object, path: str, issues: list[Issue]
) -> None:
    if type(items) is not list or not items:
        _error(issues, "structure", f"{path}.{key}", f"'{key}' must be a non-empty JSON array")
        return
    check = field.check
    for index, item in enumerate(items):
        if item is not None:
            check(field, item, f"{path}.{key}[{index}]", issues)
        elif field.primitive is None or not _has_aligned_extension(obj.get("_" + key), index):
            _error(issues, "structure", f"{path}.{key}[{index}]", f"'{key}' must not contain null")


def _has_aligned_extension(extensions: object, index: int) -> bool:
    return type(extensions) is list and index < len(extensions) and extensions[index] is not None


def _check_one_value_per_choice(node: _Node, obj: dict, path: str, issues: list[Issue]) -> None:
    first_of_group: dict[str, str] = {}
    for key in obj:
        field = node.fields.get(key)
        if field is None or field.choice is None:
            continue
        first = first_of_group.setdefault(field.choice, key)
        if first != key:
            message = f"'{key}' conflicts with '{first}': {field.choice}[x] takes one value"
            _error(issues, "structure", f"{path}.{key}", message)


def _check_primitive_extension(
    field: _Field, obj: dict, item: object, path: str, issues: list[Issue]
) -> None:
    """`_name` next to `name`: the id and extensions of a primitive (aligned lists when many)."""
    name = field.name
    where = f"{path}.{name}"
    element_node = _compiler().element_node
    if not field.many:
        _walk(element_node, item, where, issues)
        return
    if type(item) is not list or not item:
        _error(issues, "structure", where, f"'_{name}' must be a non-empty JSON array")
        return
    values = obj.get(name)
    if type(values) is list and len(values) != len(item):
        _error(issues, "structure", where, f"'_{name}' and '{name}' must have the same length")
        return
    for index, extension in enumerate(item):
        if extension is not None:
            _walk(element_node, extension, f"{where}[{index}]", issues)
        elif not _has_aligned_extension(values, index):
            message = f"'_{name}' and '{name}' are both null"
            _error(issues, "structure", f"{where}[{index}]", message)


def _check_complex(field: _Field, value: object, path: str, issues: list[Issue]) -> None:
    _walk(field.node, value, path, issues)


def _check_primitive(field: _Field, value: object, path: str, issues: list[Issue]) -> None:
    problem = field.primitive(value)
    if problem is not None:
        _error(issues, problem[0], path, problem[1])
    elif field.codes is not None and value not in field.codes:
        _error(issues, "code-invalid", path, _not_in_value_set(field, value))


def _not_in_value_set(field: _Field, code: object) -> str:
    shown = _shown(code) if type(code) is str else repr(code)
    return f"{shown} is not in the required value set of '{field.name}'"


def _check_bound_coding(field: _Field, value: object, path: str, issues: list[Issue]) -> None:
    _walk(field.node, value, path, issues)
    if type(value) is dict and _coding_state(field, value) is False:
        _error(issues, "code-invalid", f"{path}.code", _not_in_value_set(field, value.get("code")))


def _check_bound_concept(field: _Field, value: object, path: str, issues: list[Issue]) -> None:
    _walk(field.node, value, path, issues)
    codings = value.get("coding") if type(value) is dict else None
    if type(codings) is not list or not codings:
        return
    states = [_coding_state(field, coding) if type(coding) is dict else None for coding in codings]
    if True in states:
        return
    if False in states:
        where = f"{path}.coding[{states.index(False)}].code"
        message = f"No coding of '{field.name}' has a code from its required value set"
    else:
        where = path
        message = f"No coding of '{field.name}' uses a system of its required value set"
    _error(issues, "code-invalid", where, message)


def _coding_state(field: _Field, coding: dict) -> bool | None:
    """True: its code is in the value set, False: not; None: its system is not in the value set."""
    system, code = coding.get("system"), coding.get("code")
    if type(system) is not str or system not in field.systems:
        return None
    return type(code) is str and (system, code) in field.pairs


# -- required bindings the compiled tables cannot expand ----------------------------------------
# (grammar-based or external code systems: mime types, currencies, UCUM, LOINC answer lists) are
# asked of the terminology service of the server handling the request, which knows what was
# loaded into it or stored in it; where it cannot tell either, the value is not judged.

_SERVICE_BOUND = ("code", "Coding", "CodeableConcept")


def _service_bound(check: Callable, url: str, element_type: str) -> Callable:
    def checked(field: _Field, value: object, path: str, issues: list[Issue]) -> None:
        check(field, value, path, issues)
        if element_type == "code":
            if type(value) is str and in_value_set(url, None, value) is False:
                _error(issues, "code-invalid", path, _not_in_value_set(field, value))
            return
        concept = type(value) is dict and element_type == "CodeableConcept"
        codings = value.get("coding") if concept else [value]
        if type(codings) is not list:
            return
        states = [
            in_value_set(url, c["system"], c["code"]) if type(c) is dict and type(c.get("system")) is str and type(c.get("code")) is str else None
            for c in codings
        ]
        if False in states and True not in states:
            where = f"{path}.coding[{states.index(False)}].code" if concept else f"{path}.code"
            _error(issues, "code-invalid", where, _not_in_value_set(field, codings[states.index(False)].get("code")))

    return checked


def _check_resource(field: _Field, value: object, path: str, issues: list[Issue]) -> None:
    _walk_resource(value, path, issues)


def _check_contained(field: _Field, value: object, path: str, issues: list[Issue]) -> None:
    if type(value) is dict and "contained" in value:
        message = "A contained resource must not contain resources"
        _error(issues, "invalid", f"{path}.contained", message)
    _walk_resource(value, path, issues)


def _check_extension_content(extension: dict, path: str, issues: list[Issue]) -> None:
    has_value = any(key.startswith(("value", "_value")) for key in extension)
    if has_value == ("extension" in extension):
        message = "An extension must have either a value[x] or nested extensions, not both"
        _error(issues, "invalid", path, message)


def _primitive_check(name: str, regex: str | None) -> PrimitiveCheck:
    if name == "boolean":
        return _check_boolean
    if name in INTEGER_RANGES:
        return _integer_check(name, INTEGER_RANGES[name])
    if name == "decimal":
        return _check_decimal
    if name == "xhtml":
        return _check_xhtml
    max_length = None if name in UNLIMITED_STRING_TYPES else MAX_STRING_LENGTH
    return _string_check(name, _compile_regex(regex), max_length)


def _compile_regex(regex: str | None) -> re.Pattern | None:
    """The spec's (XML Schema style) regex in Python: ASCII classes like Java, and `\\s*` made
    possessive so that base64Binary's nested quantifiers cannot backtrack exponentially."""
    if regex is None:
        return None
    try:
        return re.compile(regex.replace(r"\s*", r"\s*+"), re.ASCII)
    except re.error:
        return None


def _check_boolean(value: object) -> Problem | None:
    if type(value) is not bool:
        return "structure", f"Expected a JSON boolean, not {_json_kind(value)}"
    return None


def _check_decimal(value: object) -> Problem | None:
    if type(value) not in (int, Decimal, float):
        return "structure", f"Expected a JSON number for a decimal, not {_json_kind(value)}"
    return None


def _integer_check(name: str, minimum: int) -> PrimitiveCheck:
    def check(value: object) -> Problem | None:
        if type(value) is not int:
            return "structure", f"Expected a JSON integer for {name}, not {_json_kind(value)}"
        if not minimum <= value <= INT32_MAX:
            return "value", f"{value} is out of range for {name} ({minimum}..{INT32_MAX})"
        return None

    return check


_CONTROL_CHARACTER = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
# Patterns a printable value (no control character, tab, CR or LF) satisfies without a regex:
# string and markdown allow any such text, uri/url/canonical any without a space.
_ANY_TEXT = r"[ \r\n\t\S]+"
_NO_WHITESPACE = r"\S*"


def _string_check(
    name: str, pattern: re.Pattern | None, max_length: int | None
) -> PrimitiveCheck:
    source = pattern.pattern.replace(r"\s*+", r"\s*") if pattern is not None else None
    if pattern is None or source == _ANY_TEXT:
        def plain(value: str) -> bool:
            return True
    elif source == _NO_WHITESPACE:
        def plain(value: str) -> bool:
            return " " not in value
    else:
        def plain(value: str) -> bool:
            return pattern.fullmatch(value) is not None  # type: ignore[union-attr]
    limit = max_length if max_length is not None else float("inf")

    def check(value: object) -> Problem | None:
        if type(value) is str and value.isprintable() and value and value[0] != " " and len(value) <= limit:
            if plain(value):
                return None  # the common case, decided without the regexes below
        return _string_problem(name, pattern, max_length, value)

    return check


def _string_problem(name: str, pattern: re.Pattern | None, max_length: int | None, value: object) -> Problem | None:
    if type(value) is not str:
        return "structure", f"Expected a JSON string for {name}, not {_json_kind(value)}"
    if not value or value.isspace():
        return "value", f"A {name} value must not be empty or only whitespace"
    if _CONTROL_CHARACTER.search(value):
        return "value", f"A {name} value must not contain control characters other than tab, CR and LF"
    if max_length is not None and len(value) > max_length:
        return "value", f"A {name} value must not be longer than {max_length} characters"
    if pattern is not None and pattern.fullmatch(value) is None:
        return "value", f"{_shown(value)} is not a valid {name}"
    return None


def _check_xhtml(value: object) -> Problem | None:
    if type(value) is not str:
        return "structure", f"Expected a JSON string for xhtml, not {_json_kind(value)}"
    if not (value.startswith("<div") and value.endswith("</div>")):
        return "value", "The narrative must be a single <div> element"
    if SCRIPT_TAG.search(value):
        return "value", "The narrative must not contain <script>"
    return None
