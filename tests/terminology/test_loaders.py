"""Loaders: releases in the publishers' formats, loaded atomically and served by the operations."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from tests.terminology.conftest import FIXTURES

from ficus.store.database import Database
from ficus.terminology.loaders import icd10cm, loinc, rxnorm, snomed
from ficus.terminology.loaders.writer import BulkWriter, Release, Silent

ICD_XML = FIXTURES / "icd10cm-tabular-April-1-2026.xml.gz"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"


def parameters(body: dict) -> dict[str, list]:
    found: dict[str, list] = {}
    for parameter in body.get("parameter", []):
        value = next((v for k, v in parameter.items() if k.startswith("value")), parameter.get("part"))
        found.setdefault(parameter["name"], []).append(value)
    return found


def properties(body: dict) -> dict[str, list]:
    found: dict[str, list] = {}
    for parameter in body.get("parameter", []):
        if parameter["name"] == "property":
            parts = {p["name"]: next(v for k, v in p.items() if k.startswith("value")) for p in parameter["part"]}
            found.setdefault(parts["code"], []).append(parts["value"])
    return found


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_icd10cm_agrees_with_the_cms_code_list(database: Database, client: TestClient) -> None:
    release = icd10cm.load(database, ICD_XML, Silent())
    assert (release.url, release.version) == (ICD, "2026")
    with gzip.open(FIXTURES / "icd10cm-code-list-April-2026.txt.gz", "rt") as handle:
        listed = {line.strip() for line in handle if line.strip() and not line.strip().isdigit()}
    with database.session() as tx:
        loaded = {row[0].replace(".", "") for row in tx.execute("SELECT code FROM tx_concept").fetchall()}
    chapters = {code for code in loaded if "-" in code and code not in listed}
    assert loaded - chapters == listed

    # the hierarchy and billable codes as the code list alone implies them: a code's parent is its
    # longest listed proper prefix, and a code is billable when no listed code extends it
    codes_only = sorted(c for c in listed if "-" not in c)
    parent_in_list = {c: next((c[:n] for n in range(len(c) - 1, 2, -1) if c[:n] in listed), None) for c in codes_only}
    children_in_list: dict[str, set[str]] = {}
    for child, listed_parent in parent_in_list.items():
        if listed_parent:
            children_in_list.setdefault(listed_parent, set()).add(child)
    sample = random.Random(6).sample([c for c in codes_only if len(c) > 3], 40)
    sample += random.Random(7).sample([c for c in codes_only if len(c) == 3], 10)
    for flat in sample:
        code = f"{flat[:3]}.{flat[3:]}" if len(flat) > 3 else flat
        body = client.get(f"CodeSystem/$lookup?system={ICD}&code={code}").json()
        found = properties(body)
        if parent_in_list[flat] is not None:
            assert [p.replace(".", "") for p in found["parent"]] == [parent_in_list[flat]], code
        assert {c.replace(".", "") for c in found.get("child", [])} == children_in_list.get(flat, set()), code
        assert found["billable"] == [not children_in_list.get(flat)], code
        parent = found["parent"][0]
        subsumed = client.get(f"CodeSystem/$subsumes?system={ICD}&codeA={parent}&codeB={code}").json()
        assert parameters(subsumed)["outcome"] == ["subsumes"]

    body = client.get(f"CodeSystem/$lookup?system={ICD}&code=A00.0").json()
    assert parameters(body)["display"] == ["Cholera due to Vibrio cholerae 01, biovar cholerae"]
    assert properties(body)["parent"] == ["A00"] and properties(body)["billable"] == [True]
    assert properties(client.get(f"CodeSystem/$lookup?system={ICD}&code=A00").json())["billable"] == [False]
    seventh = client.get(f"CodeSystem/$lookup?system={ICD}&code=S00.01XA").json()
    assert parameters(seventh)["display"][0].endswith(", initial encounter")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_icd10cm_is_a_value_set_pages(database: Database, client: TestClient) -> None:
    icd10cm.load(database, ICD_XML, Silent())
    value_set = {"resourceType": "ValueSet", "status": "active", "compose": {"include": [
        {"system": ICD, "filter": [{"property": "concept", "op": "is-a", "value": "A00-B99"}]}]}}
    first = client.post("ValueSet/$expand", json={"resourceType": "Parameters", "parameter": [
        {"name": "valueSet", "resource": value_set}, {"name": "count", "valueInteger": 10}, {"name": "offset", "valueInteger": 0}]}).json()
    second = client.post("ValueSet/$expand", json={"resourceType": "Parameters", "parameter": [
        {"name": "valueSet", "resource": value_set}, {"name": "count", "valueInteger": 10}, {"name": "offset", "valueInteger": 10}]}).json()
    total = first["expansion"]["total"]
    assert total > 1000 and second["expansion"]["total"] == total
    codes = [c["code"] for c in first["expansion"]["contains"] + second["expansion"]["contains"]]
    assert len(set(codes)) == 20 and all(c[0] in "AB" for c in codes)
    everything = client.post("ValueSet/$expand", json={"resourceType": "Parameters", "parameter": [
        {"name": "valueSet", "resource": value_set}, {"name": "count", "valueInteger": 5000}]}).json()
    every_code = [c["code"] for c in everything["expansion"]["contains"]]
    assert every_code == sorted(every_code) and len(every_code) == total and every_code[:20] == codes
    assert "A00-B99" in every_code and "B20" in every_code
    check = client.get(f"ValueSet/$validate-code?url=http://example.org&system={ICD}&code=B20").json()
    assert check["resourceType"] == "OperationOutcome"  # no such value set


SMALL_ICD = b"""<?xml version="1.0" encoding="utf-8"?>
<ICD10CM.tabular><version>%s</version>
<chapter><name>1</name><desc>Certain infectious and parasitic diseases (A00-B99)</desc>
<section id="A00-A09"><desc>Intestinal infectious diseases (A00-A09)</desc>
<diag><name>A00</name><desc>Cholera</desc>
<diag><name>A00.0</name><desc>%s</desc></diag>
<diag><name>A00.9</name><desc>Cholera, unspecified</desc></diag></diag>
</section></chapter></ICD10CM.tabular>"""


def test_a_reload_replaces_the_version_atomically(database: Database, client: TestClient, tmp_path: Path) -> None:
    path = tmp_path / "icd.xml"
    path.write_bytes(SMALL_ICD % (b"2026", b"Cholera classic"))
    icd10cm.load(database, path, Silent())
    path.write_bytes(SMALL_ICD % (b"2026", b"Cholera due to Vibrio cholerae"))
    icd10cm.load(database, path, Silent())
    with pytest.raises(RuntimeError), BulkWriter(database, Release(ICD, "2026", "ICD10CM", "broken")) as writer:
        writer.concept("A00", "half a load")
        raise RuntimeError("the release file is truncated")
    with database.session() as tx:
        states = sorted(row[0] for row in tx.execute("SELECT state FROM tx_code_system").fetchall())
        rows = tx.execute("SELECT COUNT(*) FROM tx_concept").fetchone()[0]
    assert states == ["active", "failed", "superseded"] and rows == 5
    body = client.get(f"CodeSystem/$lookup?system={ICD}&code=A00.0").json()
    assert parameters(body)["display"] == ["Cholera due to Vibrio cholerae"]
    closure = client.get(f"CodeSystem/$subsumes?system={ICD}&codeA=A00-B99&codeB=A00.9").json()
    assert parameters(closure)["outcome"] == ["subsumes"]
    value_set = {"resourceType": "ValueSet", "status": "active", "compose": {"include": [
        {"system": ICD, "filter": [{"property": "concept", "op": "is-a", "value": "A00-A09"}]}]}}
    pages = []
    for offset in range(5):
        body = client.post("ValueSet/$expand", json={"resourceType": "Parameters", "parameter": [
            {"name": "valueSet", "resource": value_set}, {"name": "count", "valueInteger": 1}, {"name": "offset", "valueInteger": offset}]}).json()
        assert body["expansion"]["total"] == 4
        pages += [c["code"] for c in body["expansion"].get("contains", [])]
    assert pages == ["A00", "A00-A09", "A00.0", "A00.9"]


def test_loinc_lookup_returns_properties_parts_and_designations(database: Database, client: TestClient, loinc_release: Path) -> None:
    release = loinc.load(database, loinc_release, Silent())
    assert release.url == "http://loinc.org"
    body = client.get("CodeSystem/$lookup?system=http://loinc.org&code=14394-1&property=*").json()
    found = parameters(body)
    assert "Urea nitrogen" in found["display"][0]
    props = properties(body)
    component = props["COMPONENT"][0]
    assert component["system"] == "http://loinc.org" and component["code"].startswith("LP")
    assert props["SCALE_TYP"][0]["display"] == "Qn" and props["CLASS"] == ["CHEM"]
    languages = {p["part"][0].get("valueCode") for p in body["parameter"] if p["name"] == "designation"}
    assert {"de-DE", "fr-FR"} <= languages
    part = client.get(f"CodeSystem/$lookup?system=http://loinc.org&code={component['code']}").json()
    assert parameters(part)["display"]
    deprecated = client.post("CodeSystem/$validate-code", json={"resourceType": "Parameters", "parameter": [
        {"name": "url", "valueUri": "http://loinc.org"}, {"name": "code", "valueCode": _deprecated_loinc(loinc_release)}]}).json()
    assert parameters(deprecated)["result"] == [True] and parameters(deprecated)["inactive"] == [True]


def _deprecated_loinc(release: Path) -> str:
    import csv

    with (release / "LoincTable" / "Loinc.csv").open(encoding="utf-8-sig") as handle:
        return next(row["LOINC_NUM"] for row in csv.DictReader(handle) if row["STATUS"] == "DEPRECATED")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_snomed_rf2_and_rxnorm_rrf(database: Database, client: TestClient) -> None:
    sct = snomed.load(database, FIXTURES / "snomed-rf2" / "Snapshot", Silent())
    rx = rxnorm.load(database, FIXTURES / "rxnorm-rrf" / "rrf", Silent(), "01012025")
    assert sct.version == "20250101" and rx.version == "01012025"
    outcome = client.get("CodeSystem/$subsumes?system=http://snomed.info/sct&codeA=1000001&codeB=1000003").json()
    assert parameters(outcome)["outcome"] == ["subsumes"]
    body = client.get("CodeSystem/$lookup?system=http://snomed.info/sct&code=1000002").json()
    assert parameters(body)["display"] == ["Example disorder"]
    value_set = {"resourceType": "ValueSet", "status": "active", "compose": {"include": [
        {"system": "http://snomed.info/sct", "filter": [{"property": "concept", "op": "descendent-of", "value": "1000002"}]}]}}
    expanded = client.post("ValueSet/$expand", json={"resourceType": "Parameters", "parameter": [{"name": "valueSet", "resource": value_set}]}).json()
    assert sorted(c["code"] for c in expanded["expansion"]["contains"]) == ["1000003", "1000004"]
    inactive = client.get("CodeSystem/$lookup?system=http://snomed.info/sct&code=1000005&property=inactive").json()
    assert properties(inactive)["inactive"] == [True]
    drug = client.get("CodeSystem/$lookup?system=http://www.nlm.nih.gov/research/umls/rxnorm&code=9000002").json()
    assert parameters(drug)["display"] == ["ficusamine 10 MG Oral Tablet"]
    assert properties(drug)["has_ingredient"] == ["9000001"] and properties(drug)["NDC"] == ["00000000001"]
    brand = client.get("CodeSystem/$subsumes?system=http://www.nlm.nih.gov/research/umls/rxnorm&codeA=9000002&codeB=9000003").json()
    assert parameters(brand)["outcome"] == ["subsumes"]


def test_cli_loads_into_the_configured_database(database: Database, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from ficus.terminology.cli import terminology_app

    path = tmp_path / "icd.xml"
    path.write_bytes(SMALL_ICD % (b"2026", b"Cholera classic"))
    monkeypatch.setenv("FICUS_DATABASE_URL", database_url)
    loaded = CliRunner().invoke(terminology_app, ["load", "icd10cm", str(path)])
    assert loaded.exit_code == 0, loaded.output
    assert "Loaded International Classification of Diseases" in loaded.output
    listed = CliRunner().invoke(terminology_app, ["list"])
    assert f"{ICD}\t2026\tactive\t5 concepts" in listed.output
