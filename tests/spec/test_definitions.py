"""The R4 definitions come from the core package, compiled once and cached."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from ficus.spec import definitions, load_tables


def test_every_r4_resource_type_is_known() -> None:
    defs = definitions()
    # 145 RESTful resource types (as in the spec's base CapabilityStatement) plus Parameters
    assert len(defs.resource_types) == 146
    for name in ("Patient", "Observation", "Bundle", "Parameters", "Binary", "MedicinalProductUndesirableEffect"):
        assert defs.is_resource_type(name)
    assert not defs.is_resource_type("DomainResource")
    assert not defs.is_resource_type("HumanName")


def test_search_parameters_and_compartments_come_from_the_package() -> None:
    defs = definitions()
    assert len(defs.search_parameters) == 1400
    patient_params = defs.search_parameters_for("Patient")
    assert patient_params["identifier"].type == "token"
    assert patient_params["_id"].type == "token"
    assert set(defs.compartments) == {"Patient", "Encounter", "RelatedPerson", "Practitioner", "Device"}
    assert "subject" in defs.compartments["Patient"]["Observation"]


def test_required_bindings_are_expanded() -> None:
    defs = definitions()
    gender = defs.children("Patient", "Patient")["gender"]
    assert defs.value_set_codes[gender.required_value_set] == {"male", "female", "other", "unknown"}


def test_cached_start_is_fast(tmp_path: Path) -> None:
    script = "import time; t=time.perf_counter(); from ficus.spec import definitions; definitions(); print(time.perf_counter()-t)"
    env = {**os.environ, "FICUS_CACHE_DIR": str(tmp_path)}

    def seconds_to_load() -> float:
        run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
        return float(run.stdout)

    seconds_to_load()  # compiles and writes the cache
    assert any(tmp_path.iterdir())
    assert seconds_to_load() < 2.0


def test_tables_round_trip_through_cache() -> None:
    started = time.perf_counter()
    tables = load_tables()
    assert time.perf_counter() - started < 2.0
    assert tables["resource_types"] == sorted(definitions().resource_types)
