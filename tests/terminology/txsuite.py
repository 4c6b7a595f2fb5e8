"""Runs the HL7 terminology-server test suite (fhir-tx-ecosystem-ig `tests/`) against Ficus.

The cases are read from `tests/fixtures/terminology/tx-ecosystem-tests.tgz` (a copy of the
upstream folder). Each case is sent the way the HL7 Java runner sends it to an R4 server: a POST
of a Parameters resource to `[base]/ValueSet/$expand` (or `$validate-code`, `$lookup`,
`$translate`), with the suite's setup resources as `tx-resource` parameters and the defaults of
`parameters-default.json`. The answer is scrubbed and brought to R5 form like the runner does,
and compared with the expected response under the suite's template rules (README of the suite):
`$optional$`, `$optional-properties$`, `$count-arrays$`, `$only$` and the `$...$` value
patterns. As the suite says, array order never matters. No externals file is used, so
`$external:N:fragments$` messages are checked by their fragments. One tolerance of our own:
`OperationOutcome.issue.location` is ignored (see `_without_location`).
"""

from __future__ import annotations

import json
import re
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ARCHIVE = Path(__file__).parent.parent / "fixtures" / "terminology" / "tx-ecosystem-tests.tgz"
SERVER_VERSION = "4.0.1"
MODES = frozenset({"general"})
R5_EXTENSION = "http://hl7.org/fhir/5.0/StructureDefinition/extension-"
OPERATIONS = {
    "expand": "ValueSet/$expand",
    "validate-code": "ValueSet/$validate-code",
    "cs-validate-code": "CodeSystem/$validate-code",
    "lookup": "CodeSystem/$lookup",
    "translate": "ConceptMap/$translate",
    "batch-validate": "ValueSet/$batch-validate-code",
}
# Extensions the runner keeps when it scrubs a response (all others with absolute URLs go);
# recent expected responses require the issues' message ids, so those are kept too.
KEPT_EXTENSIONS = frozenset({
    "http://hl7.org/fhir/StructureDefinition/codesystem-alternate",
    "http://hl7.org/fhir/StructureDefinition/codesystem-conceptOrder",
    "http://hl7.org/fhir/StructureDefinition/codesystem-label",
    "http://hl7.org/fhir/StructureDefinition/coding-sctdescid",
    "http://hl7.org/fhir/StructureDefinition/itemWeight",
    "http://hl7.org/fhir/StructureDefinition/rendering-style",
    "http://hl7.org/fhir/StructureDefinition/rendering-xhtml",
    "http://hl7.org/fhir/StructureDefinition/translation",
    "http://hl7.org/fhir/StructureDefinition/valueset-concept-definition",
    "http://hl7.org/fhir/StructureDefinition/valueset-conceptOrder",
    "http://hl7.org/fhir/StructureDefinition/valueset-deprecated",
    "http://hl7.org/fhir/StructureDefinition/valueset-label",
    "http://hl7.org/fhir/StructureDefinition/valueset-supplement",
    "http://hl7.org/fhir/test/CodeSystem/de-multi",
    "http://hl7.org/fhir/test/CodeSystem/en-multi",
    "http://hl7.org/fhir/test/StructureDefinition/unknown-extension-1",
    "http://hl7.org/fhir/test/StructureDefinition/unknown-extension-3",
    "http://hl7.org/fhir/test/StructureDefinition/unknown-extension-4",
    "http://hl7.org/fhir/test/StructureDefinition/unknown-extension-5",
    "http://hl7.org/fhir/test/ValueSet/extensions-bad-supplement",
    "http://hl7.org/fhir/test/ValueSet/simple-all",
    "http://hl7.org/fhir/test/ValueSet/simple-enumerated",
    "http://hl7.org/fhir/StructureDefinition/alternate-code-use",
    "http://hl7.org/fhir/StructureDefinition/alternate-code-status",
    "http://hl7.org/fhir/test/ValueSet/simple-filter-isa",
    "http://hl7.org/fhir/StructureDefinition/operationoutcome-message-id",
})


@dataclass
class Case:
    suite: str
    name: str
    operation: str
    request: dict | None
    expected: dict
    http_code: str
    setup: list[dict]
    profile: dict
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.suite}/{self.name}"


class Suite:
    """The test cases of the archive, in mode `general` (and `flat`, if asked)."""

    def __init__(self, modes: frozenset[str] = frozenset({"general"}), archive: Path = ARCHIVE) -> None:
        self.modes = modes
        self.files: dict[str, bytes] = {}
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                data = tar.extractfile(member) if member.isfile() else None
                if data is not None:
                    self.files[member.name.removeprefix("tests/")] = data.read()

    def load(self, name: str) -> Any:
        return json.loads(self.files[name].decode("utf-8-sig"))

    def cases(self) -> Iterator[Case]:
        index = self.load("test-cases.json")
        for suite in index["suites"]:
            if not self._runs(suite) or suite.get("disabled"):
                continue
            setup = [r5_to_r4(self.load(name)) for name in suite.get("setup", [])]
            for test in suite["tests"]:
                if not self._runs(test) or test.get("disabled") or test["operation"] not in OPERATIONS:
                    continue
                request = self._choose(test, "request")
                headers = {}
                if test.get("Accept-Language"):
                    headers["accept-language"] = test["Accept-Language"]
                header = test.get("header")
                if header and header.get("mode") in self.modes:
                    headers[header["name"].lower()] = header["value"]
                yield Case(
                    suite=suite["name"], name=test["name"], operation=test["operation"],
                    request=r5_to_r4(self.load(request)) if request else None,
                    expected=self.load(self._choose(test, "response")),
                    http_code=test.get("http-code", "2xx"), setup=setup,
                    profile=self.load(test.get("profile", "parameters-default.json")), headers=headers,
                )

    def _runs(self, item: dict) -> bool:
        modes = item.get("modes") or ([item["mode"]] if "mode" in item else [])
        return not modes or any(mode in self.modes for mode in modes)

    def _choose(self, test: dict, name: str) -> str | None:
        for mode in sorted(self.modes):
            if test.get(f"{name}:{mode}") in self.files:  # upstream lacks one flat response
                return test[f"{name}:{mode}"]
        return test.get(name)


Post = Callable[[str, dict, dict[str, str]], tuple[int, Any]]


def run_case(case: Case, post: Post, modes: frozenset[str]) -> str | None:
    """None when Ficus answers as expected, else the first difference found."""
    parameters = list((case.request or {}).get("parameter", []))
    parameters += [{"name": "tx-resource", "resource": resource} for resource in case.setup]
    parameters += case.profile.get("parameter", [])
    status, body = post(OPERATIONS[case.operation], {"resourceType": "Parameters", "parameter": parameters}, case.headers)
    if not isinstance(body, dict):
        return f"HTTP {status} without a JSON body"
    actual = normalise(body)
    difference = Comparison(modes).compare(_without_location(case.expected), actual, "")
    if difference is None and not _status_ok(case.http_code, status):
        difference = f"HTTP status {status}, expected {case.http_code}"
    return difference


def _status_ok(expected: str, status: int) -> bool:
    if expected.endswith("xx"):
        return status // 100 == int(expected[0])
    return status == int(expected)


# -- R4 <-> R5 ---------------------------------------------------------------------------------

_RELATIONSHIP_TO_EQUIVALENCE = {
    "related-to": "relatedto", "equivalent": "equivalent", "source-is-narrower-than-target": "wider",
    "source-is-broader-than-target": "narrower", "not-related-to": "unmatched",
}


def r5_to_r4(resource: dict) -> dict:
    """The R4 form of an R5 test resource, for the few elements these tests use that differ."""
    resource = json.loads(json.dumps(resource))
    for choice in ("versionAlgorithmString", "versionAlgorithmCoding"):
        if choice in resource:
            value = resource.pop(choice)
            key = "valueString" if choice.endswith("String") else "valueCoding"
            resource.setdefault("extension", []).append(
                {"url": f"{R5_EXTENSION}{resource['resourceType']}.versionAlgorithm", key: value}
            )
    if resource.get("resourceType") == "ConceptMap":
        for r5, r4 in (("sourceScopeUri", "sourceUri"), ("targetScopeUri", "targetUri"),
                       ("sourceScopeCanonical", "sourceCanonical"), ("targetScopeCanonical", "targetCanonical")):
            if r5 in resource:
                resource[r4] = resource.pop(r5)
        for group in resource.get("group", []):
            for element in group.get("element", []):
                for target in element.get("target", []):
                    if "relationship" in target:
                        target["equivalence"] = _RELATIONSHIP_TO_EQUIVALENCE.get(target.pop("relationship"), "relatedto")
            unmapped = group.get("unmapped")
            if unmapped:
                unmapped.pop("relationship", None)
                unmapped["mode"] = {"use-source-code": "provided"}.get(unmapped.get("mode"), unmapped.get("mode"))
    if resource.get("resourceType") == "Parameters":
        for parameter in resource.get("parameter", []):
            if isinstance(parameter.get("resource"), dict):
                parameter["resource"] = r5_to_r4(parameter["resource"])
    return resource


def normalise(resource: dict) -> dict:
    """The response as the runner compares it: R5 form, narrative/meta and foreign extensions gone."""
    resource = json.loads(json.dumps(resource))
    _r4_to_r5(resource)
    _scrub(resource, inside_compose=False)
    _sort_messages(resource)
    return _without_location(resource)


def _without_location(node: Any) -> Any:
    """`OperationOutcome.issue.location` (deprecated; it repeats `expression`) is dropped on both
    sides: the recorded responses of different years disagree on whether it is there."""
    if isinstance(node, list):
        return [_without_location(item) for item in node]
    if isinstance(node, dict):
        if "severity" in node and "code" in node:
            node = {k: v for k, v in node.items() if k != "location"}
            optional = [p for p in node.get("$optional-properties$", []) if p != "location"]
            if "$optional-properties$" in node:
                node["$optional-properties$"] = optional
        return {k: _without_location(v) for k, v in node.items()}
    return node


def _r4_to_r5(resource: dict) -> None:
    expansion = resource.get("expansion") if resource.get("resourceType") == "ValueSet" else None
    if isinstance(expansion, dict):
        for extension in _take_extensions(expansion, f"{R5_EXTENSION}ValueSet.expansion.property"):
            expansion.setdefault("property", []).append(_sub_extensions(extension))
        stack = list(expansion.get("contains", []))
        while stack:
            contains = stack.pop()
            for extension in _take_extensions(contains, f"{R5_EXTENSION}ValueSet.expansion.contains.property"):
                contains.setdefault("property", []).append(_sub_extensions(extension))
            stack.extend(contains.get("contains", []))
    if resource.get("resourceType") == "Parameters":
        for parameter in resource.get("parameter", []):
            if isinstance(parameter.get("resource"), dict):
                _r4_to_r5(parameter["resource"])


def _take_extensions(element: dict, url: str) -> list[dict]:
    taken = [e for e in element.get("extension", []) if e.get("url") == url]
    if taken:
        element["extension"] = [e for e in element["extension"] if e.get("url") != url]
        if not element["extension"]:
            del element["extension"]
    return taken


def _sub_extensions(extension: dict) -> dict:
    result: dict = {}
    for part in extension.get("extension", []):
        for key, value in part.items():
            if key.startswith("value"):
                result[part["url"] if part["url"] != "value" else key] = value
    return result


def _scrub(node: Any, inside_compose: bool) -> None:
    if isinstance(node, list):
        for item in node:
            _scrub(item, inside_compose)
        return
    if not isinstance(node, dict):
        return
    if "resourceType" in node:
        node.pop("meta", None)
        if node["resourceType"] != "Parameters":
            node.pop("text", None)
        if node["resourceType"] == "OperationOutcome":
            node["issue"] = [i for i in node.get("issue", []) if "details" in i or "diagnostics" not in i]
            for issue in node["issue"]:
                issue.pop("diagnostics", None)
    if not inside_compose:
        for key in ("extension", "modifierExtension"):
            if key in node:
                node[key] = [e for e in node[key] if _kept(e)]
                if not node[key]:
                    del node[key]
    for key, value in node.items():
        _scrub(value, inside_compose or key == "compose")


def _kept(extension: Any) -> bool:
    url = extension.get("url", "") if isinstance(extension, dict) else ""
    return not re.match(r"^[a-z][a-z0-9+.-]*:", url) or url in KEPT_EXTENSIONS


def _sort_messages(resource: dict) -> None:
    if resource.get("resourceType") != "Parameters":
        return
    for parameter in resource.get("parameter", []):
        if parameter.get("name") == "message" and "; " in str(parameter.get("valueString", "")):
            parameter["valueString"] = "; ".join(sorted(parameter["valueString"].split("; ")))
        if isinstance(parameter.get("resource"), dict):
            _sort_messages(parameter["resource"])


# -- comparison -----------------------------------------------------------------------------------

_PATTERNS = {
    "$id$": r"[A-Za-z0-9\-.]{1,64}",
    "$uuid$": r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
    "$instant$": r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})",
    "$date$": r"\d{4}(-\d{2}(-\d{2})?)?",
    "$url$": r"[a-zA-Z][a-zA-Z0-9+.-]*:\S+",
    "$token$": r"\S+",
    "$string$": r"\S(.*\S)?",
    "$semver$": r"\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?",
}


class Comparison:
    """Compares an expected (template) response with an actual one."""

    def __init__(self, modes: frozenset[str], version: str = SERVER_VERSION) -> None:
        self.modes = modes
        self.version = version

    def compare(self, expected: Any, actual: Any, path: str, count_only: bool = False) -> str | None:
        if isinstance(expected, dict):
            if not isinstance(actual, dict):
                return f"{path}: expected an object, got {type(actual).__name__}"
            return self._objects(expected, actual, path)
        if isinstance(expected, list):
            if not isinstance(actual, list):
                return f"{path}: expected an array, got {type(actual).__name__}"
            if count_only:
                return None if len(expected) == len(actual) else f"{path}: {len(actual)} items, expected {len(expected)}"
            return self._arrays(expected, actual, path)
        if isinstance(expected, bool) or isinstance(actual, bool):
            return None if expected is actual else f"{path}: {actual!r}, expected {expected!r}"
        if isinstance(expected, str):
            if not isinstance(actual, str):
                return f"{path}: {actual!r}, expected the string {expected!r}"
            return None if self._string_matches(expected, actual) else f"{path}: {actual!r}, expected {expected!r}"
        if isinstance(expected, (int, float)):
            ok = isinstance(actual, (int, float)) and actual == expected
            return None if ok else f"{path}: {actual!r}, expected {expected!r}"
        return None if expected == actual else f"{path}: {actual!r}, expected {expected!r}"

    def _objects(self, expected: dict, actual: dict, path: str) -> str | None:
        optional = set(expected.get("$optional-properties$", []))
        count_only = set(expected.get("$count-arrays$", []))
        for key, value in actual.items():
            if key == "fhir_comments":
                continue
            if key not in expected:
                return f"{path}: unexpected property {key}"
            found = self.compare(expected[key], value, f"{path}.{key}", key in count_only)
            if found:
                return found
        for key, value in expected.items():
            if key.startswith("$") or key == "fhir_comments" or key in actual:
                continue
            if key not in optional and "*" not in optional and not self._all_optional(value):
                return f"{path}: missing property {key}"
        return None

    def _arrays(self, expected: list, actual: list, path: str) -> str | None:
        wanted = [item for item in expected if self._present(item)]
        required = [not self._optional(item) for item in wanted]
        if len(actual) > len(wanted):
            return f"{path}: {len(actual)} items, expected at most {len(wanted)}"
        assigned = self._greedy(wanted, actual, path)
        complete = len(assigned) == len(actual) and all(i in assigned for i, r in enumerate(required) if r)
        if not complete and len(wanted) * len(actual) <= 4000:
            assigned = _assign([[self.compare(e, a, path) is None for a in actual] for e in wanted])
        for index, item in enumerate(actual):
            if index not in assigned.values():
                best = self._closest(wanted, item, path)
                return (f" ({best})" if best else "") + f" {path}: unexpected item {json.dumps(item)[:300]}"
        for index, needed in enumerate(required):
            if needed and index not in assigned:
                return f"{path}: missing item {json.dumps(wanted[index])[:300]}"
        return None

    def _greedy(self, wanted: list, actual: list, path: str) -> dict[int, int]:
        """Pairs each expected item with the first free actual item that matches it, trying
        items with the same `code` or `name` first (the matching is exact, the order a guess)."""
        by_key: dict[Any, list[int]] = {}
        for index, item in enumerate(actual):
            by_key.setdefault(_key(item), []).append(index)
        assigned: dict[int, int] = {}
        used: set[int] = set()
        for e, item in enumerate(wanted):
            first = by_key.get(_key(item), [])
            preferred = set(first)
            for a in [*first, *(i for i in range(len(actual)) if i not in preferred)]:
                if a not in used and self.compare(item, actual[a], path) is None:
                    assigned[e] = a
                    used.add(a)
                    break
        return assigned

    def _closest(self, wanted: list, item: Any, path: str) -> str | None:
        same = [e for e in wanted if _key(e) == _key(item)]
        differences = [self.compare(e, item, path) for e in (same or wanted)]
        known = [d for d in differences if d]
        return min(known, key=len) if known else None

    def _all_optional(self, value: Any) -> bool:
        """An array whose every item may be left out may be left out itself."""
        return isinstance(value, list) and all(self._optional(item) or not self._present(item) for item in value)

    def _present(self, item: Any) -> bool:
        if isinstance(item, dict) and "$only$" in item:
            return self._filter(item["$only$"])
        return True

    def _optional(self, item: Any) -> bool:
        if not isinstance(item, dict) or "$optional$" not in item:
            return False
        rule = item["$optional$"]
        if rule is True:
            return True
        if rule is False:
            return False
        if isinstance(rule, str) and rule.startswith("warning:"):
            return True
        return self._filter(rule)

    def _filter(self, rule: Any) -> bool:
        """Whether a `{mode}`, `!{mode}` or `version:N` filter applies to this run."""
        if not isinstance(rule, str):
            return bool(rule)
        if rule.startswith("!"):
            return not self._filter(rule[1:])
        if rule.startswith("version:"):
            return self.version.startswith(rule[len("version:"):])
        return rule in self.modes

    def _string_matches(self, expected: str, actual: str) -> bool:
        expected = expected.replace("$version$", self.version) if expected != "$version$" else expected
        if not (expected.startswith("$") and expected.endswith("$") and len(expected) > 1):
            return expected == actual
        if expected == "$$":
            return True
        if expected == "$version$":
            return actual == self.version
        if expected.startswith("$choice:"):
            return actual in expected[len("$choice:"):-1].split("|")
        if expected.startswith("$fragments:"):
            return _has_fragments(actual, expected[len("$fragments:"):-1])
        if expected.startswith("$external:"):
            parts = expected[1:-1].split(":", 2)
            return len(parts) < 3 or _has_fragments(actual, parts[2])
        pattern = _PATTERNS.get(expected)
        if pattern is None:
            return expected == actual
        return re.fullmatch(pattern, actual) is not None


def _key(item: Any) -> Any:
    if isinstance(item, dict):
        return (item.get("code"), item.get("name"))
    return item if isinstance(item, (str, int, float, bool)) else None


def _has_fragments(actual: str, fragments: str) -> bool:
    return all(fragment.lower() in actual.lower() for fragment in fragments.split("|"))


def _assign(matches: list[list[bool]]) -> dict[int, int]:
    """A maximum matching expected -> actual (augmenting paths; arrays here are small)."""
    owner: dict[int, int] = {}

    def place(e: int, seen: set[int]) -> bool:
        for a, ok in enumerate(matches[e]):
            if ok and a not in seen:
                seen.add(a)
                if a not in owner or place(owner[a], seen):
                    owner[a] = e
                    return True
        return False

    for e in range(len(matches)):
        place(e, set())
    return {e: a for a, e in owner.items()}
