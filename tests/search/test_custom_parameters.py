"""SearchParameter resources stored in the server become searchable after `ficus reindex`."""

from __future__ import annotations

from starlette.testclient import TestClient
from typer.testing import CliRunner

from ficus.app import create_app
from ficus.cli import app as cli
from ficus.config import Settings

from . import JSON, STRICT, found, load

MAIDEN_NAME = "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName"


def search_parameter(id_: str, code: str, kind: str, expression: str, base: str = "Patient", status: str = "active") -> dict:
    return {"resourceType": "SearchParameter", "id": id_, "url": f"http://example.org/SearchParameter/{id_}",
            "name": code, "status": status, "description": code, "code": code, "base": [base], "type": kind,
            "expression": expression}


def patient(id_: str, maiden: str | None = None, marital: str | None = None) -> dict:
    resource: dict = {"resourceType": "Patient", "id": id_}
    if maiden:
        resource["extension"] = [{"url": MAIDEN_NAME, "valueString": maiden}]
    if marital:
        resource["maritalStatus"] = {"coding": [{"code": marital}]}
    return resource


def test_stored_search_parameters_are_searchable_after_reindex(client: TestClient, settings: Settings) -> None:
    load(
        client,
        search_parameter("maiden", "mothers-maiden-name", "string", f"Patient.extension('{MAIDEN_NAME}').value"),
        search_parameter("marital", "marital", "token", "Patient.maritalStatus"),
        search_parameter("draft", "draft-param", "token", "Patient.gender", status="draft"),
        patient("p1", maiden="Öberg", marital="M"),
        patient("p2", maiden="Smith", marital="S"),
        patient("p3"),
    )
    before = client.get("Patient", params={"mothers-maiden-name": "oberg"}, headers=STRICT)
    assert before.status_code == 400

    result = CliRunner().invoke(cli, ["reindex"], env={"FICUS_DATABASE_URL": settings.database_url})
    assert result.exit_code == 0, result.output
    assert "Reindexed 6 resources (2 stored SearchParameters)" in result.output

    with TestClient(create_app(settings), base_url="http://testserver/fhir/") as restarted:
        assert found(restarted, "Patient", ("mothers-maiden-name", "oberg")) == {"p1"}
        assert found(restarted, "Patient", ("mothers-maiden-name:exact", "Smith")) == {"p2"}
        assert found(restarted, "Patient", ("marital", "M,S")) == {"p1", "p2"}
        assert found(restarted, "Patient", ("marital:missing", "true")) == {"p3"}
        assert restarted.get("Patient", params={"draft-param": "x"}, headers=STRICT).status_code == 400
        # written after the restart: indexed at once
        load(restarted, patient("p4", maiden="Smythe"))
        assert found(restarted, "Patient", ("mothers-maiden-name", "sm")) == {"p2", "p4"}
        # chains reach stored parameters too
        load(restarted, {"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "x"},
                         "subject": {"reference": "Patient/p1"}})
        assert found(restarted, "Observation", ("subject:Patient.marital", "M")) == {"o1"}
        statement = restarted.get("metadata").json()
        patient_params = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Patient")["searchParam"]
        assert "mothers-maiden-name" in {p["name"] for p in patient_params}


def test_reindex_of_one_type(client: TestClient, settings: Settings) -> None:
    load(client, patient("p1"), {"resourceType": "Organization", "id": "o1", "name": "Acme"})
    result = CliRunner().invoke(cli, ["reindex", "--type", "Organization"], env={"FICUS_DATABASE_URL": settings.database_url})
    assert result.exit_code == 0, result.output
    assert "Reindexed 1 resources" in result.output
    assert found(client, "Organization", ("name", "acme")) == {"o1"}
    bad = CliRunner().invoke(cli, ["reindex", "--type", "Nonsense"], env={"FICUS_DATABASE_URL": settings.database_url})
    assert bad.exit_code != 0
    assert client.post("Patient", json={"resourceType": "Patient"}, headers=JSON).status_code == 201


def test_reindex_operation_over_http_makes_stored_parameters_searchable(client: TestClient) -> None:
    load(
        client,
        search_parameter("marital-op", "marital", "token", "Patient.maritalStatus"),
        patient("m1", marital="M"),
        patient("m2", marital="S"),
    )
    assert client.get("Patient", params={"marital": "M"}, headers=STRICT).status_code == 400
    assert client.get("$reindex").status_code == 405  # it changes state: POST only
    response = client.post("Patient/$reindex", json={"resourceType": "Parameters"}, headers=JSON)
    assert response.status_code == 200, response.text
    assert response.json()["parameter"][0] == {"name": "count", "valueInteger": 2}
    assert found(client, "Patient", ("marital", "M")) == {"m1"}
    statement = client.get("metadata").json()
    assert "reindex" in {o["name"] for o in statement["rest"][0]["operation"]}
    patient_params = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Patient")["searchParam"]
    assert "marital" in {p["name"] for p in patient_params}
    assert "_text" not in {p["name"] for p in patient_params}


def test_reindex_marks_a_parameter_with_several_rows_a_resource_so_sorting_on_it_stays_right(
    client: TestClient, monkeypatch,
) -> None:
    """A stored date parameter that `$reindex` indexes first: one Observation has a date in June
    and one in December, and sorted by its last date it comes before every other June match
    (a walk of the index from the end of June would not meet it there)."""
    from ficus.search import snapshot

    from .test_results_snapshot import all_pages, ids

    monkeypatch.setattr(snapshot, "FIRST_CHUNK", 2)

    def observation(id_: str, effective: dict) -> dict:
        return {"resourceType": "Observation", "id": id_, "status": "final", "code": {"text": "x"}, **effective}

    june = [observation(f"j{day}", {"effectiveDateTime": f"2021-06-{day:02d}"}) for day in range(1, 7)]
    later = [observation(f"s{day}", {"effectiveDateTime": f"2021-09-{day:02d}"}) for day in range(1, 29)]
    twice = observation("t", {"effectiveTiming": {"event": ["2021-06-03", "2021-12-20"]}})
    load(client, search_parameter("when-op", "when", "date", "Observation.effective", base="Observation"), *june, twice, *later)
    response = client.post("Observation/$reindex", json={"resourceType": "Parameters"}, headers=JSON)
    assert response.status_code == 200, response.text
    first = client.get("Observation", params={"when": "2021-06", "_sort": "-when", "_count": "3"}, headers=STRICT)
    assert first.status_code == 200, first.text
    served = [i for page in all_pages(client, first.json()) for i in ids(page)]
    assert served == ["t", "j6", "j5", "j4", "j3", "j2", "j1"]
