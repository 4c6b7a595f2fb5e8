"""A search oracle nobody tuned: the expected answer of a FHIR search, computed without Ficus.

The oracle reads only the *data* of the R4 SearchParameters (`ficus.spec.definitions()` is the
official package's SearchParameter list: code, base, type, expression, target, components),
evaluates each parameter's FHIRPath expression over the resources with an independent engine
(fhirpathpy), and implements the matching rules of hl7.org/fhir/R4/search.html on the values it
finds. None of Ficus's extractor, parser or SQL code is used.

Answers are three-valued: a resource definitely matches, definitely does not, or the outcome is
*uncertain* where the specification leaves the behaviour to the server (an implicit code system,
a number on the edge of a precision range, a UCUM unit the oracle's small table does not know, a
reference with only an identifier for `:missing`, a value fhirpathpy cannot evaluate). Uncertain
resources are left out of the comparison, and the harness reports how many there were.

How search.html is read, literally:
- date: every value is a range at its precision; the prefix table (eq: the search range contains
  the target; gt: the range above the search value intersects the target; sa: the target starts
  at or after the end of the search range; ...) on half-open UTC microsecond ranges. A Period
  without an end is open; a Timing counts by its outer limits (events and boundsPeriod). Values
  without a time zone (dates) are read as UTC, the server's zone. `ap` is not generated.
- number/quantity: `eq`/`ne` use the range the search value's precision implies (`100` is
  99.5..100.5, its ends uncertain); `gt`/`lt`/`ge`/`le` compare with the exact value (the Number
  section); `sa`/`eb` and Ranges are uncertain near the precision range; `ap` is definite within
  9% and beyond 11%. `n|system|code` needs the same system and code, or, for UCUM, a unit of the
  same dimension in the oracle's own small table (converted); `n||code` matches code or unit.
- string: case- and accent-insensitive (NFKD, combining marks dropped, casefold) starts-with on
  each part (HumanName: text, family, given, prefix, suffix; Address: text, line, city, district,
  state, postalCode, country); `:exact` is equality, `:contains` a substring, on the whole value.
- token: Coding/CodeableConcept (system, code), Identifier (system, value), ContactPoint (value;
  it has no code system), primitives (value; their system is implicit, so `system|code` and
  `|code` on them are uncertain); `:text` starts-with on CodeableConcept.text, Coding.display and
  Identifier.type.text; `:not` is the complement (resources without a value included).
- reference: `Type/id` and `id` are local references: relative, or absolute with this server's
  base (search.html: "a relative reference resolving to the same value as a specified absolute
  URL"); an absolute URL on another server is a different resource, found only by its URL. A
  canonical searched without `|version` matches every version.
- composite: the components must match on the same element; `:missing=false` needs one element
  with a value for every component.
- An expression that selects an Extension (`X.extension('url')`) is about its value[x].

FHIRPath notes (each a limitation of fhirpathpy, worked around here and reported, not hidden):
- `resolve()` is not implemented: `X.where(resolve() is T)` evaluates `X` and keeps the
  references whose literal target type (relative or absolute URL) is T.
- `as` on a collection of several items raises (the R4 expressions use `(X as T)` where they mean
  `X.ofType(T)`, as R5 later wrote them): `X as T` and `X.as(T)` are evaluated as `X.ofType(T)`.
- `hasExtension(url)` is not implemented: evaluated as `extension(url).exists()`.
- `Resource.x` / `DomainResource.x` and relative paths (`name | alias`) are rooted at the
  resource's own type; composite components are evaluated as `<element>[i].<component>`.
"""

from __future__ import annotations

import json
import random
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from fhirpathpy import compile as fhirpath_compile
from fhirpathpy.models import models

from ficus.spec import definitions

FIXTURES = Path(__file__).parents[1] / "fixtures"
EXAMPLES = FIXTURES / "fhir-r4-examples"
KNOWN_INVALID = frozenset(json.loads((FIXTURES / "known-invalid-examples.json").read_text()))
BASE = "http://testserver/fhir"
NOT_DOMAIN_RESOURCES = frozenset({"Bundle", "Binary", "Parameters"})
UCUM = "http://unitsofmeasure.org"
ISO4217 = "urn:iso:std:iso:4217"
INF = float("inf")

Tri = bool | None  # True, False, or None = uncertain


def tri_or(values: Iterable[Tri]) -> Tri:
    result: Tri = False
    for value in values:
        if value is True:
            return True
        if value is None:
            result = None
    return result


def tri_and(values: Iterable[Tri]) -> Tri:
    result: Tri = True
    for value in values:
        if value is False:
            return False
        if value is None:
            result = None
    return result


def tri_not(value: Tri) -> Tri:
    return None if value is None else not value


# -- data ------------------------------------------------------------------------------------------

def spec_examples() -> list[tuple[str, bytes, dict]]:
    """(file name, raw bytes, parsed JSON) of the R4 examples that are valid (loadable)."""
    found = []
    for path in sorted(EXAMPLES.glob("*.json")):
        if path.name in KNOWN_INVALID:
            continue
        raw = path.read_bytes()
        found.append((path.name, raw, json.loads(raw)))
    return found


_GIVEN = [
    "José", "Zoë", "Ana", "Björn", "Chloé", "Dmitri", "Élodie", "François", "Gül", "Håkon", "Inès",
    "Jürgen", "Kalani", "Łukasz", "Maël", "Nuño", "Øystein", "Pál", "Renée", "Søren", "Thérèse",
    "Ulrich", "Vérane", "Wojciech", "Xóchitl", "Yusuf", "Zoltán", "Amélie", "Bruno", "Çelik",
]
_FAMILY = [
    "Müller", "Núñez", "O'Brien", "Smith", "Smithson", "García", "Côté", "Dvořák", "Lefèvre",
    "Åberg", "Schmidt", "van der Berg", "Ng", "Østergaard", "Kowalski",
]
_CITIES = ["São Paulo", "Zürich", "Montréal", "Kraków", "Reykjavík", "Malmö", "Göteborg", "Boston", "Québec", "Nîmes"]
_LOINC = "http://loinc.org"
_SNOMED = "http://snomed.info/sct"
_OBSERVATION_CODES = [  # (code, display, [(unit code, low, high)])
    ("29463-7", "Body weight", [("kg", 3, 140), ("g", 2500, 140000)]),
    ("8302-2", "Body height", [("cm", 45, 200), ("m", 0.45, 2.0), ("mm", 450, 2000)]),
    ("2339-0", "Glucose [Mass/volume] in Blood", [("mg/dL", 60, 250), ("g/L", 0.6, 2.5)]),
    ("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", [("mg/dL", 120, 300)]),
    ("3141-9", "Body weight Measured", [("kg", 3, 140), ("[lb_av]", 7, 300)]),
]
_CONDITION_CODES = [
    ("44054006", "Diabetes mellitus type 2"), ("38341003", "Hypertensive disorder"),
    ("195967001", "Asthma"), ("35489007", "Depressive disorder"), ("13645005", "Chronic obstructive lung disease"),
    ("230690007", "Cerebrovascular accident"),
]
_TIME_ZONES = ["Z", "+02:00", "-05:00", "+05:30", "+00:00"]


def _synthetic_date(rng: random.Random, start_year: int, end_year: int, precisions: str = "ymdst") -> str:
    """A date/dateTime string at a random precision: year, month, day, seconds (s), fraction (t)."""
    day = datetime(start_year, 1, 1) + timedelta(days=rng.randrange((end_year - start_year) * 365))
    precision = rng.choice(precisions)
    if precision == "y":
        return f"{day.year:04d}"
    if precision == "m":
        return f"{day.year:04d}-{day.month:02d}"
    if precision == "d":
        return day.strftime("%Y-%m-%d")
    text = day.strftime("%Y-%m-%d") + f"T{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}"
    if precision == "t":
        text += "." + str(rng.randrange(1000)).rjust(3, "0")
    return text + rng.choice(_TIME_ZONES)


def synthetic_population(seed: int = 3) -> list[dict]:
    """A small deterministic population: patients with accented names, practitioners,
    organizations, encounters, observations (UCUM quantities in mg/g/kg..., dates at every
    precision and several time zones), conditions and risk assessments."""
    rng = random.Random(seed)
    out: list[dict] = []
    orgs = [f"orc-org-{i}" for i in range(3)]
    for i, org in enumerate(orgs):
        out.append({
            "resourceType": "Organization", "id": org, "active": True,
            "name": ["Hôpital Saint-Éloi", "Klinikum Köln", "Acme Health, Inc."][i],
            "identifier": [{"system": "http://example.org/org-ids", "value": f"ORG-{i}"}],
            "address": [{"line": [f"{i + 1} Rue de l'Église"], "city": _CITIES[i], "country": "FR"}],
        })
    practitioners = [f"orc-prac-{i}" for i in range(4)]
    for i, prac in enumerate(practitioners):
        out.append({
            "resourceType": "Practitioner", "id": prac, "active": i != 3,
            "name": [{"family": _FAMILY[(i * 5) % len(_FAMILY)], "given": [_GIVEN[(i * 7) % len(_GIVEN)]], "prefix": ["Dr."]}],
            "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": f"99{i:08d}"}],
            "gender": rng.choice(["male", "female"]),
            "telecom": [{"system": "email", "value": f"doc{i}@example.org"}],
        })
    patients = [f"orc-pat-{i:02d}" for i in range(30)]
    for i, pid in enumerate(patients):
        given = [_GIVEN[i]] + ([rng.choice(_GIVEN)] if rng.random() < 0.4 else [])
        name: dict[str, Any] = {"use": "official", "family": rng.choice(_FAMILY), "given": given}
        if rng.random() < 0.2:
            name["prefix"] = [rng.choice(["Mr.", "Ms.", "Dr.", "Mme"])]
        patient: dict[str, Any] = {
            "resourceType": "Patient", "id": pid,
            "identifier": [{"system": "http://example.org/mrn", "value": f"MRN{1000 + i}",
                            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}],
                                     "text": "Medical record number"}}],
            "name": [name],
            "gender": rng.choice(["male", "female", "other", "unknown"]),
            "birthDate": _synthetic_date(rng, 1930, 2020, "ymd" if i % 5 else "y"),
            "address": [{"use": "home", "line": [f"{rng.randrange(1, 200)} Avenue des Champs"],
                         "city": rng.choice(_CITIES), "postalCode": f"{rng.randrange(10000, 99999)}", "country": "CH"}],
            "telecom": [{"system": "phone", "value": f"+41 44 {rng.randrange(100, 999)} {rng.randrange(1000, 9999)}"},
                        {"system": "email", "value": f"patient{i}@example.org"}],
            "generalPractitioner": [{"reference": f"Practitioner/{rng.choice(practitioners)}"}],
            "managingOrganization": {"reference": f"Organization/{rng.choice(orgs)}"},
        }
        if i % 3:
            patient["active"] = bool(i % 2)
        if i % 7 == 0:
            patient["deceasedDateTime"] = _synthetic_date(rng, 2015, 2024, "ds")
        elif i % 11 == 0:
            patient["deceasedBoolean"] = False
        if i % 4 == 0:
            patient["meta"] = {"tag": [{"system": "http://example.org/tags", "code": rng.choice(["vip", "research"])}]}
        if i == 5:  # characters the search value syntax must escape
            patient["identifier"].append({"system": "http://example.org/odd", "value": "A,B|C$D\\E"})
        out.append(patient)
    encounters = []
    for i in range(40):
        eid = f"orc-enc-{i:02d}"
        encounters.append(eid)
        start = _synthetic_date(rng, 2015, 2024, "dst")
        period: dict[str, str] = {"start": start}
        status = rng.choice(["finished", "in-progress", "planned", "cancelled"])
        if status == "finished" and len(start) > 10:
            start_range = date_interval(start)
            assert start_range is not None
            end = datetime.fromtimestamp(start_range[0] / 1e6, tz=UTC) + timedelta(minutes=rng.randrange(5, 5000))
            period["end"] = end.strftime("%Y-%m-%dT%H:%M:%SZ")
        elif status == "finished":
            period["end"] = start
        encounter: dict[str, Any] = {
            "resourceType": "Encounter", "id": eid, "status": status,
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": rng.choice(["AMB", "EMER", "IMP"])},
            "type": [{"coding": [{"system": _SNOMED, "code": rng.choice(["185349003", "270427003", "390906007"])}]}],
            "subject": {"reference": f"Patient/{rng.choice(patients)}"},
            "participant": [{"individual": {"reference": f"Practitioner/{rng.choice(practitioners)}"}}],
            "period": period,
            "serviceProvider": {"reference": f"Organization/{rng.choice(orgs)}"},
        }
        if i == 7:  # an absolute reference with this server's base is a local reference
            encounter["subject"] = {"reference": f"{BASE}/Patient/{patients[1]}"}
        if rng.random() < 0.5:
            encounter["length"] = {"value": rng.randrange(5, 600), "unit": "min", "system": UCUM, "code": "min"}
        out.append(encounter)
    for i in range(100):
        code, display, units = rng.choice(_OBSERVATION_CODES)
        observation: dict[str, Any] = {
            "resourceType": "Observation", "id": f"orc-obs-{i:03d}",
            "status": rng.choice(["final", "preliminary", "amended"]),
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                      "code": "vital-signs" if code in ("29463-7", "8302-2", "3141-9") else "laboratory"}]}],
            "code": {"coding": [{"system": _LOINC, "code": code, "display": display}], "text": display},
            "subject": {"reference": f"Patient/{rng.choice(patients)}"},
        }
        if rng.random() < 0.7:
            observation["encounter"] = {"reference": f"Encounter/{rng.choice(encounters)}"}
        if rng.random() < 0.8:
            observation["effectiveDateTime"] = _synthetic_date(rng, 2016, 2024)
        else:
            start = _synthetic_date(rng, 2016, 2024, "dst")
            observation["effectivePeriod"] = {"start": start} if rng.random() < 0.5 else {"start": start, "end": start[:10]}
        roll = rng.random()
        if roll < 0.75:
            unit, low, high = rng.choice(units)
            value = round(rng.uniform(low, high), rng.choice([0, 1, 2]))
            value = int(value) if value == int(value) and rng.random() < 0.5 else value
            observation["valueQuantity"] = {"value": value, "unit": unit, "system": UCUM, "code": unit}
        elif roll < 0.85:
            observation["valueCodeableConcept"] = {"coding": [{"system": _SNOMED, "code": rng.choice(["260385009", "10828004"])}],
                                                   "text": rng.choice(["Négatif", "Positive"])}
        elif roll < 0.92:
            observation["valueString"] = rng.choice(["trace amounts", "Très élevé", "normal"])
        else:
            observation["valueQuantity"] = {"value": rng.randrange(1, 10), "unit": "tablets",
                                            "system": "http://example.org/units", "code": "tab"}
        if rng.random() < 0.3:
            observation["performer"] = [{"reference": f"Practitioner/{rng.choice(practitioners)}"}]
        if rng.random() < 0.1:
            observation["component"] = [
                {"code": {"coding": [{"system": _LOINC, "code": "8480-6"}]},
                 "valueQuantity": {"value": rng.randrange(100, 180), "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"}},
                {"code": {"coding": [{"system": _LOINC, "code": "8462-4"}]},
                 "valueQuantity": {"value": rng.randrange(60, 110), "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"}},
            ]
        out.append(observation)
    out.append({  # a long free-text value (search matches on all of it, not on a prefix of it)
        "resourceType": "Observation", "id": "orc-obs-long", "status": "final",
        "code": {"coding": [{"system": _LOINC, "code": "48767-8", "display": "Annotation comment"}]},
        "subject": {"reference": "Patient/orc-pat-00"},
        "valueString": "Specimen received " + "and reviewed by the laboratory; no further action. " * 11
        + "Critical value phoned to Dr. Østergaard at 14:05.",
    })
    for i in range(40):
        code, display = rng.choice(_CONDITION_CODES)
        condition: dict[str, Any] = {
            "resourceType": "Condition", "id": f"orc-cond-{i:02d}",
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                           "code": rng.choice(["active", "resolved", "remission"])}]},
            "code": {"coding": [{"system": _SNOMED, "code": code, "display": display}],
                     "text": display if rng.random() < 0.5 else display.upper()},
            "subject": {"reference": f"Patient/{rng.choice(patients)}"},
            "recordedDate": _synthetic_date(rng, 2010, 2024, "dst"),
        }
        if rng.random() < 0.5:
            condition["encounter"] = {"reference": f"Encounter/{rng.choice(encounters)}"}
        roll = rng.random()
        if roll < 0.5:
            condition["onsetDateTime"] = _synthetic_date(rng, 1990, 2024)
        elif roll < 0.7:
            condition["onsetPeriod"] = {"start": _synthetic_date(rng, 1990, 2010, "ymd"), "end": _synthetic_date(rng, 2010, 2024, "ymd")}
        elif roll < 0.85:
            condition["onsetAge"] = {"value": rng.randrange(1, 90), "unit": "years", "system": UCUM, "code": "a"}
        if rng.random() < 0.3:
            condition["abatementDateTime"] = _synthetic_date(rng, 2020, 2024, "yds")
        if rng.random() < 0.3:
            condition["severity"] = {"coding": [{"system": _SNOMED, "code": rng.choice(["24484000", "6736007", "255604002"])}]}
        out.append(condition)
    for i in range(8):
        prediction: list[dict] = [{"outcome": {"text": "Heart attack"}, "probabilityDecimal": rng.choice([0.02, 0.25, 0.5, 0.125, 0.9])}]
        if i % 2:
            low = rng.randrange(1, 40)
            prediction.append({"outcome": {"text": "Stroke"}, "probabilityRange": {"low": {"value": low}, "high": {"value": low + rng.randrange(1, 30)}}})
        out.append({
            "resourceType": "RiskAssessment", "id": f"orc-risk-{i}", "status": "final",
            "subject": {"reference": f"Patient/{rng.choice(patients)}"},
            "occurrenceDateTime": _synthetic_date(rng, 2018, 2024),
            "prediction": prediction,
        })
    return out


def transaction(resources: list[dict]) -> dict:
    """A transaction Bundle that PUTs each resource under its own id."""
    return {
        "resourceType": "Bundle", "type": "transaction",
        "entry": [
            {"fullUrl": f"{BASE}/{r['resourceType']}/{r['id']}", "resource": r,
             "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
            for r in resources
        ],
    }


# -- the search parameters (data only) ---------------------------------------------------------------

@dataclass(frozen=True)
class Param:
    res_type: str
    code: str
    type: str
    expression: str
    target: tuple[str, ...]
    url: str
    components: tuple[tuple[str, str], ...] = ()  # composite: (definition URL, expression)


def spec_by_url() -> dict[str, Any]:
    return {sp.url: sp for sp in definitions().search_parameters}


def spec_parameters() -> dict[str, dict[str, Param]]:
    """The package's SearchParameters by resource type and code (example definitions left out)."""
    spec = definitions()
    resource_types = sorted(spec.resource_types)
    table: dict[str, dict[str, Param]] = {t: {} for t in resource_types}
    for sp in spec.search_parameters:
        if "/SearchParameter/example" in sp.url:  # examples in the package, not base definitions
            continue
        for base in sp.base:
            if base == "Resource":
                applies = resource_types
            elif base == "DomainResource":
                applies = [t for t in resource_types if t not in NOT_DOMAIN_RESOURCES]
            else:
                applies = [base] if base in table else []
            for res_type in applies:
                components = tuple((c["definition"], c["expression"]) for c in sp.component)
                table[res_type].setdefault(
                    sp.code, Param(res_type, sp.code, sp.type, sp.expression, tuple(sp.target), sp.url, components)
                )
    return table


# -- FHIRPath --------------------------------------------------------------------------------------

class Unsupported(Exception):
    """An expression (or a value it returns) the oracle cannot evaluate faithfully."""


def split_union(expression: str) -> list[str]:
    parts, depth, quoted, current = [], 0, False, ""
    for char in expression:
        if char == "'":
            quoted = not quoted
        if not quoted and char in "([":
            depth += 1
        if not quoted and char in ")]":
            depth -= 1
        if char == "|" and depth == 0 and not quoted:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    return [p for p in parts if p]


def _strip_parens(text: str) -> str:
    while text.startswith("(") and text.endswith(")"):
        depth = 0
        for index, char in enumerate(text):
            depth += {"(": 1, ")": -1}.get(char, 0)
            if depth == 0 and index < len(text) - 1:
                return text
        text = text[1:-1].strip()
    return text


_RESOLVE_TAIL = re.compile(r"^(?P<path>.+)\.where\(resolve\(\) is (?P<type>[A-Za-z]+)\)$")
_PAREN_AS = re.compile(r"\((?P<path>(?:[^()]|\([^()]*\))+?) as (?P<type>[A-Za-z]+)\)")
_TRAILING_AS = re.compile(r"^(?P<path>[^|]+?) as (?P<type>[A-Za-z]+)$")
_FUNCTION_AS = re.compile(r"\.as\((?P<type>[A-Za-z]+)\)")
_HAS_EXTENSION = re.compile(r"hasExtension\((?P<url>'[^']*')\)")
_HEAD = re.compile(r"^(?P<head>[A-Za-z]+)")


@dataclass
class Member:
    """One union member of an expression, rewritten for fhirpathpy, for one resource type."""

    source: str
    rewritten: str
    resolve_type: str | None
    compiled: Callable[..., list]


def rewrite(text: str) -> str:
    """`X as T`, `(X as T)`, `X.as(T)` -> `X.ofType(T)`; `hasExtension(u)` -> `extension(u).exists()`."""
    text = _strip_parens(text)
    match = _TRAILING_AS.match(text)
    if match and "(" not in match["path"].rsplit(".", 1)[-1]:
        text = f"{match['path']}.ofType({match['type']})"
    for _ in range(3):
        text = _PAREN_AS.sub(lambda m: f"({m['path']}.ofType({m['type']}))", text)
    text = _FUNCTION_AS.sub(lambda m: f".ofType({_PRIMITIVES.get(m['type'].lower(), m['type'])})", text)
    return _HAS_EXTENSION.sub(lambda m: f"extension({m['url']}).exists()", text)


def compile_text(text: str) -> Callable[..., list]:
    try:
        return fhirpath_compile(text, models["r4"], {"returnRawData": True})
    except Exception as error:  # noqa: BLE001 - reported as unsupported
        raise Unsupported(f"fhirpathpy cannot parse {text!r}: {error}") from None


def root(res_type: str, text: str, resource_types: frozenset[str]) -> str | None:
    """`text` rooted at `res_type`, or None when it is about another resource type."""
    head = _HEAD.match(text.lstrip("("))
    if head is None:
        raise Unsupported(f"cannot root {text!r}")
    name = head["head"]
    if name in ("Resource", "DomainResource"):
        return text.replace(name, res_type, 1)
    if name in resource_types:
        return text if name == res_type else None
    return f"{res_type}.{text}"


def compile_member(res_type: str, member: str, resource_types: frozenset[str]) -> Member | None:
    """The member as fhirpathpy can run it on `res_type`, or None when it is about another type."""
    text = _strip_parens(member.strip())
    resolve_type = None
    match = _RESOLVE_TAIL.match(text)
    if match:
        text, resolve_type = match["path"], match["type"]
    if "resolve()" in text:
        raise Unsupported(f"resolve() inside {member!r}")
    rooted = root(res_type, rewrite(text), resource_types)
    if rooted is None:
        return None
    return Member(member, rooted, resolve_type, compile_text(rooted))


_PRIMITIVES = {
    name.lower(): name for name in (
        "boolean", "integer", "string", "decimal", "uri", "url", "canonical", "base64Binary", "instant",
        "date", "dateTime", "time", "code", "oid", "id", "markdown", "unsignedInt", "positiveInt", "uuid",
    )
}
_SYSTEM_TYPES = {"System.String": "string", "System.Boolean": "boolean", "System.Integer": "integer",
                 "System.Decimal": "decimal", "System.DateTime": "dateTime", "System.Date": "date"}


def _typed(item: Any) -> tuple[str, Any]:
    """(FHIR type name, JSON data) of one fhirpathpy result item."""
    path = getattr(item, "path", None)
    data = getattr(item, "data", item)
    if path is None:
        if isinstance(data, bool):
            return "boolean", data
        if isinstance(data, int):
            return "integer", data
        if isinstance(data, (float, Decimal)):
            return "decimal", data
        if isinstance(data, str):
            return "string", data
        if isinstance(data, dict) and "resourceType" in data:
            return data["resourceType"], data
        raise Unsupported(f"untyped result {type(data).__name__}")
    path = _SYSTEM_TYPES.get(path, path)
    if path == "Extension" and isinstance(data, dict):
        for key, value in data.items():
            if key.startswith("value") and len(key) > 5:
                suffix = key[5:]
                return _PRIMITIVES.get(suffix.lower(), suffix), value
        return "Extension", data
    return path, data


def evaluate(members: list[Member], resource: dict) -> list[tuple[str, Any]]:
    """The typed values the expression finds in `resource` (union members concatenated)."""
    found: list[tuple[str, Any]] = []
    for member in members:
        try:
            items = member.compiled(resource)
        except Exception as error:  # noqa: BLE001 - fhirpathpy limitation, reported
            raise Unsupported(f"fhirpathpy failed on {member.rewritten!r}: {str(error)[:120]}") from None
        for item in items:
            typed = _typed(item)
            if member.resolve_type is not None:
                if typed[0] != "Reference" or not isinstance(typed[1], dict):
                    continue
                if reference_type(typed[1].get("reference")) != member.resolve_type:
                    continue
            found.append(typed)
    return found


# -- values: what a parameter's expression yields, per search parameter type ----------------------

def normalize(text: str) -> str:
    """Case- and accent-insensitive form (search.html: string matching)."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).casefold()


@dataclass(frozen=True)
class Tok:
    kind: str  # coding | identifier | contact | primitive | text
    system: str | None
    code: str | None
    text: str | None = None
    of_type: tuple[tuple[str | None, str], ...] = ()


@dataclass(frozen=True)
class Ref:
    local: bool  # a relative (or server-base) reference Type/id
    type: str | None
    id: str | None
    url: str | None  # an absolute URL / canonical (without |version) when not local
    version: str | None = None
    history: bool = False  # Type/id/_history/n


@dataclass(frozen=True)
class Interval:
    """A number, quantity or date as [low, high] (numbers: closed; dates: half-open µs)."""

    low: Any
    high: Any
    point: bool
    system: str | None = None
    code: str | None = None
    unit: str | None = None


@dataclass
class Extract:
    """What one parameter yields for one resource."""

    entries: list = field(default_factory=list)
    present: Tri = False  # has a value (for :missing); None when only unsearchable elements
    error: str | None = None
    identifiers: list = field(default_factory=list)  # Reference.identifier tokens (:identifier)


_REFERENCE = re.compile(r"^(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/(?P<version>[^/]+))?$")


def parse_reference(text: Any) -> Ref | None:
    if not isinstance(text, str) or not text or text.startswith("#"):
        return None
    if text.startswith(BASE + "/"):
        text = text[len(BASE) + 1:]
    match = _REFERENCE.match(text)
    if match:
        return Ref(True, match["type"], match["id"], None, match["version"], match["version"] is not None)
    url, _, version = text.partition("|")
    return Ref(False, None, None, url, version or None)


_URL_TAIL = re.compile(r"://.+/(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


def reference_type(text: Any) -> str | None:
    """The type `resolve()` would find behind a literal reference, relative or absolute."""
    parsed = parse_reference(text)
    if parsed is None:
        return None
    if parsed.local:
        return parsed.type
    tail = _URL_TAIL.search(parsed.url or "")
    return tail["type"] if tail else None


def token_entries(ftype: str, data: Any) -> list[Tok]:
    if ftype == "CodeableConcept":
        found = [token_entries("Coding", c)[0] for c in data.get("coding", []) if isinstance(c, dict)]
        if data.get("text"):
            found.append(Tok("text", None, None, data["text"]))
        return found
    if ftype == "Coding":
        return [Tok("coding", data.get("system"), data.get("code"), data.get("display"))]
    if ftype == "Identifier":
        kind = data.get("type") or {}
        of_type = tuple((c.get("system"), c["code"]) for c in kind.get("coding", []) if c.get("code"))
        return [Tok("identifier", data.get("system"), data.get("value"), kind.get("text"), of_type)]
    if ftype == "ContactPoint":
        return [Tok("contact", None, data.get("value"))]
    if ftype == "boolean":
        return [Tok("primitive", None, "true" if data else "false")]
    if ftype in ("code", "string", "id", "uri", "url", "canonical", "oid", "uuid"):
        return [Tok("primitive", None, data)]
    raise Unsupported(f"token value of type {ftype}")


def string_entries(ftype: str, data: Any) -> list[str]:
    if ftype in ("string", "markdown"):
        return [data]
    if ftype == "HumanName":
        parts = ("text", "family", "given", "prefix", "suffix")
    elif ftype == "Address":
        parts = ("text", "line", "city", "district", "state", "postalCode", "country")
    else:
        raise Unsupported(f"string value of type {ftype}")
    found = []
    for part in parts:
        value = data.get(part)
        found.extend(value if isinstance(value, list) else [value] if value is not None else [])
    return [v for v in found if isinstance(v, str)]


_DATE = re.compile(
    r"(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d+))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICRO


def date_interval(text: str) -> tuple[int, int] | None:
    """The half-open UTC microsecond interval a date/dateTime/instant covers at its precision.
    A value without a time zone (a date) is read as UTC, which is this server's zone."""
    match = _DATE.fullmatch(text.strip()) if isinstance(text, str) else None
    if not match:
        return None
    g = match.groupdict()
    try:
        year = int(g["y"])
        if g["m"] is None:
            return _micros(datetime(year, 1, 1, tzinfo=UTC)), _micros(datetime(year + 1, 1, 1, tzinfo=UTC))
        month = int(g["m"])
        if g["d"] is None:
            following = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
            return _micros(datetime(year, month, 1, tzinfo=UTC)), _micros(following)
        day = datetime(year, month, int(g["d"]), tzinfo=UTC)
        if g["H"] is None:
            return _micros(day), _micros(day + timedelta(days=1))
        zone = UTC
        if g["tz"] and g["tz"] != "Z":
            sign = 1 if g["tz"][0] == "+" else -1
            zone = timezone(sign * timedelta(hours=int(g["tz"][1:3]), minutes=int(g["tz"][4:6])))
        start = datetime(year, month, int(g["d"]), int(g["H"]), int(g["M"]), int(g["S"] or 0), tzinfo=zone)
        if g["S"] is None:
            width = timedelta(minutes=1)
        elif g["f"]:
            digits = g["f"][:6]
            start += timedelta(microseconds=int(digits.ljust(6, "0")))
            width = timedelta(microseconds=10 ** (6 - len(digits)))
        else:
            width = timedelta(seconds=1)
        return _micros(start), _micros(start + width)
    except (ValueError, OverflowError):
        return None


def date_entries(ftype: str, data: Any) -> list[Interval]:
    if ftype in ("date", "dateTime", "instant"):
        found = date_interval(data)
        return [Interval(found[0], found[1], False)] if found else []
    if ftype == "Period":
        start = date_interval(data["start"]) if "start" in data else None
        end = date_interval(data["end"]) if "end" in data else None
        if start is None and end is None:
            return []
        return [Interval(start[0] if start else -INF, end[1] if end else INF, False)]
    if ftype == "Timing":
        # search.html: only the outer limits of a Timing matter
        ranges = [date_interval(e) for e in data.get("event", [])]
        bounds = (data.get("repeat") or {}).get("boundsPeriod")
        if isinstance(bounds, dict):
            ranges.extend((i.low, i.high) for i in date_entries("Period", bounds))
        ranges = [r for r in ranges if r]
        if not ranges:
            return []
        return [Interval(min(r[0] for r in ranges), max(r[1] for r in ranges), False)]
    if ftype == "string" and date_interval(data) is None:
        return []
    # a `string` choice (CarePlan.activity.detail.scheduledString) that looks like a date: is it one?
    raise Unsupported(f"date value of type {ftype}")


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return None
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


_QUANTITY_TYPES = ("Quantity", "Age", "Duration", "Distance", "Count", "SimpleQuantity", "MoneyQuantity")


def number_entries(ftype: str, data: Any) -> list[Interval]:
    if ftype in ("integer", "decimal", "positiveInt", "unsignedInt"):
        return [Interval(_decimal(data), _decimal(data), True)]
    if ftype == "Range":
        low = _decimal((data.get("low") or {}).get("value"))
        high = _decimal((data.get("high") or {}).get("value"))
        if low is None and high is None:
            return []
        return [Interval(low if low is not None else -INF, high if high is not None else INF, False)]
    raise Unsupported(f"number value of type {ftype}")


def quantity_entries(ftype: str, data: Any) -> list[Interval]:
    if ftype in _QUANTITY_TYPES:
        value = _decimal(data.get("value"))
        if value is None:
            return []
        return [Interval(value, value, True, data.get("system"), data.get("code"), data.get("unit"))]
    if ftype == "Money":
        value = _decimal(data.get("value"))
        return [Interval(value, value, True, ISO4217, data.get("currency"), None)] if value is not None else []
    if ftype == "Range":
        low, high = data.get("low") or {}, data.get("high") or {}
        lv, hv = _decimal(low.get("value")), _decimal(high.get("value"))
        if lv is None and hv is None:
            return []
        unit = low if lv is not None else high
        return [Interval(lv if lv is not None else -INF, hv if hv is not None else INF, False,
                         unit.get("system"), unit.get("code"), unit.get("unit"))]
    if ftype in ("integer", "decimal"):
        return [Interval(_decimal(data), _decimal(data), True)]
    raise Unsupported(f"quantity value of type {ftype}")


def reference_entries(ftype: str, data: Any) -> tuple[list[Ref], list[Tok]]:
    if ftype == "Reference":
        identifier = data.get("identifier")
        tokens = token_entries("Identifier", identifier) if isinstance(identifier, dict) else []
        parsed = parse_reference(data.get("reference"))
        return ([parsed] if parsed else []), tokens
    if ftype in ("canonical", "uri", "url", "string"):
        parsed = parse_reference(data)
        return ([parsed] if parsed else []), []
    if isinstance(data, dict) and "resourceType" in data:  # Bundle.entry[0].resource
        return ([Ref(True, data["resourceType"], data["id"], None)] if data.get("id") else []), []
    if ftype == "Attachment":  # Consent.source: the R4 expression also reaches sourceAttachment
        return [], []
    raise Unsupported(f"reference value of type {ftype}")


def uri_entries(ftype: str, data: Any) -> list[str]:
    if ftype in ("uri", "url", "canonical", "oid", "uuid", "string"):
        return [data]
    raise Unsupported(f"uri value of type {ftype}")


PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")


# -- matching (search.html) -----------------------------------------------------------------------

def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("|", "\\|").replace("$", "\\$")


def split_escaped(text: str, separator: str) -> list[str]:
    parts, current, index = [], "", 0
    while index < len(text):
        if text[index] == "\\" and index + 1 < len(text):
            current += text[index:index + 2]
            index += 2
            continue
        if text[index] == separator:
            parts.append(current)
            current = ""
        else:
            current += text[index]
        index += 1
    parts.append(current)
    return parts


def unescape(text: str) -> str:
    return re.sub(r"\\([\\,|$])", r"\1", text)


def match_token(entries: list[Tok], modifier: str | None, value: str) -> Tri:
    if modifier == "text":
        wanted = normalize(unescape(value))
        return any(e.text is not None and normalize(e.text).startswith(wanted) for e in entries)
    parts = [unescape(p) for p in split_escaped(value, "|")]
    if modifier == "of-type":
        system, code, ident = parts
        return any(e.kind == "identifier" and e.code == ident and (system or None, code) in e.of_type for e in entries)
    if len(parts) == 1:
        return any(e.code == parts[0] for e in entries if e.kind != "text")
    system, code = parts
    results: list[Tri] = []
    for e in entries:
        if e.kind in ("coding", "identifier"):
            if code:
                results.append(e.code == code and e.system == (system or None))
            else:
                results.append(e.system == system)
        elif e.kind in ("primitive", "contact"):
            # the code system of a plain code is implicit, a ContactPoint has none: unspecified
            results.append(None if (not code or e.code == code) else False)
    return tri_or(results)


def match_string(entries: list[str], modifier: str | None, value: str) -> Tri:
    text = unescape(value)
    if modifier == "exact":
        return any(e == text for e in entries)
    wanted = normalize(text)
    if modifier == "contains":
        return any(wanted in normalize(e) for e in entries)
    return any(normalize(e).startswith(wanted) for e in entries)


def match_date(entries: list[Interval], prefix: str, value: str) -> Tri:
    """search.html 3.1.1.4.2/prefix table, literally, on half-open ranges."""
    found = date_interval(value)
    assert found is not None, value
    low, high = found
    results = []
    for e in entries:
        contains = low <= e.low and e.high <= high
        above = e.high > high  # the range above the search value intersects the target
        below = e.low < low
        results.append({
            "eq": contains, "ne": not contains, "gt": above, "lt": below, "ge": above or contains,
            "le": below or contains, "sa": e.low >= high, "eb": e.high <= low,
        }[prefix])
    return any(results)


def search_number(text: str) -> tuple[Decimal, Decimal, Decimal]:
    """(value, low, high): the range the value's precision implies (`100` is 99.5..100.5)."""
    number = Decimal(text)
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)
    half = Decimal(5).scaleb(exponent - 1)
    return number, number - half, number + half


def compare_number(e_low: Any, e_high: Any, point: bool, prefix: str, number: tuple[Decimal, Decimal, Decimal]) -> Tri:
    """One target range against a search number (search.html 3.1.1.4.1: eq/ne use the precision
    range, gt/lt/ge/le compare with the exact value). Where the page is silent or contradicts
    itself (sa/eb on a point inside the precision range, ranges near the edges, ap beyond the
    recommended 10%), the outcome is uncertain."""
    value, low, high = number
    if prefix in ("eq", "ne"):
        if point:
            if e_low in (low, high):
                return None  # is the end of the precision range inside it?
            inside = low < e_low < high
        else:
            if e_low in (low, high) or e_high in (low, high):
                return None
            inside = low < e_low and e_high < high
        return inside if prefix == "eq" else not inside
    if prefix == "ap":
        margin = abs(value) / 10
        near, far = margin * Decimal("0.9"), margin * Decimal("1.1")
        if e_low <= value + near and e_high >= value - near:
            return True
        if e_low > value + far or e_high < value - far:
            return False
        return None
    if point:
        t = e_low
        if prefix in ("sa", "eb") and low <= t <= high:
            return None
        return {"gt": t > value, "ge": t >= value, "lt": t < value, "le": t <= value, "sa": t > value, "eb": t < value}[prefix]
    # a Range: definite only away from the precision range of the search value
    edge = e_high if prefix in ("gt", "ge", "eb") else e_low
    if low <= edge <= high:
        return None
    return {"gt": edge > high, "ge": edge > high, "eb": edge < low, "lt": edge < low, "le": edge < low, "sa": edge > high}[prefix]


# A small UCUM table: simple units with a decimal factor to one base unit per dimension.
_UCUM_SIMPLE: dict[str, tuple[str, Decimal]] = {
    "g": ("g", Decimal(1)), "mg": ("g", Decimal("0.001")), "ug": ("g", Decimal("0.000001")), "kg": ("g", Decimal(1000)),
    "ng": ("g", Decimal("1E-9")),
    "L": ("L", Decimal(1)), "mL": ("L", Decimal("0.001")), "dL": ("L", Decimal("0.1")), "uL": ("L", Decimal("0.000001")),
    "m": ("m", Decimal(1)), "cm": ("m", Decimal("0.01")), "mm": ("m", Decimal("0.001")), "km": ("m", Decimal(1000)),
    "s": ("s", Decimal(1)), "ms": ("s", Decimal("0.001")), "min": ("s", Decimal(60)), "h": ("s", Decimal(3600)),
    "d": ("s", Decimal(86400)), "wk": ("s", Decimal(604800)),
    "mol": ("mol", Decimal(1)), "mmol": ("mol", Decimal("0.001")), "umol": ("mol", Decimal("0.000001")),
    "[lb_av]": ("g", Decimal("453.59237")), "[oz_av]": ("g", Decimal("28.349523125")), "[in_i]": ("m", Decimal("0.0254")),
    "a": ("s", Decimal(31557600)), "mo": ("s", Decimal(2629800)),
    "mm[Hg]": ("mm[Hg]", Decimal(1)), "%": ("%", Decimal(1)), "m2": ("m2", Decimal(1)), "cm2": ("m2", Decimal("0.0001")),
}


def ucum_simple(code: str | None) -> tuple[str, Decimal] | None:
    """(dimension, factor) for `a` or `a/b` built from the simple table, else None."""
    if not code:
        return None
    if code in _UCUM_SIMPLE:
        return _UCUM_SIMPLE[code]
    top, slash, bottom = code.partition("/")
    if slash and (top in _UCUM_SIMPLE or top == "") and bottom in _UCUM_SIMPLE:
        (d1, f1), (d2, f2) = _UCUM_SIMPLE.get(top, ("1", Decimal(1))), _UCUM_SIMPLE[bottom]
        return f"{d1}/{d2}", f1 / f2
    return None


def match_quantity(entries: list[Interval], prefix: str, value: str) -> Tri:
    parts = [unescape(p) for p in split_escaped(value, "|")]
    number = search_number(parts[0])
    system, code = (parts[1], parts[2]) if len(parts) == 3 else (None, None)
    results: list[Tri] = []
    for e in entries:
        low, high = e.low, e.high
        if code and system == UCUM:
            wanted = ucum_simple(code)
            if e.system != UCUM:
                results.append(False)
                continue
            if e.code == code:
                results.append(compare_number(low, high, e.point, prefix, number))
                continue
            mine = ucum_simple(e.code)
            if wanted is None or mine is None:
                results.append(None if e.code is not None else False)
                continue
            if wanted[0] != mine[0]:
                results.append(False)
                continue
            # both into the base unit of the dimension (infinite ends of a Range stay infinite)
            scaled = (number[0] * wanted[1], number[1] * wanted[1], number[2] * wanted[1])
            low = low * mine[1] if isinstance(low, Decimal) else low
            high = high * mine[1] if isinstance(high, Decimal) else high
            results.append(compare_number(low, high, e.point, prefix, scaled))
            continue
        if (code and system and (e.system != system or e.code != code)) or (
            code and not system and e.code != code and e.unit != code  # number||code: the code or the unit text
        ):
            results.append(False)
            continue
        results.append(compare_number(low, high, e.point, prefix, number))
    return tri_or(results)


def match_number(entries: list[Interval], prefix: str, value: str) -> Tri:
    number = search_number(unescape(value))
    return tri_or(compare_number(e.low, e.high, e.point, prefix, number) for e in entries)


def match_reference(param: Param, entries: list[Ref], modifier: str | None, value: str) -> Tri:
    text = unescape(value)
    type_hint = modifier if modifier and modifier[:1].isupper() else None
    results: list[Tri] = []
    query = parse_reference(text)
    if "/" not in text and ":" not in text:  # a bare id
        for e in entries:
            if not e.local or e.id != text or type_hint and e.type != type_hint:
                results.append(False)
            elif e.history or (not type_hint and param.target and e.type not in param.target):
                # the id names a resource of a type the parameter does not allow: which type is meant?
                results.append(None)
            else:
                results.append(True)
        return tri_or(results)
    assert query is not None
    for e in entries:
        if query.local:
            if not e.local or (e.type, e.id) != (query.type, query.id):
                results.append(False)
            else:
                results.append(None if e.history or query.history else True)
        elif e.local:
            results.append(False)
        else:
            results.append(e.url == query.url and (query.version is None or query.version == e.version))
    return tri_or(results)


def match_entries(param: Param, entries: list, modifier: str | None, value: str) -> Tri:
    """Whether one alternative of a search value matches a parameter's values in one resource
    (or, for a composite, one component's values in one element)."""
    kind = param.type
    if kind == "token":
        return match_token(entries, modifier, value)
    if kind == "string":
        return match_string(entries, modifier, value)
    if kind == "uri":
        return unescape(value) in entries
    if kind == "reference":
        return match_reference(param, entries, modifier, value)
    prefix, text = (value[:2], value[2:]) if value[:2] in PREFIXES else ("eq", value)
    if kind == "date":
        return match_date(entries, prefix, text)
    if kind == "number":
        return match_number(entries, prefix, text)
    if kind == "quantity":
        return match_quantity(entries, prefix, text)
    raise AssertionError(kind)


# -- the oracle ------------------------------------------------------------------------------------

# meta.lastUpdated is set by the server, not taken from the resource sent
SERVER_ASSIGNED = frozenset({"_lastUpdated"})
SUPPORTED_TYPES = ("token", "string", "date", "number", "quantity", "reference", "uri")
_CONVERT = {
    "token": token_entries, "string": string_entries, "date": date_entries, "number": number_entries,
    "quantity": quantity_entries, "uri": uri_entries,
}


@dataclass(frozen=True)
class Simple:
    code: str
    modifier: str | None


@dataclass(frozen=True)
class Chain:
    code: str
    target_type: str | None
    rest: Key


@dataclass(frozen=True)
class Has:
    source_type: str
    reference: str
    rest: Key


Key = Simple | Chain | Has


def parse_key(key: str) -> Key:
    if key.startswith("_has:"):
        _, source, reference, rest = key.split(":", 3)
        return Has(source, reference, parse_key(rest))
    head, dot, rest = key.partition(".")
    if dot:
        code, _, target = head.partition(":")
        return Chain(code, target or None, parse_key(rest))
    code, _, modifier = key.partition(":")
    return Simple(code, modifier or None)


class Oracle:
    """Expected search results over a set of resources."""

    def __init__(self, resources: Iterable[dict]) -> None:
        self.params = spec_parameters()
        self.resource_types = frozenset(definitions().resource_types)
        self.resources: dict[str, dict[str, dict]] = defaultdict(dict)
        for resource in resources:
            self.resources[resource["resourceType"]][resource["id"]] = resource
        self._members: dict[tuple[str, str], list[Member] | Unsupported] = {}
        self._compiled: dict[str, Callable[..., list]] = {}
        self.by_url = spec_by_url()
        self._extracts: dict[tuple[str, str], dict[str, Extract]] = {}
        self.unsupported: Counter[str] = Counter()  # reason -> (param, resource) pairs left uncertain

    # values ------------------------------------------------------------------------------------

    def members(self, param: Param) -> list[Member]:
        key = (param.res_type, param.code)
        found = self._members.get(key)
        if found is None:
            try:
                compiled = [compile_member(param.res_type, m, self.resource_types) for m in split_union(param.expression)]
                found = [m for m in compiled if m is not None]
            except Unsupported as error:
                found = error
            self._members[key] = found
        if isinstance(found, Unsupported):
            raise found
        return found

    def extract(self, res_type: str, code: str) -> dict[str, Extract]:
        """id -> what parameter `code` yields for each resource of `res_type`."""
        key = (res_type, code)
        found = self._extracts.get(key)
        if found is not None:
            return found
        param = self.params[res_type][code]
        found = {}
        for rid, resource in self.resources.get(res_type, {}).items():
            found[rid] = self._extract_one(param, resource)
        self._extracts[key] = found
        return found

    def component_params(self, param: Param) -> list[tuple[Param, str]]:
        """(component parameter, its expression) of a composite parameter."""
        found = []
        for url, expression in param.components:
            sp = self.by_url.get(url)
            if sp is None or sp.type not in SUPPORTED_TYPES:
                raise Unsupported(f"component {url} of type {getattr(sp, 'type', '?')}")
            found.append((Param(param.res_type, sp.code, sp.type, sp.expression, tuple(sp.target), sp.url), expression))
        return found

    def _run(self, text: str, resource: dict) -> list[tuple[str, Any]]:
        compiled = self._compiled.get(text)
        if compiled is None:
            compiled = self._compiled[text] = compile_text(text)
        try:
            return [_typed(item) for item in compiled(resource)]
        except Unsupported:
            raise
        except Exception as error:  # noqa: BLE001 - fhirpathpy limitation, reported
            raise Unsupported(f"fhirpathpy failed on {text!r}: {str(error)[:120]}") from None

    def _extract_composite(self, param: Param, resource: dict) -> Extract:
        """Entries are the elements: per element, the entries of each component (search.html:
        the components of a composite match on the same element)."""
        out = Extract()
        components = self.component_params(param)
        for member in split_union(param.expression):
            rooted = root(param.res_type, rewrite(member), self.resource_types)
            if rooted is None:
                continue
            count = len(self._run(rooted, resource))
            for index in range(count):
                element = []
                for component, expression in components:
                    values = []
                    for part in split_union(expression):
                        if part.startswith("%resource."):
                            text = f"{param.res_type}.{rewrite(part[len('%resource.'):])}"
                        else:
                            text = f"{rooted}[{index}].{rewrite(part)}"
                        values.extend(self._run(text, resource))
                    entries = []
                    for ftype, data in values:
                        if component.type == "reference":
                            entries.extend(reference_entries(ftype, data)[0])
                        else:
                            entries.extend(_CONVERT[component.type](ftype, data))
                    element.append(entries)
                out.entries.append(tuple(element))
        # a composite value is a combination of component values found on one element
        out.present = any(all(part for part in element) for element in out.entries)
        return out

    def _extract_one(self, param: Param, resource: dict) -> Extract:
        out = Extract()
        try:
            if param.type == "composite":
                return self._extract_composite(param, resource)
            values = evaluate(self.members(param), resource)
            for ftype, data in values:
                if param.type == "reference":
                    refs, identifiers = reference_entries(ftype, data)
                    out.entries.extend(refs)
                    out.identifiers.extend(identifiers)
                else:
                    out.entries.extend(_CONVERT[param.type](ftype, data))
        except Unsupported as error:
            out.error = str(error)
            self.unsupported[f"{param.type} {param.res_type}.{param.code}: {re.sub(r'0x[0-9a-f]+', '', str(error))}"] += 1
            out.present = None
            return out
        if param.type == "token":
            searchable = any(e.code is not None or e.system is not None for e in out.entries)
        elif param.type == "string":
            out.entries = [e for e in out.entries if e]
            searchable = bool(out.entries)
        else:
            searchable = bool(out.entries)
        out.present = True if searchable else (None if values else False)
        return out

    # matching ----------------------------------------------------------------------------------

    def knows(self, res_type: str, code: str) -> bool:
        param = self.params.get(res_type, {}).get(code)
        return param is not None and param.type in (*SUPPORTED_TYPES, "composite") and bool(param.expression)

    def match(self, res_type: str, key: Key, value: str) -> dict[str, Tri]:
        """id -> whether each resource of `res_type` matches `key=value`."""
        ids = self.resources.get(res_type, {})
        if isinstance(key, Chain):
            return self._chain(res_type, key, value)
        if isinstance(key, Has):
            return self._has(res_type, key, value)
        if key.code == "_list":
            return self._list(res_type, value)
        param = self.params[res_type][key.code]
        extracts = self.extract(res_type, key.code)
        result: dict[str, Tri] = {}
        for rid in ids:
            extract = extracts[rid]
            if key.modifier == "missing":
                result[rid] = tri_not(extract.present) if value == "true" else extract.present
                continue
            if extract.error is not None:
                result[rid] = None
                continue
            alternatives = split_escaped(value, ",")
            if key.modifier == "not":
                result[rid] = tri_not(tri_or(match_token(extract.entries, None, a) for a in alternatives))
            else:
                result[rid] = tri_or(self._match_one(param, extract, key.modifier, a) for a in alternatives)
        return result

    def _match_one(self, param: Param, extract: Extract, modifier: str | None, value: str) -> Tri:
        if param.type == "composite":
            parts = split_escaped(value, "$")
            components = self.component_params(param)
            if len(parts) != len(components):
                raise AssertionError(f"{value} for {param.code}")
            return tri_or(
                tri_and(match_entries(c, entries, None, part) for (c, _), entries, part in zip(components, element, parts))
                for element in extract.entries
            )
        if param.type == "reference" and modifier == "identifier":
            return match_token(extract.identifiers, None, value)
        return match_entries(param, extract.entries, modifier, value)

    def _list(self, res_type: str, value: str) -> dict[str, Tri]:
        """search.html `_list`: the resources a List/[id] has as entry.item."""
        items = self.extract("List", "item")
        members: set[tuple[str | None, str | None]] = set()
        for list_id in (unescape(v) for v in split_escaped(value, ",")):
            if list_id in items:
                members.update((ref.type, ref.id) for ref in items[list_id].entries if ref.local)
        return {rid: (res_type, rid) in members for rid in self.resources.get(res_type, {})}

    def _chain(self, res_type: str, key: Chain, value: str) -> dict[str, Tri]:
        extracts = self.extract(res_type, key.code)
        cache: dict[str, dict[str, Tri]] = {}

        def target_matches(target_type: str) -> dict[str, Tri]:
            if target_type not in cache:
                cache[target_type] = self.match(target_type, key.rest, value)
            return cache[target_type]

        result: dict[str, Tri] = {}
        for rid, extract in extracts.items():
            if extract.error is not None:
                result[rid] = None
                continue
            found: list[Tri] = []
            for ref in extract.entries:
                if not ref.local or (key.target_type and ref.type != key.target_type):
                    continue
                if ref.type not in self.resources or ref.id not in self.resources[ref.type]:
                    continue
                if not self._rest_known(ref.type, key.rest):
                    continue
                outcome = target_matches(ref.type)[ref.id]
                found.append(None if ref.history and outcome else outcome)
            result[rid] = tri_or(found)
        return result

    def _rest_known(self, res_type: str, key: Key) -> bool:
        if isinstance(key, Simple):
            return self.knows(res_type, key.code)
        if isinstance(key, Chain):
            return self.knows(res_type, key.code)
        return True

    def _has(self, res_type: str, key: Has, value: str) -> dict[str, Tri]:
        result: dict[str, Tri] = {rid: False for rid in self.resources.get(res_type, {})}
        sources = self.match(key.source_type, key.rest, value)
        extracts = self.extract(key.source_type, key.reference)
        for sid, outcome in sources.items():
            if outcome is False:
                continue
            extract = extracts[sid]
            for ref in extract.entries:
                if ref.local and ref.type == res_type and ref.id in result:
                    result[ref.id] = tri_or([result[ref.id], None if ref.history else outcome])
            if extract.error is not None:
                for rid, current in result.items():
                    result[rid] = tri_or([current, None])
        return result

    def expected(self, res_type: str, pairs: list[tuple[str, str]]) -> tuple[frozenset[str], frozenset[str]]:
        """(ids that match, ids whose outcome is uncertain) for a query of AND-ed pairs."""
        per_id: dict[str, list[Tri]] = {rid: [] for rid in self.resources.get(res_type, {})}
        for key, value in pairs:
            for rid, outcome in self.match(res_type, parse_key(key), value).items():
                per_id[rid].append(outcome)
        combined = {rid: tri_and(outcomes) for rid, outcomes in per_id.items()}
        return (frozenset(r for r, o in combined.items() if o is True),
                frozenset(r for r, o in combined.items() if o is None))


# -- queries ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Query:
    res_type: str
    pairs: tuple[tuple[str, str], ...]
    family: str  # e.g. "token system|code", "date ge second"
    param: str  # the parameter it covers ("Patient.name")


def _fmt(number: Decimal) -> str:
    return format(number, "f")  # never exponent notation (`1E+2` has a precision of its own)


def _truncate_date(rng: random.Random, interval: Interval, precision: str) -> str:
    """A search value at `precision` in the neighbourhood of a target value."""
    low = interval.low if interval.low != -INF else interval.high - 1
    moment = _EPOCH + timedelta(microseconds=low)
    moment += rng.choice([timedelta(0), timedelta(0), timedelta(days=-1), timedelta(days=1), timedelta(days=40), timedelta(seconds=-1)])
    if precision == "year":
        return f"{moment.year:04d}"
    if precision == "month":
        return f"{moment.year:04d}-{moment.month:02d}"
    if precision == "day":
        return moment.strftime("%Y-%m-%d")
    zone = rng.choice(["Z", "+02:00", "-05:00", "+10:00"])
    offset = timedelta(0) if zone == "Z" else (1 if zone[0] == "+" else -1) * timedelta(hours=int(zone[1:3]))
    return (moment + offset).strftime("%Y-%m-%dT%H:%M:%S") + zone


def generate_queries(oracle: Oracle, seed: int = 20240611) -> tuple[list[Query], dict[str, list[str]]]:
    """Queries for every supported parameter with a value in the data, a few per type of value
    and modifier, drawn (seeded) from the oracle's own extracted values. Also returns the
    parameters left out, by reason."""
    queries: list[Query] = []
    excluded: dict[str, list[str]] = defaultdict(list)
    for res_type in sorted(oracle.resources):
        for code, param in sorted(oracle.params[res_type].items()):
            name = f"{res_type}.{code}"
            if not param.expression:
                excluded["no FHIRPath expression"].append(name)
                continue
            if code in SERVER_ASSIGNED:
                excluded["server-assigned (checked separately)"].append(name)
                continue
            if code == "_id":
                continue  # every resource has one: covered by the `_id` queries below
            if param.type not in (*SUPPORTED_TYPES, "composite"):
                excluded[f"type {param.type} not modelled by the oracle"].append(name)
                continue
            if param.type == "composite":
                try:
                    components = oracle.component_params(param)
                except Unsupported:
                    excluded["composite with a component the oracle does not model"].append(name)
                    continue
            extracts = oracle.extract(res_type, code)
            if all(e.error is not None for e in extracts.values()):
                excluded["expression fhirpathpy cannot evaluate"].append(name)
                continue
            if not any(e.entries for e in extracts.values()):
                excluded["no value in the data"].append(name)
                continue
            rng = random.Random(f"{seed}|{res_type}|{code}")
            if param.type == "composite":
                made = _composite_queries(rng, param, [c for c, _ in components], extracts)
                if not made:
                    excluded["no complete composite value in the data"].append(name)
                    continue
            else:
                made = _queries_for(rng, param, extracts)
            made.append((f"{param.type} :missing=false", [(f"{code}:missing", "false")]))
            if rng.random() < 0.15:
                made.append((f"{param.type} :missing=true", [(f"{code}:missing", "true")]))
            queries.extend(Query(res_type, tuple(pairs), family, name) for family, pairs in made)
    queries.extend(_id_queries(oracle, random.Random(seed)))
    queries.extend(_chain_queries(oracle, random.Random(seed + 1)))
    queries.extend(_list_queries(oracle))
    queries.extend(_or_queries(queries, random.Random(seed + 3)))
    queries.extend(_and_queries(queries, random.Random(seed + 2)))
    return queries, excluded


# How many of the optional query shapes each parameter gets, on top of its core ones.
OPTIONAL_BUDGET = {"token": 1, "string": 2, "reference": 1, "date": 0, "number": 9, "quantity": 9, "uri": 0}


def _queries_for(rng: random.Random, param: Param, extracts: dict[str, Extract]) -> list[tuple[str, list[tuple[str, str]]]]:
    """The core query shapes of a parameter plus a seeded sample of the optional ones."""
    code = param.code
    entries = [e for x in extracts.values() if x.error is None for e in x.entries]
    core: list[tuple[str, list[tuple[str, str]]]] = []
    optional: list[tuple[str, list[tuple[str, str]]]] = []
    if param.type == "token":
        coded = [e for e in entries if e.code]
        if coded:
            e = rng.choice(coded)
            core.append(("token code", [(code, escape(e.code))]))
            if e.kind in ("coding", "identifier"):
                if e.system:
                    optional.append(("token system|code", [(code, f"{escape(e.system)}|{escape(e.code)}")]))
                else:
                    optional.append(("token |code", [(code, f"|{escape(e.code)}")]))
            optional.append(("token :not", [(f"{code}:not", escape(rng.choice(coded).code))]))
            if len(coded) > 1:
                a, b = rng.sample(coded, 2)
                optional.append(("token a,b", [(code, f"{escape(a.code)},{escape(b.code)}")]))
        systems = [e for e in entries if e.kind in ("coding", "identifier") and e.system]
        if systems:
            optional.append(("token system|", [(code, escape(rng.choice(systems).system) + "|")]))
        texts = [e.text for e in entries if e.text]
        if texts:
            text = rng.choice(texts)
            prefix = text[: rng.randint(1, min(8, len(text)))]
            optional.append(("token :text", [(f"{code}:text", escape(rng.choice([prefix, prefix.upper(), normalize(prefix)])))]))
        typed = [e for e in entries if e.kind == "identifier" and e.of_type and e.code]
        if typed:
            e = rng.choice(typed)
            system, type_code = e.of_type[0]
            optional.append(("token :of-type", [(f"{code}:of-type", f"{escape(system or '')}|{escape(type_code)}|{escape(e.code)}")]))
    elif param.type == "string":
        for text in sorted({e for e in entries if len(e) > 520}):  # long values: matching uses all of them
            core.append(("string :contains long", [(f"{code}:contains", escape(text[-30:-12]))]))
            core.append(("string :exact long", [(f"{code}:exact", escape(text[:520] + " - a different ending"))]))
        for target in (core, optional):
            text = rng.choice(entries)
            prefix = text[: rng.randint(1, min(6, len(text)))]
            variant = rng.choice([prefix, prefix.upper(), prefix.lower(), normalize(prefix)])
            if variant.strip():
                target.append(("string starts-with", [(code, escape(variant))]))
        text = rng.choice(entries)
        optional.append(("string :exact", [(f"{code}:exact", escape(text))]))
        if text.upper() != text:
            optional.append(("string :exact other case", [(f"{code}:exact", escape(text.upper()))]))
        if len(text) > 3:
            start = rng.randrange(len(text) - 2)
            piece = text[start:start + rng.randint(2, 6)]
            if piece.strip():
                optional.append(("string :contains", [(f"{code}:contains", escape(rng.choice([piece, piece.upper()])))]))
    elif param.type == "date":
        prefixes = ["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb"]
        rng.shuffle(prefixes)
        precisions = ["year", "month", "day", "second"]
        rng.shuffle(precisions)
        for index, prefix in enumerate(prefixes[:4]):
            precision = precisions[index]
            text = _truncate_date(rng, rng.choice(entries), precision)
            core.append((f"date {prefix} {precision}", [(code, ("" if prefix == "eq" and rng.random() < 0.5 else prefix) + text)]))
    elif param.type in ("number", "quantity"):
        points = [e for e in entries if e.low != -INF] or entries
        for prefix in rng.sample(["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"], 4):
            e = rng.choice(points)
            base = e.low if e.low != -INF else e.high
            shift = rng.choice([Decimal(0), Decimal(0), Decimal("0.1"), Decimal(-1), Decimal(5)])
            number = base + shift * max(abs(base), Decimal(1)) * (1 if rng.random() < 0.5 else Decimal("0.1"))
            number = number.quantize(Decimal("0.01")) if number != base else base
            text = f"{prefix if prefix != 'eq' or rng.random() < 0.5 else ''}{_fmt(number)}"
            core.append((f"{param.type} {prefix}", [(code, text)]))
        if param.type == "quantity":
            coded = [e for e in points if e.code]
            if coded:
                e = rng.choice(coded)
                base = e.low if e.low != -INF else e.high
                if e.system:
                    optional.append(("quantity n|system|code", [(code, f"{_fmt(base)}|{escape(e.system)}|{escape(e.code)}")]))
                optional.append(("quantity n||code", [(code, f"ge{_fmt(base)}||{escape(e.unit or e.code)}")]))
            convertible = [e for e in points if e.system == UCUM and ucum_simple(e.code) and e.low != -INF]
            if convertible:
                e = rng.choice(convertible)
                dimension, factor = ucum_simple(e.code)  # type: ignore[misc]
                others = sorted(u for u, (d, _) in _UCUM_SIMPLE.items() if d == dimension and u != e.code)
                if others:
                    unit = rng.choice(others)
                    converted = (e.low * factor / _UCUM_SIMPLE[unit][1]).normalize()
                    prefix = rng.choice(["", "ge", "lt", "ne"])
                    optional.append((f"quantity UCUM {e.code}->{unit}", [(code, f"{prefix}{_fmt(converted)}|{UCUM}|{unit}")]))
    elif param.type == "reference":
        local = [e for e in entries if e.local]
        urls = [e for e in entries if not e.local]
        if local:
            e = rng.choice(local)
            core.append(("reference Type/id", [(code, f"{e.type}/{escape(e.id)}")]))
            e = rng.choice(local)
            optional.append(("reference id", [(code, escape(e.id))]))
            if not param.target or e.type in param.target:
                optional.append(("reference :Type", [(f"{code}:{e.type}", escape(e.id))]))
            optional.append(("reference absolute server URL", [(code, f"{BASE}/{e.type}/{escape(e.id)}")]))
        if urls:
            e = rng.choice(urls)
            (optional if local else core).append(("reference url", [(code, escape(e.url))]))
            tail = _URL_TAIL.search(e.url)
            if tail:  # a local Type/id is not the same resource as a URL on another server
                optional.append(("reference Type/id of an external URL", [(code, f"{tail['type']}/{escape(tail['id'])}")]))
        identifiers = [t for x in extracts.values() for t in x.identifiers if t.code]
        if identifiers:
            t = rng.choice(identifiers)
            value = f"{escape(t.system)}|{escape(t.code)}" if t.system else escape(t.code)
            optional.append(("reference :identifier", [(f"{code}:identifier", value)]))
    elif param.type == "uri":
        e = rng.choice(entries)
        core.append(("uri exact", [(code, escape(e))]))
        optional.append(("uri exact", [(code, escape(rng.choice(entries)))]))
    return core + rng.sample(optional, min(OPTIONAL_BUDGET[param.type], len(optional)))


def _part(rng: random.Random, component: Param, entries: list) -> str | None:
    """A search value for one component of a composite, drawn from `entries`."""
    if component.type == "token":
        coded = [e for e in entries if e.code]
        if not coded:
            return None
        e = rng.choice(coded)
        if e.system and e.kind in ("coding", "identifier") and rng.random() < 0.5:
            return f"{escape(e.system)}|{escape(e.code)}"
        return escape(e.code)
    e = rng.choice(entries)
    if component.type == "string":
        return escape(e[: rng.randint(1, min(5, len(e)))]) if e.strip() else None
    if component.type == "date":
        return rng.choice(["", "ge", "le", "gt", "lt"]) + _truncate_date(rng, e, rng.choice(["year", "month", "day", "second"]))
    if component.type in ("number", "quantity"):
        base = e.low if e.low != -INF else e.high
        if base == INF:
            return None
        text = rng.choice(["", "ge", "le", "gt", "lt"]) + _fmt(base)
        if component.type == "quantity" and e.system and e.code and rng.random() < 0.5:
            text += f"|{escape(e.system)}|{escape(e.code)}"
        return text
    if component.type == "reference":
        return f"{e.type}/{escape(e.id)}" if e.local else escape(e.url)
    return escape(e)  # uri


def _composite_queries(
    rng: random.Random, param: Param, components: list[Param], extracts: dict[str, Extract]
) -> list[tuple[str, list[tuple[str, str]]]]:
    """One query from the components of one element, one mixing components of different
    elements (which must not match unless some single element satisfies all parts)."""
    complete = [(rid, element) for rid, x in sorted(extracts.items()) if x.error is None
                for element in x.entries if all(element)]
    if not complete:
        return []
    out = []
    _, element = rng.choice(complete)
    parts = [_part(rng, c, entries) for c, entries in zip(components, element)]
    if all(parts):
        out.append(("composite same element", [(param.code, "$".join(parts))]))  # type: ignore[arg-type]
    if len(complete) > 1:
        first, second = rng.sample(complete, 2)
        parts = [_part(rng, c, (first if i == 0 else second)[1][i]) for i, c in enumerate(components)]
        if all(parts):
            out.append(("composite mixed elements", [(param.code, "$".join(parts))]))  # type: ignore[arg-type]
    return out


def _id_queries(oracle: Oracle, rng: random.Random) -> list[Query]:
    out = []
    for res_type in sorted(oracle.resources):
        ids = sorted(oracle.resources[res_type])
        chosen = rng.sample(ids, min(2, len(ids))) + ["no-such-id"]
        key = "_id:not" if rng.random() < 0.2 else "_id"
        out.append(Query(res_type, ((key, ",".join(escape(i) for i in chosen)),), key, f"{res_type}._id"))
    return out


def _chain_queries(oracle: Oracle, rng: random.Random) -> list[Query]:
    """Chained (`subject:Patient.name=x`, two levels) and reverse-chained (`_has`) queries, a
    chain inside `_has`, `_has` inside a chain and `_has` inside `_has`. Each is built by walking
    references that resolve inside the data, so the criterion at the end holds for a resource
    really reached that way (the query may still match nothing elsewhere: that is checked too)."""
    edges: dict[tuple[str, str], list[tuple[str, str, str]]] = defaultdict(list)  # (type, id) -> (param, type, id)
    back: dict[tuple[str, str], list[tuple[str, str, str]]] = defaultdict(list)  # (type, id) -> (type, param, id)
    for source in sorted(oracle.resources):
        for code, param in sorted(oracle.params[source].items()):
            if param.type != "reference" or not param.expression:
                continue
            for rid, extract in sorted(oracle.extract(source, code).items()):
                for ref in extract.entries:
                    resolves = ref.local and not ref.history and ref.id in oracle.resources.get(ref.type, {})
                    if resolves and (not param.target or ref.type in param.target):
                        edges[(source, rid)].append((code, ref.type, ref.id))
                        back[(ref.type, ref.id)].append((source, code, rid))
    starts = sorted(edges)

    def criterion(res_type: str, rid: str) -> tuple[str, str] | None:
        """A string or token criterion that resource `res_type/rid` satisfies."""
        options = []
        for code, param in sorted(oracle.params[res_type].items()):
            if param.type in ("string", "token") and param.expression and code not in SERVER_ASSIGNED:
                x = oracle.extract(res_type, code)[rid]
                if x.error is None and x.entries:
                    options.append((param.type, code, x.entries))
        if not options:
            return None
        kind, code, entries = rng.choice(options)
        if kind == "string":
            text = rng.choice(entries)
            return (code, escape(text[: rng.randint(1, min(5, len(text)))])) if text.strip() else None
        coded = [e for e in entries if e.code]
        return (code, escape(rng.choice(coded).code)) if coded else None

    out: list[Query] = []
    quotas = {"chain": 30, "chain 2 levels": 10, "_has": 30, "chain inside _has": 10, "_has inside chain": 8, "_has inside _has": 6}
    made: Counter[str] = Counter()

    def add(family: str, res_type: str, key: str, found: tuple[str, str] | None, param: str) -> None:
        if found is not None and made[family] < quotas[family]:
            made[family] += 1
            out.append(Query(res_type, ((f"{key}{found[0]}", found[1]),), family, param))

    for _ in range(4000):
        if all(made[f] >= n for f, n in quotas.items()):
            break
        s_type, s_id = rng.choice(starts)
        p, t_type, t_id = rng.choice(edges[(s_type, s_id)])
        typed = f":{t_type}" if rng.random() < 0.7 else ""
        family = rng.choice(sorted(quotas))
        if family == "chain":
            add(family, s_type, f"{p}{typed}.", criterion(t_type, t_id), f"{s_type}.{p}")
        elif family == "_has":
            add(family, t_type, f"_has:{s_type}:{p}:", criterion(s_type, s_id), f"{t_type}._has:{s_type}:{p}")
        elif family == "chain 2 levels" and edges.get((t_type, t_id)):
            p2, u_type, u_id = rng.choice(edges[(t_type, t_id)])
            add(family, s_type, f"{p}:{t_type}.{p2}:{u_type}.", criterion(u_type, u_id), f"{s_type}.{p}")
        elif family == "chain inside _has":
            others = [e for e in edges[(s_type, s_id)] if e[0] != p]
            if others:
                p2, u_type, u_id = rng.choice(others)
                add(family, t_type, f"_has:{s_type}:{p}:{p2}:{u_type}.", criterion(u_type, u_id), f"{t_type}._has:{s_type}:{p}")
        elif family == "_has inside chain" and back.get((t_type, t_id)):
            r_type, r_param, r_id = rng.choice(back[(t_type, t_id)])
            add(family, s_type, f"{p}:{t_type}._has:{r_type}:{r_param}:", criterion(r_type, r_id), f"{s_type}.{p}")
        elif family == "_has inside _has" and back.get((s_type, s_id)):
            r_type, r_param, r_id = rng.choice(back[(s_type, s_id)])
            add(family, t_type, f"_has:{s_type}:{p}:_has:{r_type}:{r_param}:", criterion(r_type, r_id), f"{t_type}._has:{s_type}:{p}")
    return out


def _list_queries(oracle: Oracle) -> list[Query]:
    """`_list=[id]` for every List, on each type its entries point at."""
    out = []
    for list_id, extract in sorted(oracle.extract("List", "item").items()):
        for res_type in sorted({ref.type for ref in extract.entries if ref.local and ref.type in oracle.resources}):
            out.append(Query(res_type, (("_list", escape(list_id)),), "_list", f"{res_type}._list"))
    return out


def _or_queries(queries: list[Query], rng: random.Random, count: int = 40) -> list[Query]:
    """Two values of the same parameter (and modifier), comma-separated: either may match."""
    by_key: dict[tuple[str, str], list[Query]] = defaultdict(list)
    for query in queries:
        if len(query.pairs) == 1 and query.param.split(".", 1)[-1] == query.pairs[0][0].split(":")[0]:
            key = query.pairs[0][0]
            if not key.endswith((":not", ":missing")) and not query.family.endswith("long"):
                by_key[(query.res_type, key)].append(query)
    keys = sorted(k for k, found in by_key.items() if len({q.pairs[0][1] for q in found}) > 1)
    out = []
    for res_type, key in rng.sample(keys, min(count, len(keys))):
        first, second = rng.sample(by_key[(res_type, key)], 2)
        if first.pairs[0][1] != second.pairs[0][1]:
            family = "OR of two values " + first.family.split(" ")[0]
            out.append(Query(res_type, ((key, f"{first.pairs[0][1]},{second.pairs[0][1]}"),), family, first.param))
    return out


def _and_queries(queries: list[Query], rng: random.Random, count: int = 40) -> list[Query]:
    """Two simple criteria on the same type, AND-ed."""
    by_type: dict[str, list[Query]] = defaultdict(list)
    for query in queries:
        if len(query.pairs) == 1 and "." not in query.pairs[0][0] and not query.pairs[0][0].startswith("_has"):
            by_type[query.res_type].append(query)
    types = sorted(t for t, found in by_type.items() if len({q.param for q in found}) > 1)
    out = []
    for _ in range(count):
        res_type = rng.choice(types)
        first, second = rng.sample(by_type[res_type], 2)
        if first.param != second.param:
            out.append(Query(res_type, first.pairs + second.pairs, "AND of two criteria", first.param))
    return out
