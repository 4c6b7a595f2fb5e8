"""The operations the suite drives, each a list of HTTP requests built from the loaded data."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from urllib.parse import quote

import msgspec

from benchmarks.datagen import DataSet, standalone_observation
from benchmarks.load import Request

BASE = "/fhir"
READ_IDS = 2_000
WRITE_BODIES = 500


@dataclass(frozen=True)
class Operation:
    """One benchmarked operation.

    `unit` is what its throughput counts: requests, or resources for ingest (Bundle entries) and
    `_summary=count` (the matches counted). `floor` names the floor its rate is divided by;
    `check` what the probe looks for in the first answer (a page, included resources, a total).
    """

    name: str
    requests: list[Request]
    unit: str = "requests"
    units_per_request: float = 1.0
    floor: str | None = None
    check: str | None = None


def build(data: DataSet, ids: dict[str, list[str]], seed: int) -> list[Operation]:
    """Reads and searches first, then writes, so searches see the loaded data set only."""
    rng = random.Random(f"{seed}:operations")
    patients, observations = ids.get("Patient", []), ids.get("Observation", [])
    frequent, medium, rare = _token_codes(data.meta["observation_codes"])
    read_ids = rng.sample(observations, min(READ_IDS, len(observations)))
    patient_sample = rng.sample(patients, min(READ_IDS, len(patients)))
    months = list(data.meta["observation_months"])
    families = list(data.meta["families"])
    ingest = data.ingest_bundles()

    def get(path: str) -> Request:
        return ("GET", f"{BASE}/{path}", None)

    def token(code: str) -> list[Request]:
        return [get(f"Observation?code={quote(code)}")]

    creates = [
        (
            "POST",
            f"{BASE}/Observation",
            msgspec.json.encode(standalone_observation(rng, rng.choice(patients))),
        )
        for _ in range(WRITE_BODIES)
    ]
    updates = [
        (
            "PUT",
            f"{BASE}/Observation/{res_id}",
            msgspec.json.encode(standalone_observation(rng, rng.choice(patients), res_id)),
        )
        for res_id in rng.sample(observations, min(WRITE_BODIES, len(observations)))
    ]
    mean_bundle = data.meta["ingest_resources"] / data.meta["ingest_bundles"]
    return [
        Operation("read", [get(f"Observation/{i}") for i in read_ids], floor="raw_read"),
        Operation(f"search token frequent ({_short(frequent)})", token(frequent), check="page"),
        Operation(f"search token medium ({_short(medium)})", token(medium), check="page"),
        Operation(f"search token rare ({_short(rare)})", token(rare), check="page"),
        Operation(
            "search sorted (frequent code, _sort=-date)",
            [get(f"Observation?code={quote(frequent)}&_sort=-date")],
            check="page",
        ),
        Operation(
            "search date (month)", [get(f"Observation?date={m}") for m in months], check="page"
        ),
        Operation(
            "search sorted date (a month, _sort=-date)",
            [get(f"Observation?date={m}&_sort=-date") for m in months],
            check="page",
        ),
        Operation(
            "search token and status (medium code, status=final)",
            [get(f"Observation?code={quote(medium)}&status=final")],
            check="page",
        ),
        Operation(
            "search token and date (frequent code, a month)",
            [get(f"Observation?code={quote(frequent)}&date={m}") for m in months],
            check="page",
        ),
        Operation(
            "search reference (subject)",
            [get(f"Observation?subject=Patient/{p}") for p in patient_sample],
            check="page",
        ),
        Operation(
            "search string (Patient name)",
            [get(f"Patient?name={quote(f)}") for f in families],
            check="page",
        ),
        Operation(
            "_include Observation:subject",
            [get(f"Observation?code={quote(medium)}&_include=Observation:subject")],
            check="include",
        ),
        Operation(
            "_revinclude Observation:subject",
            [get(f"Patient?_id={p}&_revinclude=Observation:subject") for p in patient_sample],
            check="include",
        ),
        Operation(
            f"_summary=count ({_short(frequent)})",
            [get(f"Observation?code={quote(frequent)}&_summary=count")],
            unit="resources",
            check="count",
        ),
        Operation("create (Observation)", creates),
        Operation("update (Observation)", updates),
        Operation(
            "ingest (transaction Bundles)",
            [("POST", BASE, bundle) for bundle in ingest],
            unit="resources",
            units_per_request=mean_bundle,
            floor="bulk_load",
        ),
    ]


def _token_codes(counts: dict[str, int]) -> tuple[str, str, str]:
    """The most frequent code, the rarest, and the one nearest their geometric mean."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    frequent, rare = ordered[0], ordered[-1]
    middle = math.sqrt(frequent[1] * rare[1])
    medium = min(ordered[1:-1] or ordered, key=lambda item: abs(math.log(item[1] / middle)))
    return frequent[0], medium[0], rare[0]


def _short(code: str) -> str:
    return code.rsplit("|", 1)[-1]
