"""The R4 definitions come from the core package, compiled once and cached."""

from __future__ import annotations

import os
import subprocess
import sys
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


def test_a_later_start_reads_the_compiled_cache_instead_of_compiling(tmp_path: Path) -> None:
    script = "from ficus.spec import definitions; print(len(definitions().search_parameters))"
    env = {**os.environ, "FICUS_CACHE_DIR": str(tmp_path)}

    def start() -> str:
        return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True).stdout

    first = start()  # compiles and writes the cache
    written = {path: path.stat().st_mtime_ns for path in tmp_path.iterdir()}
    assert written
    assert start() == first
    assert {path: path.stat().st_mtime_ns for path in tmp_path.iterdir()} == written  # read, not rewritten


def test_tables_round_trip_through_cache() -> None:
    tables = load_tables()
    assert tables["resource_types"] == sorted(definitions().resource_types)
