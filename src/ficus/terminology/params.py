"""Input parameters of the terminology operations, typed, from a GET query or a POSTed
Parameters resource; and the options the engines take, built from them."""

from __future__ import annotations

import re
from typing import Any

from ficus import fhirjson
from ficus.operations import Invocation
from ficus.terminology.context import split_canonical
from ficus.terminology.expand import ECHOED, ExpandOptions, declared_parameters
from ficus.terminology.issues import tx_error
from ficus.terminology.languages import Languages, parse_languages

BOOLEAN = frozenset({
    "activeOnly", "includeDesignations", "includeDefinition", "excludeNested", "excludeNotForUI", "excludePostCoordinated",
    "limitedExpansion", "abstract", "inferSystem", "lenient-display-validation", "reverse", "valueset-membership-only",
})
INTEGER = frozenset({"offset", "count"})
CODE = frozenset({"displayLanguage", "code", "targetCode", "sourceCode", "codeA", "codeB"})
URI = frozenset({"url", "system", "targetsystem", "targetSystem", "sourceSystem", "source", "target", "context"})
_LANGUAGE_TAG = re.compile(r"^(\*|[a-zA-Z]{1,8}(-[a-zA-Z0-9]{1,8})*)$")
VERSION_PARAMETERS = ("force-system-version", "system-version", "check-system-version", "default-valueset-version")


class Inputs:
    """The operation's parameters, each as the Parameters `parameter` it was (typed values)."""

    def __init__(self, invocation: Invocation) -> None:
        self.invocation = invocation
        self.items: list[dict] = []
        for key, value in invocation.request.query:
            if not key.startswith("_"):
                self.items.append(_typed(key, value))
        body = invocation.request.body
        if invocation.request.method == "POST" and body:
            document = body if isinstance(body, dict) else fhirjson.decode(body)
            if isinstance(document, dict):
                self.items.extend(p for p in document.get("parameter", []) if isinstance(p, dict) and isinstance(p.get("name"), str))
        self.header_language = invocation.request.headers.get("accept-language")
        self._values = _by_name(self.items)

    def within(self, parameters: list[dict]) -> Inputs:
        """These inputs with `parameters` (one request of a batch) taking precedence."""
        layered = object.__new__(Inputs)
        layered.invocation = self.invocation
        own = [p for p in parameters if isinstance(p, dict) and isinstance(p.get("name"), str)]
        layered.items = own + [p for p in self.items if p["name"] != "validation"]
        layered.header_language = self.header_language
        layered._values = _by_name(layered.items)
        return layered

    def all(self, name: str) -> list[Any]:
        return list(self._values.get(name, ()))

    def get(self, name: str) -> Any:
        found = self._values.get(name)
        return found[0] if found else None

    def text(self, name: str) -> str | None:
        value = self.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise tx_error(400, "invalid", "invalid-data", f"The parameter '{name}' must be a string value", name)
        return value

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise tx_error(400, "invalid", "invalid-data", f"The parameter '{name}' must be true or false, not {value!r}", name)

    def integer(self, name: str) -> int | None:
        value = self.get(name)
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
            number = int(value)
        else:
            raise tx_error(400, "invalid", "invalid-data", f"The parameter '{name}' must be an integer, not {value!r}", name)
        if number < 0:
            raise tx_error(400, "invalid", "invalid-data", f"The parameter '{name}' must not be negative", name)
        return number

    def resources(self, name: str = "tx-resource") -> list[dict]:
        return [r for r in self.all(name) if isinstance(r, dict) and "resourceType" in r]

    def versions(self, name: str) -> dict[str, str]:
        found: dict[str, str] = {}
        for value in self.all(name):
            if isinstance(value, str):
                url, version = split_canonical(value, None)
                if version:
                    found[url] = version
        return found

    def languages(self, value_set: dict | None = None) -> Languages:
        explicit = self.text("displayLanguage")
        if explicit:
            parsed = parse_languages(explicit)
            if not all(_LANGUAGE_TAG.match(tag) for tag, _ in parsed.ranges):
                raise tx_error(
                    400, "processing", "invalid-display", f"Invalid displayLanguage: '{explicit}'", message_id="INVALID_DISPLAY_NAME",
                )
            return parsed
        for name, value in expansion_parameters(value_set or {}):
            if name == "displayLanguage" and isinstance(value, str):
                return parse_languages(value)
        if self.header_language:
            return parse_languages(self.header_language)
        return Languages()

    def echo(self) -> list[dict]:
        """The expansion parameters an expansion repeats, as they were given."""
        found = []
        for parameter in self.items:
            name = parameter["name"]
            if name not in ECHOED:
                continue
            value_key = next((k for k in parameter if k.startswith("value")), None)
            if value_key is None:
                continue
            if name in ("system-version", "check-system-version"):
                continue  # echoed by the expansion when it applies them
            if name in VERSION_PARAMETERS:
                found.append({"name": name, "valueUri": parameter[value_key]})
            elif name == "displayLanguage":
                continue
            else:
                found.append({"name": name, value_key: parameter[value_key]})
        return found

    def expand_options(self, value_set: dict | None = None) -> ExpandOptions:
        languages = self.languages(value_set)
        defaults = dict(expansion_parameters(value_set or {}))
        count = self.integer("count")
        return ExpandOptions(
            active_only=self.flag("activeOnly", bool(defaults.get("activeOnly", False))),
            include_designations=self.flag("includeDesignations", bool(defaults.get("includeDesignations", False))),
            designations=[v for v in self.all("designation") if isinstance(v, str)],
            properties=[v for v in self.all("property") if isinstance(v, str)],
            languages=languages,
            text=self.text("filter"),
            offset=self.integer("offset") or 0,
            count=count,
            offset_given=self.get("offset") is not None,
            exclude_nested=self.flag("excludeNested", False),
            force_versions=self.versions("force-system-version"),
            default_versions=self.versions("system-version"),
            check_versions=self.versions("check-system-version"),
            value_set_versions=self.versions("default-valueset-version"),
            supplements=[v for v in self.all("useSupplement") if isinstance(v, str)],
            echo=self.echo(),
        )


def expansion_parameters(value_set: dict) -> list[tuple[str, Any]]:
    """Defaults a value set declares with the `valueset-expansion-parameter` extension."""
    return declared_parameters(value_set)


def _by_name(items: list[dict]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for parameter in items:
        found.setdefault(parameter["name"], []).append(_value(parameter))
    return found


def _typed(name: str, value: str) -> dict:
    if name in BOOLEAN and value.lower() in ("true", "false"):
        return {"name": name, "valueBoolean": value.lower() == "true"}
    if name in INTEGER and value.isdigit():
        return {"name": name, "valueInteger": int(value)}
    if name in CODE:
        return {"name": name, "valueCode": value}
    if name in URI:
        return {"name": name, "valueUri": value}
    return {"name": name, "valueString": value}


def _value(parameter: dict) -> Any:
    if "resource" in parameter:
        return parameter["resource"]
    for key, value in parameter.items():
        if key.startswith("value"):
            return value
    if "part" in parameter:
        return parameter
    return None
