"""The FHIR R4 definitions Ficus runs on, compiled from the official core package.

`definitions()` returns the process-wide `Definitions`; the compiled tables are cached on disk
(MessagePack) so that start-up does not re-read the package.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import msgspec

from ficus.spec.compile import compile_package
from ficus.spec.package import R4_CORE_PACKAGE, iter_package_resources

CACHE_FORMAT = 2


class Element(NamedTuple):
    """One child element of a type, as the validator and index extractors need it."""

    min: int
    many: bool
    types: list[str]
    required_value_set: str | None
    content_reference: str | None
    choice_name: str | None


@dataclass(frozen=True)
class SearchParameter:
    url: str
    code: str
    base: tuple[str, ...]
    type: str
    expression: str
    target: tuple[str, ...]
    component: tuple[dict, ...]
    comparator: tuple[str, ...]
    modifier: tuple[str, ...]


class Definitions:
    """Read-only view of the compiled R4 tables."""

    def __init__(self, tables: dict) -> None:
        self.resource_types: frozenset[str] = frozenset(tables["resource_types"])
        self.types: dict[str, dict] = tables["types"]
        self._children: dict[tuple[str, str], dict[str, Element]] = {}
        self.compartments: dict[str, dict[str, list[str]]] = tables["compartments"]
        self.value_sets: dict[str, frozenset[tuple[str, str]]] = {
            url: frozenset((s, c) for s, c in codes) for url, codes in tables["value_sets"].items()
        }
        self.value_set_codes: dict[str, frozenset[str]] = {
            url: frozenset(c for _, c in codes) for url, codes in self.value_sets.items()
        }
        self.search_parameters: list[SearchParameter] = [
            SearchParameter(
                url=p["url"],
                code=p["code"],
                base=tuple(p["base"]),
                type=p["type"],
                expression=p["expression"],
                target=tuple(p["target"]),
                component=tuple(p["component"]),
                comparator=tuple(p["comparator"]),
                modifier=tuple(p["modifier"]),
            )
            for p in tables["search_parameters"]
        ]
        self._params_by_type: dict[str, dict[str, SearchParameter]] = {}

    def children(self, type_name: str, path: str) -> dict[str, Element]:
        """The elements under `path` (e.g. `Patient.contact`) of `type_name`'s definition."""
        key = (type_name, path)
        found = self._children.get(key)
        if found is None:
            raw = self.types[type_name]["elements"].get(path, {})
            found = {name: Element(*values) for name, values in raw.items()}
            self._children[key] = found
        return found

    def is_resource_type(self, name: str) -> bool:
        return name in self.resource_types

    def search_parameters_for(self, resource_type: str) -> dict[str, SearchParameter]:
        """Search parameters by code that apply to a resource type (its own and inherited)."""
        found = self._params_by_type.get(resource_type)
        if found is None:
            lineage = {resource_type, "Resource"}
            if self.types.get(resource_type, {}).get("base") == "DomainResource":
                lineage.add("DomainResource")
            found = {}
            for param in self.search_parameters:
                if lineage.intersection(param.base):
                    found.setdefault(param.code, param)
            self._params_by_type[resource_type] = found
        return found


def _cache_dir() -> Path:
    configured = os.environ.get("FICUS_CACHE_DIR")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ficus"


def _package_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def load_tables(package: Path = R4_CORE_PACKAGE) -> dict:
    """The compiled tables, from the cache when it is current, else compiled and cached."""
    cache_file = _cache_dir() / f"r4-core-{_package_digest(package)}-v{CACHE_FORMAT}.msgpack"
    try:
        return msgspec.msgpack.decode(cache_file.read_bytes())
    except (OSError, msgspec.DecodeError):
        pass
    tables = compile_package(iter_package_resources(package))
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cache_file.parent, delete=False) as handle:
            handle.write(msgspec.msgpack.encode(tables))
        os.replace(handle.name, cache_file)
    except OSError:
        pass  # a read-only home still works, it just compiles at every start
    return tables


@functools.cache
def definitions() -> Definitions:
    return Definitions(load_tables())
