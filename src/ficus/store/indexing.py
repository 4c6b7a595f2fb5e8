"""Search index rows for a resource, extracted from the SearchParameters' FHIRPath expressions.

Common expression shapes (paths, `as`/`ofType`, `where(resolve() is X)`, `where(field='v')`,
`extension('url')`, `[n]`, unions) compile to plain Python walkers; the rest run through
fhirpathpy. Every row carries `pkey`, a 64-bit hash of (resource type, parameter), so the
indexes lead with one narrow integer instead of two strings.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ficus.fhirtime import date_range
from ficus.spec import Definitions, SearchParameter
from ficus.store import ucum

IndexRows = dict[str, list[tuple]]
Extractor = Callable[[Any], Iterable[Any]]
Row = tuple[str, str, tuple]  # (table, derived-parameter suffix, data columns)

INDEX_TABLES = ("string", "token", "date", "number", "quantity", "reference", "uri")
# Tables whose values an index orders as `_sort` does (ficus.search.ordered walks them).
ORDERED_TABLES = ("date", "number", "quantity")
# Data columns per table, after (rid, res_type, param, pkey, grp).
INDEX_COLUMNS: dict[str, tuple[str, ...]] = {
    "string": ("value", "exact", "vkey"),
    "token": ("system", "code", "text"),
    "date": ("low", "high"),
    "number": ("value", "high"),
    "quantity": ("value", "system", "code", "unit", "cvalue", "ccode", "high", "chigh"),
    "reference": ("target_type", "target_id", "url"),
    "uri": ("value",),
}
INDEX_ROW_COLUMNS: dict[str, tuple[str, ...]] = {
    table: ("rid", "res_type", "param", "pkey", "grp", *columns) for table, columns in INDEX_COLUMNS.items()
}
INDEXED_TYPES = frozenset(INDEX_TABLES) | {"composite", "special"}
# Answered from the `resource` table, never indexed.
RESOURCE_COLUMN_PARAMETERS = frozenset({"_id", "_lastUpdated"})
# Derived parameter names: they hold ':' or '$', which no search parameter code can.
IDENTIFIER_SUFFIX = ":identifier"  # Reference.identifier of a reference parameter (token rows)
OF_TYPE_SUFFIX = ":of-type"  # Identifier.type + value of a token parameter (token rows)
VALUE_SET_CONCEPT = "$concept"  # (system, code) of every concept a stored ValueSet lists
STRING_LIMIT = 512
_FOREVER = 2**62
_IDENTIFIER = r"[A-Za-z][A-Za-z0-9_]*"
_STEP = re.compile(
    rf"^(?:(?P<child>{_IDENTIFIER})(?:\[(?P<index>\d+)\])?"
    rf"|where\(resolve\(\) is (?P<resolve>{_IDENTIFIER})\)"
    rf"|where\((?P<field>{_IDENTIFIER})\s*=\s*'(?P<value>[^']*)'\)"
    rf"|(?:as|ofType)\((?P<as>{_IDENTIFIER})\)"
    rf"|extension\('(?P<extension>[^']+)'\)"
    rf"|where\(hasExtension\('(?P<has_extension>[^']+)'\)\)"
    rf"|(?P<first>first\(\)))$"
)
_PAREN_AS = re.compile(rf"^\((?P<path>[^()]+(?:\([^()]*\)[^()]*)*) as (?P<type>{_IDENTIFIER})\)(?P<rest>(?:\..+)?)$")
_TRAILING_AS = re.compile(rf"^(?P<path>.+) as (?P<type>{_IDENTIFIER})$")


def param_key(res_type: str, code: str) -> int:
    """The signed 64-bit hash of (resource type, parameter) stored in every row's `pkey`."""
    return _param_key(res_type, code)


@functools.lru_cache(maxsize=65536)
def _param_key(res_type: str, code: str) -> int:
    digest = hashlib.blake2b(f"{res_type}|{code}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def repeated_keys(rows: IndexRows) -> set[int]:
    """The `pkey`s of `ORDERED_TABLES` that hold more than one of one resource's `rows`
    (recorded in `search_repeated_key`)."""
    repeated: set[int] = set()
    for table in ORDERED_TABLES:
        found = rows[table]
        if len(found) > 1:
            seen: set[int] = set()
            for row in found:
                if row[1] in seen:
                    repeated.add(row[1])
                seen.add(row[1])
    return repeated


def component_code(code: str, index: int) -> str:
    """The derived parameter holding component `index` of composite parameter `code`."""
    return f"{code}${index}"


def normalize_string(value: str) -> str:
    """Case- and accent-insensitive form used by string search."""
    if value.isascii():
        return value.lower()
    decomposed = unicodedata.normalize("NFKD", value)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def string_key(value: str) -> bytes:
    """The bytes stored in `idx_string.vkey`: they order the same on both databases."""
    return normalize_string(value)[:STRING_LIMIT].encode()


# -- definitions with the server's own SearchParameters ------------------------------------------

class SearchDefinitions(Definitions):
    """The R4 definitions plus the active SearchParameter resources stored in the server.

    Everything but the search parameters comes from the wrapped `Definitions`; `use_stored`
    swaps the stored set (after `ficus reindex`) and bumps `generation`.
    """

    def __init__(self, base: Definitions) -> None:
        self._base = base
        self._stored: tuple[SearchParameter, ...] = ()
        self._params_by_type: dict[str, dict[str, SearchParameter]] = {}
        self._by_url: dict[str, SearchParameter] | None = None
        self.layouts: dict[str, CompositeLayout] = {}  # by resource type, see composite_layout
        self.generation = 0

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._base, name)

    @property
    def base(self) -> Definitions:
        return self._base

    @property
    def stored_parameters(self) -> tuple[SearchParameter, ...]:
        return self._stored

    @property
    def search_parameters(self) -> list[SearchParameter]:  # type: ignore[override]
        return [*self._base.search_parameters, *self._stored]

    def search_parameters_for(self, resource_type: str) -> dict[str, SearchParameter]:
        found = self._params_by_type.get(resource_type)
        if found is None:
            found = dict(self._base.search_parameters_for(resource_type))
            lineage = _lineage(self._base, resource_type)
            for param in self._stored:
                if lineage.intersection(param.base):
                    found[param.code] = param
            self._params_by_type[resource_type] = found
        return found

    def use_stored(self, params: Iterable[SearchParameter]) -> None:
        self._stored = tuple(params)
        self._params_by_type = {}
        self._by_url = None
        self.layouts = {}
        self.generation += 1

    def parameter_by_url(self, url: str) -> SearchParameter | None:
        if self._by_url is None:
            self._by_url = {p.url: p for p in self.search_parameters}
        return self._by_url.get(url)


def _lineage(definitions: Definitions, resource_type: str) -> set[str]:
    lineage = {resource_type, "Resource"}
    if definitions.types.get(resource_type, {}).get("base") == "DomainResource":
        lineage.add("DomainResource")
    return lineage


def with_stored_parameters(definitions: Definitions) -> SearchDefinitions:
    """`definitions` able to carry stored SearchParameters (itself when it already can)."""
    return definitions if isinstance(definitions, SearchDefinitions) else SearchDefinitions(definitions)


def parameter_by_url(definitions: Definitions, url: str) -> SearchParameter | None:
    if isinstance(definitions, SearchDefinitions):
        return definitions.parameter_by_url(url)
    return _base_by_url(definitions).get(url)


@functools.lru_cache(maxsize=4)
def _base_by_url(definitions: Definitions) -> dict[str, SearchParameter]:
    return {p.url: p for p in definitions.search_parameters}


def search_parameter_from_resource(resource: dict) -> SearchParameter | None:
    """The SearchParameter a stored resource defines, or None unless it is active and usable."""
    if resource.get("status") != "active":
        return None
    code, kind, expression = resource.get("code"), resource.get("type"), resource.get("expression")
    base = resource.get("base")
    if not (isinstance(code, str) and code and isinstance(kind, str) and isinstance(base, list) and base):
        return None
    if kind not in INDEXED_TYPES or not isinstance(expression, str) or not expression.strip():
        return None
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_\-]*", code):
        return None
    components = tuple(
        {"definition": c.get("definition", ""), "expression": c.get("expression", "")}
        for c in resource.get("component", []) if isinstance(c, dict)
    )
    return SearchParameter(
        url=resource.get("url") or f"urn:ficus:SearchParameter/{resource.get('id')}",
        code=code,
        base=tuple(b for b in base if isinstance(b, str)),
        type=kind,
        expression=expression,
        target=tuple(t for t in resource.get("target", []) if isinstance(t, str)),
        component=components,
        comparator=tuple(resource.get("comparator", [])),
        modifier=tuple(resource.get("modifier", [])),
    )


# -- FHIRPath expressions to extractors ---------------------------------------------------------

def split_union(expression: str) -> list[str]:
    """Split a FHIRPath expression on top-level `|`."""
    parts, depth, quoted, current = [], 0, False, []
    for char in expression:
        if char == "'":
            quoted = not quoted
        elif not quoted and char in "([":
            depth += 1
        elif not quoted and char in ")]":
            depth -= 1
        if char == "|" and depth == 0 and not quoted:
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


def _shared(definitions: Definitions) -> Definitions:
    """The process-wide base definitions behind a `SearchDefinitions` (a stable cache key)."""
    return definitions.base if isinstance(definitions, SearchDefinitions) else definitions


def _choice_names(definitions: Definitions) -> frozenset[str]:
    return _choice_names_of(_shared(definitions))


def _choice_suffixes(definitions: Definitions) -> frozenset[str]:
    return _choice_suffixes_of(_shared(definitions))


@functools.lru_cache(maxsize=4)
def _choice_names_of(definitions: Definitions) -> frozenset[str]:
    """Names of choice elements (`value` of `value[x]`, `effective`, ...) anywhere in R4."""
    names = set()
    for info in definitions.types.values():
        for children in info["elements"].values():
            for element in children.values():
                if element[5]:
                    names.add(element[5])
    return frozenset(names)


@functools.lru_cache(maxsize=4)
def _choice_suffixes_of(definitions: Definitions) -> frozenset[str]:
    return frozenset(t[0].upper() + t[1:] for t in definitions.types)


def _normalise_as(part: str) -> str:
    """`(X.y as T).z` and `X.y as T` become `X.y.as(T).z`."""
    part = part.strip()
    match = _PAREN_AS.match(part)
    if match:
        return f"{match['path']}.as({match['type']}){match['rest']}"
    if part.startswith("(") and part.endswith(")") and _balanced(part[1:-1]):
        return _normalise_as(part[1:-1])
    match = _TRAILING_AS.match(part)
    if match and "(" not in match["path"].split(".")[-1]:
        return f"{match['path']}.as({match['type']})"
    return part


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


_EXISTS_NOT_FALSE = re.compile(r"^(?P<path>[A-Za-z][\w.]*)\.exists\(\) and (?P=path) != false$")


Steps = tuple[tuple[str, Any], ...]


def compile_path(resource_type: str | None, part: str, definitions: Definitions) -> Extractor | None:
    """A walker for one union member, or None when it is not a shape we compile.

    With `resource_type` None the path is relative (a composite component's expression).
    """
    exists = _EXISTS_NOT_FALSE.match(part.strip())
    if exists:  # Patient `deceased`: true for deceasedBoolean true or any deceasedDateTime
        walk = compile_path(resource_type, exists["path"], definitions)
        if walk is None:
            return None

        def exists_not_false(resource: Any) -> list[Any]:
            values = walk(resource)
            return [bool(values) and values != [False]]

        return exists_not_false
    steps = compile_steps(resource_type, part, definitions)
    return None if steps is None else walker(steps, definitions)


def compile_steps(resource_type: str | None, part: str, definitions: Definitions) -> Steps | None:
    """The steps of a plain path (see `compile_path`), or None when it is not one."""
    if _EXISTS_NOT_FALSE.match(part.strip()):
        return None
    steps = split_steps(_normalise_as(part))
    if resource_type is not None:
        if steps[0] not in (resource_type, "Resource", "DomainResource"):
            return None
        steps = steps[1:]
    choice_names = _choice_names(definitions)
    compiled: list[tuple[str, Any]] = []
    for step in steps:
        match = _STEP.match(step.strip())
        if not match:
            return None
        if match["child"]:
            compiled.append(("choice" if match["child"] in choice_names else "child", match["child"]))
            if match["index"] is not None:
                compiled.append(("index", int(match["index"])))
        elif match["first"]:
            compiled.append(("index", 0))
        elif match["resolve"]:
            compiled.append(("resolve", match["resolve"]))
        elif match["field"]:
            compiled.append(("where", (match["field"], match["value"])))
        elif match["has_extension"]:
            compiled.append(("has_extension", match["has_extension"]))
        elif match["as"]:
            if not compiled or compiled[-1][0] not in ("child", "choice"):
                return None
            kind, name = compiled[-1]
            if kind == "choice":
                type_name = match["as"]
                compiled[-1] = ("child", name + type_name[0].upper() + type_name[1:])
        else:
            compiled.append(("extension", match["extension"]))
    return tuple(compiled)


def walker(steps: Steps, definitions: Definitions) -> Extractor:
    """The function that walks `steps` from a node; child and choice steps run inline (the common case)."""
    suffixes = _choice_suffixes(definitions)
    ends_on_extension = bool(steps) and steps[-1][0] == "extension"

    def walk(resource: Any) -> list[Any]:
        nodes: list[Any] = [resource]
        for kind, argument in steps:
            if kind == "child" or kind == "choice":
                found: list[Any] = []
                for node in nodes:
                    if type(node) is dict:
                        value = node.get(argument)
                        if value is None and kind == "choice":
                            value = _choice_value(node, argument, suffixes)
                        if value is None:
                            continue
                        if type(value) is list:
                            found.extend([v for v in value if v is not None])
                        else:
                            found.append(value)
                nodes = found
            else:
                nodes = _apply_step(nodes, kind, argument, suffixes)
            if not nodes:
                return nodes
        if ends_on_extension:  # a parameter on an extension searches the extension's value
            nodes = [value for node in nodes for value in _extension_values(node)]
        return nodes

    return walk


def _apply_step(nodes: list[Any], kind: str, argument: Any, suffixes: frozenset[str]) -> list[Any]:
    if kind == "index":
        return nodes[argument:argument + 1]
    found: list[Any] = []
    for node in nodes:
        if not isinstance(node, dict):
            continue
        if kind == "child" or kind == "choice":
            value = node.get(argument)
            if value is None and kind == "choice":
                value = _choice_value(node, argument, suffixes)
            if isinstance(value, list):
                found.extend(v for v in value if v is not None)
            elif value is not None:
                found.append(value)
        elif kind == "resolve":
            reference = node.get("reference", "")
            if isinstance(reference, str) and parse_reference(reference)[0] == argument:
                found.append(node)
        elif kind == "where":
            field, expected = argument
            if node.get(field) == expected:
                found.append(node)
        elif kind == "has_extension":
            extensions = node.get("extension", [])
            if any(isinstance(e, dict) and e.get("url") == argument for e in extensions):
                found.append(node)
        else:
            for extension in node.get("extension", []):
                if isinstance(extension, dict) and extension.get("url") == argument:
                    found.append(extension)
    return found


def _extension_values(extension: dict) -> list[Any]:
    return [value for key, value in extension.items() if key.startswith("value") and len(key) > 5]


def _choice_value(node: dict, name: str, suffixes: frozenset[str]) -> Any:
    for key, value in node.items():
        if key.startswith(name) and key[len(name):] in suffixes:
            return value
    return None


@functools.lru_cache(maxsize=4096)  # a Bundle's resources name the same few patients and encounters
def parse_reference(reference: str) -> tuple[str | None, str | None]:
    """(type, id) of a literal reference `Type/id`, `Type/id/_history/n` or an absolute URL."""
    parts = reference.split("?", 1)[0].split("#", 1)[0].rstrip("/").split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) >= 2 and parts[-2][:1].isupper() and parts[-2].isalpha() and parts[-1]:
        return parts[-2], parts[-1]
    return None, None


def _fhirpath_extractor(expression: str) -> Extractor | None:
    from fhirpathpy import compile as compile_fhirpath
    from fhirpathpy.models import models

    try:
        compiled = compile_fhirpath(expression, models["r4"])
    except Exception:  # noqa: BLE001 - an expression fhirpathpy cannot parse is not indexed
        return None

    def evaluate(resource: Any) -> list[Any]:
        try:
            return [_plain(value) for value in compiled(resource)]
        except Exception:  # noqa: BLE001 - one odd resource must not block its write
            return []

    return evaluate


def _plain(value: Any) -> Any:
    """fhirpathpy's own date/time/quantity objects as the JSON values the converters expect."""
    if isinstance(value, (str, dict, bool, int, Decimal, float, list)) or value is None:
        return value
    return str(value)


@dataclass
class ExtractorStats:
    """How the expressions of one resource type's parameters were compiled."""

    compiled: int = 0
    fallback: int = 0
    failed: int = 0
    fallback_parameters: list[str] | None = None


@dataclass(frozen=True)
class Member:
    """One union member of an expression: its steps when it is a plain path, and its walker."""

    steps: Steps | None
    extract: Extractor


def compile_expression(
    resource_type: str | None, expression: str, definitions: Definitions, stats: ExtractorStats | None = None
) -> list[Extractor]:
    """Extractors for each union member of `expression` that applies to `resource_type`."""
    return [member.extract for member in compile_members(resource_type, expression, definitions, stats)]


def compile_members(
    resource_type: str | None, expression: str, definitions: Definitions, stats: ExtractorStats | None = None
) -> list[Member]:
    """The union members of `expression` that apply to `resource_type`, compiled."""
    members: list[Member] = []
    for part in split_union(expression):
        root = resource_type
        if resource_type is not None:
            head = split_steps(part.lstrip("( "))[0].strip()
            if head not in (resource_type, "Resource", "DomainResource"):
                if head not in definitions.children(resource_type, resource_type):
                    continue
                root = None  # a path relative to the resource (InsurancePlan `name | alias`)
        steps = compile_steps(root, part, definitions)
        compiled = walker(steps, definitions) if steps is not None else compile_path(root, part, definitions)
        if compiled is None:
            compiled = _fhirpath_extractor(part) if root is not None else None
            if stats is not None:
                if compiled is None:
                    stats.failed += 1
                else:
                    stats.fallback += 1
        elif stats is not None:
            stats.compiled += 1
        if compiled is not None:
            members.append(Member(steps, compiled))
    return members


# -- composites: joined from their components' own rows, or stored as copies --------------------

@dataclass(frozen=True)
class CompositeLayout:
    """How the composite parameters of one resource type are indexed.

    `joined` maps a composite's code to the codes of its component parameters: it is searched by
    joining their own rows on (rid, grp). The other composites store copies under `code$i`.
    `groups` says, per component parameter, which union members (by steps) number their rows by
    element: under None the resource itself is the element (grp 0); under a child name each
    element of that child is one (grp = its index + 1). Rows of other members have no grp.
    """

    joined: dict[str, tuple[str, ...]]
    groups: dict[str, dict[Steps, str | None]]


def composite_layout(definitions: Definitions, resource_type: str) -> CompositeLayout:
    """The `CompositeLayout` of `resource_type` (the indexer and the search both use it)."""
    memo = definitions.layouts if isinstance(definitions, SearchDefinitions) else _base_layouts(definitions)
    found = memo.get(resource_type)
    if found is None:
        found = memo[resource_type] = _composite_layout(definitions, resource_type)
    return found


@functools.lru_cache(maxsize=4)
def _base_layouts(definitions: Definitions) -> dict[str, CompositeLayout]:
    return {}


def _composite_layout(definitions: Definitions, resource_type: str) -> CompositeLayout:
    params = definitions.search_parameters_for(resource_type)
    joined: dict[str, tuple[str, ...]] = {}
    groups: dict[str, dict[Steps, str | None]] = {}
    for param in params.values():
        if param.type != "composite" or not param.expression or len(param.component) < 2:
            continue
        found = _joined_components(definitions, resource_type, param, params)
        if found is None:
            continue
        codes, claims = found
        # a member numbered by another element already (another composite's claim) cannot serve both
        if any(groups.get(code, {}).get(steps, prefix) != prefix for code, steps, prefix in claims):
            continue
        for code, steps, prefix in claims:
            groups.setdefault(code, {})[steps] = prefix
        joined[param.code] = codes
    return CompositeLayout(joined, groups)


def _joined_components(
    definitions: Definitions, resource_type: str, param: SearchParameter, params: dict[str, SearchParameter]
) -> tuple[tuple[str, ...], list[tuple[str, Steps, str | None]]] | None:
    """The component parameters' codes and the members they must number by element, when every
    value a component takes on an element is a value of its own parameter from a member that
    walks through that element (so joining those rows on the element finds the same matches)."""
    prefixes: list[str | None] = []
    for element in compile_members(resource_type, param.expression, definitions):
        if element.steps == ():
            prefixes.append(None)
        elif element.steps is not None and len(element.steps) == 1 and element.steps[0][0] == "child":
            prefixes.append(element.steps[0][1])
        else:
            return None
    if not prefixes or len(set(prefixes)) != len(prefixes) or sum(p is not None for p in prefixes) > 1:
        return None  # two child elements would share grp numbers
    codes: list[str] = []
    claims: list[tuple[str, Steps, str | None]] = []
    for component in param.component:
        definition = parameter_by_url(definitions, component["definition"])
        indexed = params.get(definition.code) if definition is not None else None
        if indexed is None or indexed.type != definition.type or indexed.type not in INDEX_TABLES:  # type: ignore[union-attr]
            return None
        if indexed.code in RESOURCE_COLUMN_PARAMETERS or component["expression"].startswith("%resource"):
            return None
        parts = compile_members(None, component["expression"], definitions)
        if not parts or any(part.steps is None for part in parts):
            return None
        members = {m.steps for m in compile_members(resource_type, indexed.expression, definitions) if m.steps is not None}
        for prefix in prefixes:
            head: Steps = () if prefix is None else (("child", prefix),)
            for part in parts:
                steps = head + part.steps  # type: ignore[operator]
                # an index step picks from all elements at once, not from each one
                if steps not in members or any(kind == "index" for kind, _ in steps):
                    return None
                claims.append((indexed.code, steps, prefix))
        codes.append(indexed.code)
    return tuple(codes), claims


# -- plans: what one resource type yields --------------------------------------------------------

_UNGROUPED = object()


class _SimplePlan:
    """One search parameter whose values convert to rows of its type's table."""

    def __init__(
        self, res_type: str, code: str, kind: str, members: list[Member],
        groups: dict[Steps, str | None], definitions: Definitions,
    ) -> None:
        self.code = code
        self.converter = _CONVERTERS[kind]
        self.walks: list[tuple[Extractor, Any]] = []
        # the resource's own elements where the paths start; None when some path starts elsewhere
        self.top_keys: set[str] | None = set()
        for member in members:
            steps = member.steps
            prefix = groups.get(steps, _UNGROUPED) if steps is not None else _UNGROUPED
            walk = member.extract
            if isinstance(prefix, str):
                walk = walker(steps[1:], definitions)  # type: ignore[index]
            self.walks.append((walk, prefix))
            if self.top_keys is not None:
                first = _top_keys(steps[0], definitions) if steps else None
                if first is None:
                    self.top_keys = None
                else:
                    self.top_keys.update(first)
        self.keys = {"": (code, param_key(res_type, code))}
        for suffix in (IDENTIFIER_SUFFIX, OF_TYPE_SUFFIX):
            self.keys[suffix] = (code + suffix, param_key(res_type, code + suffix))

    def emit(self, resource: dict, rows: IndexRows) -> None:
        found: list[tuple[str, tuple]] = []
        for walk, prefix in self.walks:
            if prefix is _UNGROUPED:
                self._convert(walk(resource), None, found)
            elif prefix is None:
                self._convert(walk(resource), 0, found)
            else:
                elements = resource.get(prefix)
                if elements is None:
                    continue
                for index, element in enumerate(elements if type(elements) is list else [elements]):
                    if element is not None:
                        self._convert(walk(element), index + 1, found)
        if len(found) > 1:
            found = list(dict.fromkeys(found))  # one row per distinct value
        for table, row in found:
            rows[table].append(row)

    def _convert(self, values: list[Any], group: int | None, found: list[tuple[str, tuple]]) -> None:
        keys = self.keys
        for value in values:
            for table, suffix, columns in self.converter(value):
                name, pkey = keys[suffix]
                found.append((table, (name, pkey, group, *columns)))


def _top_keys(step: tuple[str, Any], definitions: Definitions) -> Iterable[str] | None:
    """The resource's own elements a path's first step can read; None when it may read any."""
    kind, argument = step
    if kind == "child":
        return (argument,)
    if kind == "choice":  # `effective` reads effectiveDateTime, effectivePeriod, ...
        return (argument, *(argument + suffix for suffix in _choice_suffixes(definitions)))
    if kind == "extension":
        return ("extension",)
    return None


class _CompositePlan:
    """A composite parameter: each element's components share a `grp` number."""

    def __init__(self, res_type: str, code: str, elements: list[Extractor], components: list[tuple[str, list[Extractor], bool]]) -> None:
        self.elements = elements
        self.components = [
            (component_code(code, i), param_key(res_type, component_code(code, i)), _CONVERTERS[kind], extractors, from_root)
            for i, (kind, extractors, from_root) in enumerate(components)
        ]

    def emit(self, resource: dict, rows: IndexRows) -> None:
        """Rows only for elements with a value for every component: only those can match."""
        group = 0
        for element_extractor in self.elements:
            for node in element_extractor(resource):
                found: list[tuple[str, tuple]] = []
                for name, pkey, converter, extractors, from_root in self.components:
                    before = len(found)
                    for extractor in extractors:
                        for value in extractor(resource if from_root else node):
                            for table, suffix, columns in converter(value):
                                if not suffix:
                                    found.append((table, (name, pkey, group, *columns)))
                    if len(found) == before:
                        break
                else:
                    for table, row in dict.fromkeys(found):
                        rows[table].append(row)
                    group += 1


class _NearPlan:
    """`near` (Location.position): latitude and longitude as number rows of one group."""

    def __init__(self, res_type: str, code: str, extractors: list[Extractor]) -> None:
        self.extractors = extractors
        self.keys = [(component_code(code, i), param_key(res_type, component_code(code, i))) for i in (0, 1)]

    def emit(self, resource: dict, rows: IndexRows) -> None:
        group = 0
        for extractor in self.extractors:
            for position in extractor(resource):
                if not isinstance(position, dict):
                    continue
                latitude, longitude = position.get("latitude"), position.get("longitude")
                if _is_number(latitude) and _is_number(longitude):
                    for (name, pkey), value in zip(self.keys, (latitude, longitude)):
                        rows["number"].append((name, pkey, group, float(value), float(value)))
                    group += 1


class _ValueSetConceptPlan:
    """Every (system, code) a stored ValueSet lists, so `:in` can use ValueSets in the server."""

    def __init__(self) -> None:
        self.key = (VALUE_SET_CONCEPT, param_key("ValueSet", VALUE_SET_CONCEPT))

    def emit(self, resource: dict, rows: IndexRows) -> None:
        name, pkey = self.key
        seen: set[tuple] = set()
        compose = resource.get("compose") if isinstance(resource.get("compose"), dict) else {}
        for include in compose.get("include", []):
            if isinstance(include, dict):
                for concept in include.get("concept", []):
                    if isinstance(concept, dict) and isinstance(concept.get("code"), str):
                        seen.add((include.get("system"), concept["code"]))
        expansion = resource.get("expansion") if isinstance(resource.get("expansion"), dict) else {}
        stack = list(expansion.get("contains", []))
        while stack:
            entry = stack.pop()
            if isinstance(entry, dict):
                if isinstance(entry.get("code"), str):
                    seen.add((entry.get("system"), entry["code"]))
                stack.extend(entry.get("contains", []))
        rows["token"].extend((name, pkey, None, system, code, None) for system, code in sorted(seen, key=str))


class _Dispatch:
    """A resource type's plans, by the top-level element their paths start with: a resource
    holds a dozen of the elements some forty parameters look at, so most plans need not run."""

    def __init__(self, plans: list[Any]) -> None:
        self.plans = plans
        self.always: list[int] = []
        by_key: dict[str, list[int]] = {}
        for index, plan in enumerate(plans):
            keys = plan.top_keys if isinstance(plan, _SimplePlan) else None
            if keys is None:
                self.always.append(index)
            else:
                for key in keys:
                    by_key.setdefault(key, []).append(index)
        self.by_key = {key: tuple(indexes) for key, indexes in by_key.items()}


class IndexExtractor:
    """Turns a resource into rows for the typed `idx_*` tables."""

    def __init__(self, definitions: Definitions, base_url: str | None = None) -> None:
        self.definitions = definitions
        self.local_prefix = base_url.rstrip("/") + "/" if base_url else None
        self._generation = getattr(definitions, "generation", 0)
        self._plans: dict[str, _Dispatch] = {}
        self.stats: dict[str, ExtractorStats] = {}

    def plan(self, resource_type: str) -> list[Any]:
        return self._dispatch(resource_type).plans

    def _dispatch(self, resource_type: str) -> _Dispatch:
        generation = getattr(self.definitions, "generation", 0)
        if generation != self._generation:
            self._plans, self.stats, self._generation = {}, {}, generation
        found = self._plans.get(resource_type)
        if found is None:
            found = _Dispatch(self._build_plan(resource_type))
            self._plans[resource_type] = found
        return found

    def _build_plan(self, resource_type: str) -> list[Any]:
        stats = ExtractorStats(fallback_parameters=[])
        layout = composite_layout(self.definitions, resource_type)
        plans: list[Any] = []
        for param in self.definitions.search_parameters_for(resource_type).values():
            if param.code in RESOURCE_COLUMN_PARAMETERS or not param.expression or param.type not in INDEXED_TYPES:
                continue
            if param.code in layout.joined:
                continue  # searched through its components' own rows
            before = stats.fallback + stats.failed
            plan = self._param_plan(resource_type, param, stats, layout)
            if stats.fallback + stats.failed > before:
                stats.fallback_parameters.append(param.code)  # type: ignore[union-attr]
            if plan is not None:
                plans.append(plan)
        if resource_type == "ValueSet":
            plans.append(_ValueSetConceptPlan())
        self.stats[resource_type] = stats
        return plans

    def _param_plan(self, resource_type: str, param: SearchParameter, stats: ExtractorStats, layout: CompositeLayout) -> Any:
        members = compile_members(resource_type, param.expression, self.definitions, stats)
        if not members:
            return None
        extractors = [member.extract for member in members]
        if param.type == "composite":
            components = []
            for component in param.component:
                definition = parameter_by_url(self.definitions, component["definition"])
                if definition is None or definition.type not in INDEX_TABLES:
                    return None
                expression = component["expression"]
                from_root = expression.startswith("%resource.")
                if from_root:
                    expression = resource_type + expression[len("%resource"):]
                component_extractors = compile_expression(
                    resource_type if from_root else None, expression, self.definitions, stats
                )
                if not component_extractors:
                    return None
                components.append((definition.type, component_extractors, from_root))
            return _CompositePlan(resource_type, param.code, extractors, components) if components else None
        if param.type == "special":
            return _NearPlan(resource_type, param.code, extractors) if param.code == "near" else None
        groups = layout.groups.get(param.code, {})
        return _SimplePlan(resource_type, param.code, param.type, members, groups, self.definitions)

    def rows(self, resource_type: str, resource: dict) -> IndexRows:
        rows: IndexRows = {table: [] for table in INDEX_TABLES}
        dispatch = self._dispatch(resource_type)
        by_key = dispatch.by_key
        chosen = set(dispatch.always)
        for key in resource:
            found = by_key.get(key)
            if found is not None:
                chosen.update(found)
        plans = dispatch.plans
        for index in sorted(chosen):
            plans[index].emit(resource, rows)
        if self.local_prefix and rows["reference"]:
            rows["reference"] = [self._localised(row) for row in rows["reference"]]
        return rows

    def _localised(self, row: tuple) -> tuple:
        """An absolute reference to this server's own base counts as its `Type/id`."""
        *head, target_type, target_id, url = row
        if target_id is None and url and url.startswith(self.local_prefix or "\0"):
            target_type, target_id = parse_reference(url[len(self.local_prefix or ""):])
            return (*head, target_type, target_id, url)
        return row


# -- values to row columns -----------------------------------------------------------------------

_NAME_PARTS = ("text", "family", "given", "prefix", "suffix")
_ADDRESS_PARTS = ("text", "line", "city", "district", "state", "postalCode", "country")
_SKIPPED_STRING_KEYS = frozenset({"extension", "modifierExtension", "id", "use", "period", "system", "type"})


# Converters return lists, not generators: they run a few hundred thousand times a second.

def _string_rows(value: Any) -> list[Row]:
    rows = []
    for text in _strings(value):
        normalized = normalize_string(text)
        rows.append(("string", "", (normalized, text, normalized[:STRING_LIMIT].encode())))
    return rows


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        keys: Iterable[str]
        if "family" in value or "given" in value:
            keys = _NAME_PARTS
        elif "line" in value or "city" in value or "postalCode" in value or "country" in value:
            keys = _ADDRESS_PARTS
        else:
            keys = [k for k in value if k not in _SKIPPED_STRING_KEYS]
        for key in keys:
            item = value.get(key)
            if isinstance(item, list):
                for element in item:
                    yield from _strings(element)
            elif item is not None:
                yield from _strings(item)


def _text(value: Any) -> str | None:
    return normalize_string(value)[:STRING_LIMIT] if isinstance(value, str) and value else None


def _token_rows(value: Any) -> list[Row]:
    if isinstance(value, dict):
        if "coding" in value or ("text" in value and "value" not in value and "code" not in value):
            return _codeable_concept_rows(value)
        if "code" in value or ("system" in value and "value" not in value) or "display" in value:
            return _coding_rows(value, [])
        if "value" in value:
            return _identifier_rows(value)
        return []
    if isinstance(value, bool):
        return [("token", "", (None, "true" if value else "false", None))]
    if isinstance(value, str):
        return [("token", "", (None, value, None))]
    if isinstance(value, (int, Decimal)):
        return [("token", "", (None, str(value), None))]
    return []


def _codeable_concept_rows(value: dict) -> list[Row]:
    rows: list[Row] = []
    displays = set()
    for coding in value.get("coding", []):
        if isinstance(coding, dict):
            displays.add(_text(coding.get("display")))
            _coding_rows(coding, rows)
    text = _text(value.get("text"))
    if text and text not in displays:
        rows.append(("token", "", (None, None, text)))
    return rows


def _coding_rows(coding: dict, rows: list[Row]) -> list[Row]:
    """Adds the Coding's row to `rows`."""
    code, system = coding.get("code"), coding.get("system")
    display = coding.get("display")
    if code is not None or system is not None or display:
        rows.append(("token", "", (system, code if code is None else str(code), _text(display))))
    return rows


def _identifier_rows(value: dict) -> list[Row]:
    """Identifier and ContactPoint: `system|value`; an Identifier's type also feeds `:of-type`."""
    identifier_type = value.get("type") if isinstance(value.get("type"), dict) else {}
    text = _text(identifier_type.get("text"))
    raw = value["value"]
    code = raw if isinstance(raw, str) else str(raw)
    rows: list[Row] = [("token", "", (value.get("system"), code, text))]
    for coding in identifier_type.get("coding", []):
        if isinstance(coding, dict) and coding.get("code"):
            rows.append(("token", OF_TYPE_SUFFIX, (coding.get("system"), coding["code"], code)))
    return rows


def _date_rows(value: Any) -> list[Row]:
    if isinstance(value, str):
        found = date_range(value)
        return [("date", "", found)] if found else []
    rows: list[Row] = []
    if isinstance(value, dict):
        if "start" in value or "end" in value:
            start = date_range(value["start"]) if isinstance(value.get("start"), str) else None
            end = date_range(value["end"]) if isinstance(value.get("end"), str) else None
            if start or end:
                rows.append(("date", "", ((start[0] if start else -_FOREVER), (end[1] if end else _FOREVER))))
        for event in value.get("event", []):
            rows.extend(_date_rows(event))
        repeat = value.get("repeat")
        if isinstance(repeat, dict) and isinstance(repeat.get("boundsPeriod"), dict):
            rows.extend(_date_rows(repeat["boundsPeriod"]))
    return rows


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, Decimal, float)) and not isinstance(value, bool)


def _number_rows(value: Any) -> list[Row]:
    if _is_number(value):
        return [("number", "", (float(value), float(value)))]
    if isinstance(value, dict):
        if _is_number(value.get("value")):
            return [("number", "", (float(value["value"]), float(value["value"])))]
        if "low" in value or "high" in value:  # Range
            low, high = _bound(value.get("low"), -_UNBOUNDED), _bound(value.get("high"), _UNBOUNDED)
            if low is not None and high is not None:
                return [("number", "", (low, high))]
    return []


_UNBOUNDED = 1e300


def _bound(quantity: Any, default: float) -> float | None:
    if quantity is None:
        return default
    if isinstance(quantity, dict) and _is_number(quantity.get("value")):
        return float(quantity["value"])
    return None


def _quantity_rows(value: Any) -> list[Row]:
    if isinstance(value, dict) and _is_number(value.get("value")):
        number = float(value["value"])
        system, code = value.get("system"), value.get("code")
        if code is None and "currency" in value:
            code, system = value["currency"], system or "urn:iso:std:iso:4217"
        cvalue, ccode = _canonical(number, system, code)
        return [("quantity", "", (number, system, code, value.get("unit"), cvalue, ccode, number, cvalue))]
    if isinstance(value, dict) and ("low" in value or "high" in value):  # Range
        ends = [q for q in (value.get("low"), value.get("high")) if isinstance(q, dict)]
        low, high = _bound(value.get("low"), -_UNBOUNDED), _bound(value.get("high"), _UNBOUNDED)
        if not ends or low is None or high is None:
            return []
        unit = ends[0]
        system, code = unit.get("system"), unit.get("code")
        clow, ccode = _canonical(low, system, code) if "low" in value else (None, None)
        chigh, chigh_code = _canonical(high, system, code) if "high" in value else (None, None)
        ccode = ccode or chigh_code
        if ccode is not None:
            clow = -_UNBOUNDED if clow is None else clow
            chigh = _UNBOUNDED if chigh is None else chigh
        return [("quantity", "", (low, system, code, unit.get("unit"), clow, ccode, high, chigh))]
    if _is_number(value):
        return [("quantity", "", (float(value), None, None, None, None, None, float(value), None))]
    return []


def _canonical(number: float, system: Any, code: Any) -> tuple[float | None, str | None]:
    if system == ucum.UCUM_SYSTEM and isinstance(code, str):
        found = ucum.canonical(number, code)
        if found is not None:
            return found
    return None, None


def _reference_rows(value: Any) -> list[Row]:
    if isinstance(value, str):
        url = value.split("|", 1)[0]
        target_type, target_id = parse_reference(url) if "://" not in url else (None, None)
        return [("reference", "", (target_type, target_id, url))]
    rows: list[Row] = []
    if isinstance(value, dict):
        if "resourceType" in value:  # a resource itself (Bundle.entry[0].resource)
            if isinstance(value.get("id"), str):
                rows.append(("reference", "", (value["resourceType"], value["id"], None)))
            return rows
        reference = value.get("reference")
        if isinstance(reference, str) and reference and not reference.startswith("#"):
            if "://" in reference:  # another server's resource, unless IndexExtractor finds it local
                rows.append(("reference", "", (None, None, reference)))
            else:
                target_type, target_id = parse_reference(reference)
                rows.append(("reference", "", (target_type, target_id, reference if target_id is None else None)))
        identifier = value.get("identifier")
        if isinstance(identifier, dict) and "value" in identifier:
            rows.append(("token", IDENTIFIER_SUFFIX, _identifier_rows(identifier)[0][2]))
    return rows


def _uri_rows(value: Any) -> list[Row]:
    return [("uri", "", (value,))] if isinstance(value, str) else []


_CONVERTERS: dict[str, Callable[[Any], list[Row]]] = {
    "string": _string_rows,
    "token": _token_rows,
    "date": _date_rows,
    "number": _number_rows,
    "quantity": _quantity_rows,
    "reference": _reference_rows,
    "uri": _uri_rows,
}
