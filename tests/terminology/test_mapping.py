"""The mapping assistant over HTTP and the CLI: `ConceptMap/$suggest-mappings`, the review file,
`ficus terminology map suggest|accept`, and the stored ConceptMap answering `$translate`."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from tests.terminology.test_loaders import parameters
from typer.testing import CliRunner

from ficus.api.exchange import FhirRequest
from ficus.api.interactions import Interactions
from ficus.auth.policy import SmartPolicy
from ficus.config import Settings
from ficus.outcome import FhirError
from ficus.policy import Caller
from ficus.spec import definitions
from ficus.store.database import Database
from ficus.store.repository import Repository
from ficus.terminology.cli import terminology_app
from ficus.terminology.loaders import loinc
from ficus.terminology.loaders.writer import Silent
from ficus.terminology.mapping import normalise

LOCAL = "http://lab.example.org/codes"
LOINC = "http://loinc.org"
runner = CliRunner()


@pytest.fixture
def loaded(database: Database, loinc_release: Path) -> Database:
    loinc.load(database, loinc_release, Silent())
    return database


def concept(code: str, display: str, unit: str | None = None) -> dict:
    parts = [{"name": "code", "valueString": code}, {"name": "display", "valueString": display}]
    if unit:
        parts.append({"name": "unit", "valueString": unit})
    return {"name": "concept", "part": parts}


def suggest(client: TestClient, *concepts: dict, **extra: object) -> dict:
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "targetSystem", "valueUri": "loinc"}, {"name": "sourceSystem", "valueUri": LOCAL}, *concepts,
        *({"name": k, ("valueDecimal" if isinstance(v, float) else "valueString"): v} for k, v in extra.items()),
    ]}
    response = client.post("ConceptMap/$suggest-mappings", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def candidates(suggestion: dict) -> list[dict[str, object]]:
    """Each candidate of a suggestion as {rank, code, score, components}."""
    found = []
    for part in suggestion["part"]:
        if part["name"] != "candidate":
            continue
        values = {p["name"]: p for p in part["part"]}
        components = {c["part"][0]["valueCode"]: c["part"][1]["valueDecimal"] for c in part["part"] if c["name"] == "component"}
        found.append({"rank": values["rank"]["valueInteger"], "code": values["concept"]["valueCoding"]["code"],
                      "score": values["score"]["valueDecimal"], "components": components})
    return found


def test_suggestions_rank_the_right_loinc_term_first_and_show_the_parts_of_the_score(loaded: Database, client: TestClient) -> None:
    body = suggest(client, concept("K", "K SERUM", "mmol/L"), concept("KU24", "Potassium, 24 hr urine", "mmol/24h"),
                   concept("UCX", "URINE CULTURE"), count=3)
    by_code = {s["part"][0]["valueCoding"]["code"]: s for s in body["parameter"] if s["name"] == "suggestion"}
    serum, urine24, culture = (candidates(by_code[c]) for c in ("K", "KU24", "UCX"))
    assert [c["code"] for c in serum][0] == "2823-3" and len(serum) == 3
    assert urine24[0]["code"] == "2829-0"  # Moles/time: the unit says a rate, not 21476-7's concentration
    assert culture[0]["code"] == "630-4"
    best = serum[0]["components"]
    assert {"display", "specimen", "unit", "scale"} <= set(best)
    assert best["specimen"] == 1 and best["unit"] == 1
    assert urine24[1]["components"]["unit"] == 0  # the runner-up lost on its unit, visibly
    assert [c["rank"] for c in serum] == [1, 2, 3] and serum[0]["score"] >= serum[1]["score"] >= serum[2]["score"]
    draft = next(p["resource"] for p in body["parameter"] if p["name"] == "conceptMap")
    assert draft["status"] == "draft" and draft["group"][0]["source"] == LOCAL and draft["group"][0]["target"] == LOINC
    assert {e["code"]: e["target"][0]["code"] for e in draft["group"][0]["element"]} == {"K": "2823-3", "KU24": "2829-0", "UCX": "630-4"}


def test_suggest_mappings_by_get_and_its_errors(loaded: Database, client: TestClient) -> None:
    missing = client.post("ConceptMap/$suggest-mappings", json={"resourceType": "Parameters", "parameter": [concept("K", "K")]})
    assert missing.status_code == 400 and "targetSystem" in missing.json()["issue"][0]["expression"][0]
    unknown = client.get("ConceptMap/$suggest-mappings?targetSystem=http://example.org/nothing&source=resources")
    assert unknown.status_code == 404 and "not available" in unknown.json()["issue"][0]["diagnostics"]
    bad = client.post("ConceptMap/$suggest-mappings", json={"resourceType": "Parameters", "parameter": [
        {"name": "targetSystem", "valueUri": LOINC}, {"name": "sourceSystem", "valueUri": LOCAL},
        {"name": "concept", "part": [{"name": "code", "valueString": "K"}]}]})
    assert bad.status_code == 400 and bad.json()["issue"][0]["expression"] == ["Parameters.parameter[concept[0]]"]
    source = client.get("ConceptMap/$suggest-mappings?targetSystem=loinc&source=everything")
    assert source.status_code == 400 and "source" in source.json()["issue"][0]["expression"][0]
    empty = client.get("ConceptMap/$suggest-mappings?targetSystem=loinc&source=resources")
    assert empty.status_code == 400 and "Nothing to map" in empty.json()["issue"][0]["diagnostics"]
    count = client.get("ConceptMap/$suggest-mappings?targetSystem=loinc&source=resources&count=many")
    assert count.status_code == 400
    listed = client.get("metadata").json()["rest"][0]["operation"]
    assert any(o["name"] == "suggest-mappings" for o in listed)


def test_local_codes_found_in_stored_resources_are_offered_with_their_units(loaded: Database, client: TestClient) -> None:
    local = {"resourceType": "Observation", "status": "final",
             "code": {"coding": [{"system": LOCAL, "code": "GLUM", "display": "GLUCOSE VENOUS METER"}]},
             "valueQuantity": {"value": 98, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"}}
    standard = {"resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": LOINC, "code": "2823-3", "display": "Potassium"}]}}
    rare = {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": LOCAL, "code": "UCX", "display": "Urine culture"}]}}
    for resource in (local, local, standard, rare):
        assert client.post("Observation", json=resource).status_code == 201
    body = client.get("ConceptMap/$suggest-mappings?targetSystem=loinc&source=resources&limit=1").json()
    suggestions = [p for p in body["parameter"] if p["name"] == "suggestion"]
    assert body["parameter"][0] == {"name": "total", "valueInteger": 2} and len(suggestions) == 1  # most seen first
    parts = {p["name"]: p for p in suggestions[0]["part"]}
    assert parts["source"]["valueCoding"] == {"system": LOCAL, "code": "GLUM", "display": "GLUCOSE VENOUS METER"}
    assert parts["unit"]["valueString"] == "mg/dL" and parts["seen"]["valueInteger"] == 2
    assert candidates(suggestions[0])[0]["code"] == "104597-0"
    second = client.get("ConceptMap/$suggest-mappings?targetSystem=loinc&source=resources&limit=1&offset=1").json()
    assert [p["part"][0]["valueCoding"]["code"] for p in second["parameter"] if p["name"] == "suggestion"] == ["UCX"]
    too_many = client.get("ConceptMap/$suggest-mappings?targetSystem=loinc&source=resources&limit=5000")
    assert too_many.status_code == 400 and too_many.json()["issue"][0]["expression"] == ["Parameters.parameter[limit]"]


def test_codes_across_the_server_need_an_unrestricted_search_grant(loaded: Database, client: TestClient, database_url: str) -> None:
    observation = {"resourceType": "Observation", "status": "final", "code": {"coding": [{"system": LOCAL, "code": "GLUM", "display": "G"}]}}
    assert client.post("Observation", json=observation).status_code == 201
    interactions = Interactions(Settings(database_url=database_url), Repository(loaded, definitions()), SmartPolicy())
    patient_app = Caller(subject="app", scopes=frozenset({"patient/*.rs"}), patient="p1", client_id="app")
    backend = Caller(subject="svc", scopes=frozenset({"system/*.rs"}), client_id="svc")
    path = "ConceptMap/$suggest-mappings?targetSystem=loinc&source=resources"
    with pytest.raises(FhirError) as refused:
        interactions.handle(FhirRequest.from_url("GET", path, caller=patient_app))
    assert refused.value.status == 403 and "system/*.s" in str(refused.value)
    listed = interactions.handle(FhirRequest.from_url("GET", path, caller=backend))
    assert listed.status == 200 and [p["name"] for p in listed.body["parameter"]][:2] == ["total", "suggestion"]
    own_codes = interactions.handle(FhirRequest.from_url("POST", "ConceptMap/$suggest-mappings", caller=patient_app, body={
        "resourceType": "Parameters", "parameter": [{"name": "targetSystem", "valueUri": "loinc"},
                                                    {"name": "sourceSystem", "valueUri": LOCAL}, concept("K", "K SERUM")]}))
    assert own_codes.status == 200  # mapping codes the caller sends reads nobody's data


def _mark(review: str, choose: dict[str, int]) -> str:
    """The review CSV with the candidate of rank `choose[code]` marked for each code."""
    rows = list(csv.DictReader(io.StringIO(review)))
    for row in rows:
        row["accept"] = "x" if choose.get(row["code"]) == int(row["rank"] or 0) else ""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def test_cli_suggest_review_accept_then_translate(loaded: Database, client: TestClient, database_url: str,
                                                  tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FICUS_DATABASE_URL", database_url)
    monkeypatch.setenv("FICUS_BASE_URL", "http://testserver/fhir")
    codes = tmp_path / "codes.csv"
    codes.write_text("code,display,unit\nK,POTASSIUM SERUM,mmol/L\nBCX,Blood Culture,\nKWB,K+ Whole Blood,mmol/L\n")
    review = tmp_path / "review.csv"
    result = runner.invoke(terminology_app, ["map", "suggest", str(codes), "--target", "loinc", "--source-system", LOCAL,
                                             "--preselect", "0.99", "-o", str(review)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(review.read_text())))
    assert {r["code"] for r in rows} == {"K", "BCX", "KWB"} and all(r["parts"].startswith("display ") for r in rows)
    best = {r["code"]: r for r in rows if r["rank"] == "1"}
    runner_up = {r["code"]: r for r in rows if r["rank"] == "2"}
    assert all(float(best[c]["margin"]) == pytest.approx(float(best[c]["score"]) - float(runner_up[c]["score"]), abs=0.0015)
               for c in best)
    marked = [(r["code"], r["rank"]) for r in rows if r["accept"] == "x"]
    assert marked == [(r["code"], "1") for r in rows if r["rank"] == "1" and float(r["score"]) >= 0.99]

    review.write_text(_mark(review.read_text(), {"K": 1, "BCX": 1}))
    result = runner.invoke(terminology_app, ["map", "accept", str(review), "--id", "lab-loinc"])
    assert result.exit_code == 0, result.output
    assert "Stored ConceptMap/lab-loinc" in result.output and "2 accepted" in result.output
    stored = client.get("ConceptMap/lab-loinc").json()
    assert stored["url"] == "http://testserver/fhir/ConceptMap/lab-loinc" and stored["status"] == "active"
    element = next(e for e in stored["group"][0]["element"] if e["code"] == "K")
    assert element["target"][0]["code"] == "2823-3" and element["target"][0]["comment"].startswith("Accepted suggestion (score")

    translated = client.get(f"ConceptMap/$translate?system={LOCAL}&code=K&targetsystem={LOINC}").json()
    match = parameters(translated)["match"][0]
    assert parameters(translated)["result"] == [True]
    assert {"name": "concept", "valueCoding": {"system": LOINC, "code": "2823-3",
                                               "display": "Potassium [Moles/volume] in Serum or Plasma"}} in match

    # A second review (another code, and K corrected by hand) merges into the same map.
    runner_up_code = runner_up["K"]["target_code"]
    review.write_text(_mark(review.read_text(), {"KWB": 1, "K": 2}))
    result = runner.invoke(terminology_app, ["map", "accept", str(review), "--url", "http://testserver/fhir/ConceptMap/lab-loinc"])
    assert result.exit_code == 0, result.output
    merged = client.get("ConceptMap/lab-loinc").json()
    mapped = {e["code"]: e["target"][0]["code"] for e in merged["group"][0]["element"]}
    assert mapped == {"BCX": "600-7", "KWB": "6298-4", "K": runner_up_code}
    assert merged["meta"]["versionId"] == "2"


def test_accept_refuses_codes_the_target_does_not_have_and_names_the_row(loaded: Database, database_url: str,
                                                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FICUS_DATABASE_URL", database_url)
    review = tmp_path / "review.csv"
    review.write_text("accept,source_system,code,display,target_system,target_code,equivalence\n"
                      f"x,{LOCAL},K,Potassium,{LOINC},9999-9,equivalent\n")
    result = runner.invoke(terminology_app, ["map", "accept", str(review)])
    assert result.exit_code == 1 and "9999-9 is not an active code of http://loinc.org" in result.output
    review.write_text("accept,source_system,code,display,target_system,target_code,equivalence\n"
                      f"x,{LOCAL},K,Potassium,{LOINC},2823-3,same\n")
    result = runner.invoke(terminology_app, ["map", "accept", str(review)])
    assert result.exit_code == 1 and "Row 2" in result.output and "not a ConceptMap equivalence" in result.output
    review.write_text("accept,source_system,code\n")
    result = runner.invoke(terminology_app, ["map", "accept", str(review)])
    assert result.exit_code == 1 and "target_system, target_code" in result.output


def test_cli_evaluate_reports_precision_on_a_labelled_file(loaded: Database, database_url: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FICUS_DATABASE_URL", database_url)
    labelled = tmp_path / "labelled.csv"
    labelled.write_text("code,display,unit,expected\nK,K SERUM,mmol/L,2823-3\nU,URINE CULTURE,,630-4\nX,Potassium,,2828-2\n")
    result = runner.invoke(terminology_app, ["map", "evaluate", str(labelled), "--target", "loinc"])
    assert result.exit_code == 0, result.output
    assert "precision@1 0.667" in result.output and "n=3" in result.output and "miss: X 'Potassium'" in result.output


@pytest.mark.parametrize(("unit", "prop"), [
    ("mmol/L", "SCnc"), ("mEq/L", "SCnc"), ("mg/dL", "MCnc"), ("g/dl", "MCnc"), ("mmol/24h", "SRat"), ("g/24h", "MRat"),
    ("K/uL", "NCnc"), ("10*9/L", "NCnc"), ("U/L", "CCnc"), ("mL/min", "VRat"), ("ug/g", "MCnt"), ("mmol/kg", "SCnt"),
    ("%", "Fr"), ("sec", "Time"), ("/HPF", "Naric"), ("furlongs", None),
])
def test_units_read_as_the_loinc_property_they_measure(unit: str, prop: str | None) -> None:
    assert normalise.unit_property(unit) == prop


def test_feed_abbreviations_and_loinc_names_meet_on_the_same_tokens() -> None:
    assert normalise.tokens("K SER") == normalise.tokens("Potassium [Moles/volume] in Serum or Plasma", drop_brackets=True)
    assert normalise.tokens("BLD CX ANAEROBIC") == ("bld", "culture", "anaerobe")
    assert normalise.tokens("Urine, 24 hr") == ("urine", "24h")
    assert normalise.specimens(normalise.tokens("K arterial blood")) == {"bld", "art"}
