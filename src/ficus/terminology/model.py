"""What every code system looks like to the terminology operations, wherever its content lives.

`CodeSystemProvider` is the interface: a code system defined by a CodeSystem resource
(`codesystems.ResourceCodeSystem`) and one loaded into the database from a publisher's release
(`loaded.LoadedCodeSystem`) both answer it. Concepts are plain `Concept` records.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

CONCEPT_PROPERTIES = "http://hl7.org/fhir/concept-properties#"
INACTIVE_STATUSES = frozenset({"inactive", "retired"})


@dataclass(frozen=True)
class Designation:
    value: str
    language: str | None = None
    use: dict | None = None  # a Coding
    extensions: tuple = ()

    def to_json(self) -> dict:
        found: dict[str, Any] = {}
        if self.extensions:
            found["extension"] = list(self.extensions)
        if self.language:
            found["language"] = self.language
        if self.use:
            found["use"] = self.use
        found["value"] = self.value
        return found


@dataclass
class Concept:
    """One concept: its texts, its properties (code, `value[x]` key, value) and its place in the
    hierarchy (parent and child codes)."""

    code: str
    display: str | None = None
    definition: str | None = None
    designations: list[Designation] = field(default_factory=list)
    properties: list[tuple[str, str, Any]] = field(default_factory=list)
    extensions: list[dict] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    status: str | None = None
    inactive: bool = False
    abstract: bool = False

    def property_values(self, code: str) -> list[Any]:
        return [value for name, _, value in self.properties if name == code]


@dataclass(frozen=True)
class PropertyDef:
    code: str
    uri: str | None
    type: str
    description: str | None = None


class CodeSystemProvider:
    """A code system's content. Subclasses give `concept`, `codes`, `roots` and the hierarchy;
    the rest has working defaults."""

    url: str = ""
    version: str | None = None
    name: str | None = None
    title: str | None = None
    status: str = "active"
    experimental: bool = False
    content: str = "complete"
    case_sensitive: bool = True
    language: str | None = None
    hierarchy_meaning: str | None = None
    resource: dict | None = None

    def __init__(self) -> None:
        self.properties: list[PropertyDef] = []
        self.supplements: list[dict] = []

    @property
    def versioned_url(self) -> str:
        return f"{self.url}|{self.version}" if self.version else self.url

    def concept(self, code: str) -> Concept | None:
        raise NotImplementedError

    def codes(self) -> Iterator[str]:
        """Every code, in the code system's own order."""
        raise NotImplementedError

    def roots(self) -> list[str]:
        raise NotImplementedError

    def count(self) -> int:
        return sum(1 for _ in self.codes())

    def children(self, code: str) -> list[str]:
        concept = self.concept(code)
        return list(concept.children) if concept else []

    def parents(self, code: str) -> list[str]:
        concept = self.concept(code)
        return list(concept.parents) if concept else []

    def descendants(self, code: str) -> list[str]:
        """Every code below `code` (not itself), nearest first."""
        found: list[str] = []
        seen = {code}
        frontier = [code]
        while frontier:
            following: list[str] = []
            for current in frontier:
                for child in self.children(current):
                    if child not in seen:
                        seen.add(child)
                        found.append(child)
                        following.append(child)
            frontier = following
        return found

    def ancestors(self, code: str) -> set[str]:
        found: set[str] = set()
        frontier = [code]
        while frontier:
            for parent in self.parents(frontier.pop()):
                if parent not in found:
                    found.add(parent)
                    frontier.append(parent)
        return found

    def subsumes(self, ancestor: str, descendant: str) -> bool:
        return ancestor == descendant or ancestor in self.ancestors(descendant)

    def normalise(self, code: str) -> str | None:
        """The code as the code system spells it (case-insensitive systems), or None."""
        concept = self.concept(code)
        return concept.code if concept else None

    def property_def(self, code: str) -> PropertyDef | None:
        for definition in self.properties:
            if definition.code == code:
                return definition
        return None

    def iter_concepts(self, codes: Iterable[str]) -> Iterator[Concept]:
        for code in codes:
            concept = self.concept(code)
            if concept is not None:
                yield concept
