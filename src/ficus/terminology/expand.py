"""ValueSet expansion (`$expand`): compose includes and excludes, filters, imports, paging.

`Expander.codes(value_set)` computes the ordered list of `Entry`s a value set contains (used by
`$validate-code` too); `Expander.expand(value_set)` returns the expanded ValueSet resource.
Expansions are flat: `contains` lists every code once, in the order the compose produces them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ficus.fhirtime import format_instant, now_micros
from ficus.terminology import versions
from ficus.terminology.context import Context, split_canonical
from ficus.terminology.filters import FilterError, filter_codes
from ficus.terminology.issues import tx_error
from ficus.terminology.languages import Languages, designations_for, display_for
from ficus.terminology.model import CONCEPT_PROPERTIES, CodeSystemProvider, Concept, Designation
from ficus.terminology.status import STANDARDS_STATUS, code_system_warnings, value_set_warnings

R5_PROPERTY = "http://hl7.org/fhir/5.0/StructureDefinition/extension-ValueSet.expansion.property"
R5_CONTAINS_PROPERTY = "http://hl7.org/fhir/5.0/StructureDefinition/extension-ValueSet.expansion.contains.property"
EXPANSION_PARAMETER = "http://hl7.org/fhir/StructureDefinition/valueset-expansion-parameter"
VALUESET_SUPPLEMENT = "http://hl7.org/fhir/StructureDefinition/valueset-supplement"
DEFAULT_LIMIT = 100_000  # codes a compose may produce before the expansion is refused
UNPAGED_LIMIT = 1_000  # codes an expansion returns without count/offset paging
# Extensions of a code system concept that an expansion carries over.
SD = "http://hl7.org/fhir/StructureDefinition/"
COPIED_EXTENSIONS = frozenset({SD + "rendering-style", SD + "rendering-xhtml"})
# Extensions of a value set's listed concept that an expansion carries over.
INCLUDE_EXTENSIONS = frozenset({SD + "valueset-deprecated", SD + "valueset-concept-definition", SD + "structuredefinition-standards-status"})
# Concept extensions an expansion reports as properties: url -> (property, value[x] key).
EXTENSION_PROPERTIES = {
    SD + "codesystem-conceptOrder": ("order", "valueDecimal"),
    SD + "valueset-conceptOrder": ("order", "valueDecimal"),
    SD + "codesystem-label": ("label", "valueString"),
    SD + "valueset-label": ("label", "valueString"),
    SD + "itemWeight": ("weight", "valueDecimal"),
}
PROPERTY_URIS = {
    "order": CONCEPT_PROPERTIES + "order", "label": CONCEPT_PROPERTIES + "label", "weight": CONCEPT_PROPERTIES + "itemWeight",
    "status": CONCEPT_PROPERTIES + "status", "definition": CONCEPT_PROPERTIES + "definition",
}
COPIED = ("id", "extension", "url", "identifier", "version", "name", "title", "status", "experimental", "language")
ECHOED = (
    "activeOnly", "count", "designation", "displayLanguage", "excludeNested", "filter", "includeDefinition",
    "includeDesignations", "offset", "force-system-version", "check-system-version", "system-version",
    "default-valueset-version", "excludeNotForUI", "excludePostCoordinated", "limitedExpansion",
)


@dataclass
class ExpandOptions:
    active_only: bool = False
    include_designations: bool = False
    designations: list[str] = field(default_factory=list)
    properties: list[str] = field(default_factory=list)
    languages: Languages = field(default_factory=Languages)
    text: str | None = None
    offset: int = 0
    count: int | None = None
    offset_given: bool = False
    exclude_nested: bool = True
    force_versions: dict[str, str] = field(default_factory=dict)
    default_versions: dict[str, str] = field(default_factory=dict)
    check_versions: dict[str, str] = field(default_factory=dict)
    value_set_versions: dict[str, str] = field(default_factory=dict)
    supplements: list[str] = field(default_factory=list)
    limit: int = DEFAULT_LIMIT
    echo: list[dict] = field(default_factory=list)  # the request's expansion parameters


@dataclass
class Entry:
    """One code of an expansion."""

    system: str
    version: str | None
    code: str
    display: str | None
    concept: Concept | None = None
    abstract: bool = False
    inactive: bool = False
    status: str | None = None
    designations: list[Designation] = field(default_factory=list)
    extensions: list[dict] = field(default_factory=list)
    properties: list[tuple[str, str, Any]] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str]:
        return (self.system, self.code)


class Expander:
    """Expands value sets against one `Context`; remembers what it used."""

    def __init__(self, context: Context, options: ExpandOptions | None = None) -> None:
        self.context = context
        self.options = options or ExpandOptions()
        self.used_systems: dict[str, None] = {}
        self.used_value_sets: dict[str, None] = {}
        self.used_supplements: dict[str, None] = {}
        self.applied: dict[tuple[str, str], None] = {}  # version parameters the expansion used
        self.versions_match = False  # a versioned exclude removed codes of every version
        self.statuses: dict[tuple[str, str], None] = {}  # (warning, canonical) of what was used
        self.providers: dict[tuple[str, str | None], CodeSystemProvider] = {}
        self._stack: list[str] = []

    # -- the expanded resource ------------------------------------------------------------

    def expand(self, value_set: dict) -> dict:
        options = self.options
        start = max(options.offset, 0)
        paged = self._paged_in_database(value_set)
        if paged is not None:
            total, page = paged
            entries = page
        else:
            entries = self.codes(value_set)
            if options.active_only:
                entries = [e for e in entries if not e.inactive]
            if options.text:
                entries = [e for e in entries if _text_matches(e, options.text)]
            total = len(entries)
            page = entries[start:] if options.count is None else entries[start:start + options.count]
        if options.count is None and not options.offset_given and total > UNPAGED_LIMIT:
            raise tx_error(
                422, "too-costly", None,
                f"The value set '{canonical(value_set) or '(unidentified)'}' expansion has too many codes to produce (>{UNPAGED_LIMIT}): "
                "ask for pages with count and offset, or narrow it with filter",
                message_id="VALUESET_TOO_COSTLY",
            )
        expansion: dict[str, Any] = {
            "identifier": f"urn:uuid:{uuid.uuid4()}",
            "timestamp": format_instant(now_micros()),
            "total": total,
        }
        if options.offset_given:
            expansion["offset"] = start
        parameters = self._parameters(value_set)
        if parameters:
            expansion["parameter"] = parameters
        multi_version = self._systems_with_several_versions(entries, value_set)
        if self._nests(value_set) and len(page) == total:
            contains = self._tree(page, multi_version)
        else:
            contains = [self._contains(e, e.system in multi_version) for e in page]
        properties = self._property_definitions(page)
        if properties:
            expansion["extension"] = properties
        if contains:
            expansion["contains"] = contains
        result: dict[str, Any] = {"resourceType": "ValueSet"}
        for key in COPIED:
            if key in value_set:
                result[key] = value_set[key]
        if "extension" in result:
            result["extension"] = [e for e in result["extension"] if not (isinstance(e, dict) and e.get("url") == STANDARDS_STATUS)]
            if not result["extension"]:
                del result["extension"]
        result["expansion"] = expansion
        return result

    def _paged_in_database(self, value_set: dict) -> tuple[int, list[Entry]] | None:
        """A page of a value set that is one include of a loaded code system (all of it, or
        `is-a`/`descendent-of`/property filters) asked for with `count`: counted and paged
        in SQL, so a page of a SNOMED-sized value set costs what the page costs."""
        compose = value_set.get("compose") or {}
        includes = compose.get("include", [])
        if self.options.count is None or len(includes) != 1 or compose.get("exclude"):
            return None
        include = includes[0]
        if not include.get("system") or include.get("concept") or include.get("valueSet") or self.value_set_supplements(value_set):
            return None
        provider = self.resolve_system(include["system"], include.get("version"))
        page_of = getattr(provider, "page", None)
        if page_of is None:
            return None
        filters = [(f.get("property", ""), f.get("op", ""), f.get("value")) for f in include.get("filter", [])]
        if any(value in (None, "") for _, _, value in filters):
            return None
        active_only = self.options.active_only or compose.get("inactive") is False
        found = page_of(filters, active_only, self.options.text, max(self.options.offset, 0), self.options.count)
        if found is None:
            return None
        total, codes = found
        self._record_value_set_status(value_set)
        self.providers[(provider.url, provider.version)] = provider
        self.used_systems[provider.versioned_url] = None
        for warning in code_system_warnings(provider):
            self.statuses[(warning, provider.versioned_url)] = None
        return total, [self._entry(provider, concept, None) for concept in provider.iter_concepts(codes)]

    def _record_value_set_status(self, value_set: dict) -> None:
        """Status warnings of the value set itself (what `codes` records on its way)."""
        for warning in value_set_warnings(value_set):
            self.statuses[(warning, canonical(value_set))] = None

    def _nests(self, value_set: dict) -> bool:
        """A hierarchy is kept for `excludeNested=false` over one include of a whole code system
        or of an `is-a` filter, without excludes or paging; with a text filter, only for the
        subtree of an `is-a` filter (the matches of a whole code system are a flat list of hits),
        a code whose parent the text left out at the top."""
        if self.options.exclude_nested or self.options.count is not None:
            return False
        compose = value_set.get("compose") or {}
        includes = compose.get("include", [])
        if len(includes) != 1 or compose.get("exclude"):
            return False
        include = includes[0]
        if include.get("concept") or include.get("valueSet") or not include.get("system"):
            return False
        if self.options.text and not include.get("filter"):
            return False
        return all(f.get("op") in ("is-a", "descendent-of") for f in include.get("filter", []))

    def _tree(self, entries: list[Entry], multi_version: set[str]) -> list[dict]:
        """`contains` nested by the code system hierarchy (a code under its first parent that
        is in the expansion too)."""
        items = {e.key: self._contains(e, e.system in multi_version) for e in entries}
        roots: list[dict] = []
        for entry in entries:
            parent = next((p for p in (entry.concept.parents if entry.concept else []) if (entry.system, p) in items), None)
            if parent is None:
                roots.append(items[entry.key])
            else:
                items[(entry.system, parent)].setdefault("contains", []).append(items[entry.key])
        return roots

    def _parameters(self, value_set: dict) -> list[dict]:
        found: list[dict] = list(self.options.echo)
        for name, value in self.applied:
            found.append({"name": name, "valueUri": value})
        declared = dict(declared_parameters(value_set))
        if "versionsMatch" in declared or self.versions_match:
            found.append({"name": "versionsMatch", "valueBoolean": str(declared.get("versionsMatch", "true")).lower() != "false"})
        language = self.options.languages.text
        if language and not any(p["name"] == "displayLanguage" for p in found):
            found.append({"name": "displayLanguage", "valueCode": language})
        for canonical in self.used_systems:
            found.append({"name": "used-codesystem", "valueUri": canonical})
            if any(p.content == "fragment" and p.versioned_url == canonical for p in self.providers.values()):
                found.append({"name": "used-fragment", "valueUri": canonical})
        for canonical in self.used_value_sets:
            found.append({"name": "used-valueset", "valueUri": canonical})
        for canonical in self.used_supplements:
            found.append({"name": "used-supplement", "valueUri": canonical})
        for warning, canonical in self.statuses:
            found.append({"name": f"warning-{warning}", "valueUri": canonical})
        return found

    @staticmethod
    def _systems_with_several_versions(entries: list[Entry], value_set: dict) -> set[str]:
        """Systems whose codes come from several versions, or whose includes name several (a
        forced version may have made them one: each code still says which it is from)."""
        seen: dict[str, set[str | None]] = {}
        for entry in entries:
            seen.setdefault(entry.system, set()).add(entry.version)
        named: dict[str, set[str]] = {}
        for include in (value_set.get("compose") or {}).get("include", []):
            if isinstance(include, dict) and isinstance(include.get("system"), str) and include.get("version"):
                named.setdefault(include["system"], set()).add(include["version"])
        return {system for found in (seen, named) for system, versions in found.items() if len(versions) > 1}

    def _contains(self, entry: Entry, with_version: bool) -> dict:
        item: dict[str, Any] = {}
        extensions = [dict(e) for e in entry.extensions]
        values = self._property_values(entry)
        extensions.extend(
            {"url": R5_CONTAINS_PROPERTY, "extension": [{"url": "code", "valueCode": code}, {"url": "value", key: value}]}
            for code, key, value in values
        )
        if extensions:
            item["extension"] = extensions
        item["system"] = entry.system
        if with_version and entry.version:
            item["version"] = entry.version
        if entry.abstract:
            item["abstract"] = True
        if entry.inactive:
            item["inactive"] = True
        item["code"] = entry.code
        if entry.display:
            item["display"] = entry.display
        if self.options.include_designations:
            designations = [d.to_json() for d in self._designations(entry)]
            if designations:
                item["designation"] = designations
        return item

    def _designations(self, entry: Entry) -> list[Designation]:
        wanted = self.options.designations
        if not wanted:
            return entry.designations
        found = []
        for designation in entry.designations:
            for token in wanted:
                system, _, code = token.rpartition("|")
                if system == "urn:ietf:bcp:47" or not system:
                    if designation.language and designation.language.lower() == code.lower():
                        found.append(designation)
                        break
                elif designation.use and designation.use.get("system") == system and designation.use.get("code") == code:
                    found.append(designation)
                    break
        return found

    def _property_values(self, entry: Entry) -> list[tuple[str, str, Any]]:
        values = list(entry.properties)
        if entry.status and entry.status != "active":
            values.append(("status", "valueCode", entry.status))
        for name in self.options.properties:
            if entry.concept is None:
                continue
            if name == "definition" and entry.concept.definition:
                values.append(("definition", "valueString", entry.concept.definition))
            for code, key, value in entry.concept.properties:
                if code == name and code != "status":
                    values.append((code, key, value))
        return values

    def _property_definitions(self, page: list[Entry]) -> list[dict]:
        found: dict[str, str | None] = {}
        for entry in page:
            for name, _, _ in self._property_values(entry):
                if name not in found:
                    found[name] = PROPERTY_URIS.get(name) or self._property_uri(entry, name)
        definitions = []
        for code, uri in found.items():
            parts = [{"url": "code", "valueCode": code}]
            if uri:
                parts.append({"url": "uri", "valueUri": uri})
            definitions.append({"url": R5_PROPERTY, "extension": parts})
        return definitions

    def _property_uri(self, entry: Entry, name: str) -> str | None:
        provider = self.providers.get((entry.system, entry.version)) or self.context.code_system(entry.system)
        definition = provider.property_def(name) if provider else None
        return definition.uri if definition else None

    # -- the codes --------------------------------------------------------------------------

    def codes(self, value_set: dict) -> list[Entry]:
        """Every code the value set contains, in compose order, each once."""
        url = value_set.get("url") or f"#{value_set.get('id', '')}"
        if url in self._stack:
            raise tx_error(
                400, "processing", "vs-invalid",
                f"The value set {url} includes itself (through {' -> '.join(self._stack + [url])})",
                message_id="VALUESET_CIRCULAR_REFERENCE",
            )
        self._stack.append(url)
        for warning in value_set_warnings(value_set):
            self.statuses[(warning, canonical(value_set))] = None
        try:
            return self._compose(value_set)
        finally:
            self._stack.pop()

    def _compose(self, value_set: dict) -> list[Entry]:
        compose = value_set.get("compose")
        if not isinstance(compose, dict):
            expansion = value_set.get("expansion")
            if isinstance(expansion, dict):
                return list(self._from_expansion(expansion.get("contains", [])))
            raise tx_error(
                400, "invalid", "vs-invalid", f"The value set {value_set.get('url', '')} has no compose and no expansion",
            )
        supplements = self.value_set_supplements(value_set)
        entries: dict[tuple[str, str | None, str], Entry] = {}
        for index, include in enumerate(compose.get("include", [])):
            for entry in self._include(value_set, include, f"ValueSet.compose.include[{index}]", supplements):
                entries.setdefault((entry.system, entry.version, entry.code), entry)
                if len(entries) > self.options.limit:
                    raise tx_error(
                        422, "too-costly", "too-costly",
                        f"The value set {value_set.get('url', '')} has more than {self.options.limit} codes: "
                        "ask for a page with count and offset, or narrow it with filter",
                        message_id="VALUESET_TOO_COSTLY",
                    )
        versions_match = str(dict(declared_parameters(value_set)).get("versionsMatch", "true")).lower() != "false"
        for index, exclude in enumerate(compose.get("exclude", [])):
            if exclude.get("version") and versions_match:
                self.versions_match = True
            for entry in self._include(value_set, exclude, f"ValueSet.compose.exclude[{index}]", supplements, exclude=True):
                for key in [k for k in entries if k[0] == entry.system and k[2] == entry.code and (versions_match or k[1] == entry.version)]:
                    del entries[key]
        result = list(entries.values())
        if compose.get("inactive") is False:
            result = [e for e in result if not e.inactive]
        return result

    def _from_expansion(self, contains: list) -> Iterable[Entry]:
        for item in contains:
            if isinstance(item, dict) and item.get("code") and item.get("system"):
                yield Entry(item["system"], item.get("version"), item["code"], item.get("display"),
                            abstract=bool(item.get("abstract")), inactive=bool(item.get("inactive")))
            yield from self._from_expansion(item.get("contains", []) if isinstance(item, dict) else [])

    def value_set_supplements(self, value_set: dict) -> tuple[str, ...]:
        found = [e.get("valueCanonical") for e in value_set.get("extension", []) if e.get("url") == VALUESET_SUPPLEMENT]
        found.extend(self.options.supplements)
        return tuple(s for s in found if s)

    def _include(
        self, value_set: dict, include: dict, path: str, supplements: tuple[str, ...], exclude: bool = False,
    ) -> list[Entry]:
        selected: list[Entry] | None = None
        system_url = include.get("system")
        if system_url:
            selected = self._system_part(include, path, supplements, exclude)
        for reference in include.get("valueSet", []):
            imported = self._imported(value_set, reference)
            if selected is None:
                selected = imported
            else:
                keys = {e.key for e in imported}
                selected = [e for e in selected if e.key in keys]
        return selected or []

    def _imported(self, value_set: dict, reference: str) -> list[Entry]:
        if reference.startswith("#"):
            for contained in value_set.get("contained", []):
                if isinstance(contained, dict) and contained.get("id") == reference[1:]:
                    return self.codes(contained)
            raise tx_error(404, "not-found", "not-found", f"The contained value set {reference} was not found")
        url, version = split_canonical(reference, None)
        pinned = None if version else self.options.value_set_versions.get(url)
        version = version or pinned
        found = self.context.value_set(url, version)
        if found is None and pinned:
            raise tx_error(
                404, "not-found", "not-found", f"Unable to find included value set '{url}' version '{pinned}'",
                message_id="VS_EXP_IMPORT_UNK_PINNED",
            )
        if found is None:
            raise tx_error(
                404, "not-found", "not-found",
                f"A definition for the value Set '{url}{'|' + version if version else ''}' could not be found",
                message_id="Unable_to_resolve_value_Set_",
            )
        self.used_value_sets[canonical(found)] = None
        return self.codes(found)

    def resolve_system(
        self, url: str, version: str | None, supplements: tuple[str, ...] = (), purpose: str = "the value set cannot be expanded",
    ) -> CodeSystemProvider:
        """The code system an include uses, after force/default/check version parameters."""
        chosen = self.options.force_versions.get(url) or version
        if not chosen:
            for name, given in (("system-version", self.options.default_versions), ("check-system-version", self.options.check_versions)):
                if url in given:
                    chosen = given[url]
                    self.applied[(name, f"{url}|{chosen}")] = None
                    break
        provider = self.context.code_system(url, chosen, self.supplements_for(url, supplements))
        if provider is None:
            known = self.context.versions("CodeSystem", url)
            if chosen and known:
                raise tx_error(
                    404, "not-found", "not-found",
                    f"A definition for CodeSystem '{url}' version '{chosen}' could not be found, so {purpose}. "
                    f"Valid versions: {either(known)}",
                    message_id="UNKNOWN_CODESYSTEM_VERSION_EXP",
                )
            raise tx_error(
                404, "not-found", "not-found",
                f"A definition for CodeSystem '{url}' could not be found, so {purpose}",
                message_id="UNKNOWN_CODESYSTEM_EXP",
            )
        check = self.options.check_versions.get(url)
        if check and not versions.matches(check, provider.version):
            raise tx_error(
                400, "exception", "version-error",
                f"The version '{provider.version}' is not allowed for system '{url}': required to be '{check}' by a version-check parameter",
                message_id="VALUESET_VERSION_CHECK",
            )
        for supplement in provider.supplements:
            self.used_supplements[canonical(supplement)] = None
        return provider

    def supplements_for(self, url: str, supplements: tuple[str, ...]) -> tuple[str, ...]:
        found = []
        for canonical in supplements:
            resource = self.context.supplement(canonical)
            if resource is None:
                raise tx_error(
                    404, "not-found", "not-found", f"Required supplement not found: {canonical}",
                    message_id="VALUESET_SUPPLEMENT_MISSING",
                )
            if split_canonical(resource.get("supplements", ""), None)[0] == url:
                found.append(canonical)
        return tuple(found)

    def _system_part(self, include: dict, path: str, supplements: tuple[str, ...], exclude: bool) -> list[Entry]:
        url = include["system"]
        provider = self.resolve_system(url, include.get("version"), supplements)
        if not exclude:
            self.providers[(provider.url, provider.version)] = provider
            self.used_systems[provider.versioned_url] = None
            for warning in code_system_warnings(provider):
                self.statuses[(warning, provider.versioned_url)] = None
        if include.get("concept"):
            entries = []
            for item in include["concept"]:
                if not isinstance(item, dict) or not isinstance(item.get("code"), str):
                    continue
                concept = provider.concept(item["code"])
                if concept is None:
                    continue
                entries.append(self._entry(provider, concept, item))
            return entries
        codes: list[str] | None = None
        for index, condition in enumerate(include.get("filter", [])):
            try:
                found = filter_codes(provider, condition.get("property"), condition.get("op"), _filter_value(condition))
            except FilterError as error:
                status = 400
                message_id = "UNABLE_TO_HANDLE_SYSTEM_FILTER_WITH_NO_VALUE" if error.kind == "no-value" else "FILTER_NOT_UNDERSTOOD"
                raise tx_error(status, "invalid", "vs-invalid", str(error), f"{path}.filter[{index}]", message_id) from error
            if codes is None:
                codes = found
            else:
                keep = set(found)
                codes = [c for c in codes if c in keep]
        if codes is None:
            codes = list(provider.codes())
        return [self._entry(provider, concept, None) for concept in provider.iter_concepts(codes)]

    def _entry(self, provider: CodeSystemProvider, concept: Concept, item: dict | None) -> Entry:
        languages = self.options.languages
        shown = display_for(concept, provider.language, languages)
        display = shown.display
        designations = designations_for(concept, provider.language, shown)
        extensions = [e for e in concept.extensions if isinstance(e, dict) and e.get("url") in COPIED_EXTENSIONS]
        properties = _extension_properties(concept.extensions)
        if item is not None:
            if item.get("display") and not shown.switched:
                display = item["display"]
            listed = [
                Designation(d["value"], d.get("language"), d.get("use"), tuple(d.get("extension", ())))
                for d in item.get("designation", []) if isinstance(d, dict) and d.get("value")
            ]
            designations = [d for d in designations if (d.language, d.value) not in {(x.language, x.value) for x in listed}] + listed
            extensions += [e for e in item.get("extension", []) if isinstance(e, dict) and e.get("url") in INCLUDE_EXTENSIONS]
            overriding = _extension_properties(item.get("extension", []))
            properties = [p for p in properties if p[0] not in {o[0] for o in overriding}] + overriding
        return Entry(
            system=provider.url, version=provider.version, code=concept.code, display=display, concept=concept,
            abstract=concept.abstract, inactive=concept.inactive, status=concept.status,
            designations=designations, extensions=extensions, properties=properties,
        )


def declared_parameters(value_set: dict) -> list[tuple[str, Any]]:
    """Parameters a value set sets with the `valueset-expansion-parameter` extension."""
    found = []
    compose = value_set.get("compose") or {}
    for extension in [*value_set.get("extension", []), *compose.get("extension", [])]:
        if not isinstance(extension, dict) or extension.get("url") != EXPANSION_PARAMETER:
            continue
        parts = {e.get("url"): e for e in extension.get("extension", []) if isinstance(e, dict)}
        name = parts.get("name", {}).get("valueCode") or parts.get("name", {}).get("valueString")
        value = next((v for k, v in parts.get("value", {}).items() if k.startswith("value")), None)
        if name:
            found.append((name, value))
    return found


def _extension_properties(extensions: list) -> list[tuple[str, str, Any]]:
    found = []
    for extension in extensions:
        if not isinstance(extension, dict) or extension.get("url") not in EXTENSION_PROPERTIES:
            continue
        name, key = EXTENSION_PROPERTIES[extension["url"]]
        value = next((v for k, v in extension.items() if k.startswith("value")), None)
        if value is not None:
            found.append((name, key, value))
    return found


def _filter_value(condition: dict) -> str | None:
    value = condition.get("value")
    return value if isinstance(value, str) and value != "" else None


def _text_matches(entry: Entry, text: str) -> bool:
    words = text.lower().split()
    haystack = [entry.code.lower(), *(entry.display or "").lower().split()]
    haystack.extend(w for d in entry.designations for w in d.value.lower().split())
    return all(any(candidate.startswith(word) for candidate in haystack) for word in words)


def canonical(resource: dict) -> str:
    url = resource.get("url", "")
    return f"{url}|{resource['version']}" if resource.get("version") else url


def either(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]
