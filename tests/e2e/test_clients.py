"""Third-party FHIR client libraries against a running `ficus serve`, on SQLite and PostgreSQL.

`fhirclient` (SMART on FHIR) and `fhirpy` (beda.software) are used exactly as their users would:
nothing is patched, the effects are checked by reading back through the library and over
plain HTTP with httpx.
"""

from __future__ import annotations

import uuid

import httpx
import pytest
import requests
from fhirclient import client as smart_client
from fhirclient.models.capabilitystatement import CapabilityStatement
from fhirclient.models.fhirreference import FHIRReference
from fhirclient.models.observation import Observation
from fhirclient.models.patient import Patient
from fhirclient.server import FHIRNotFoundException
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import MultipleResourcesFound, ResourceNotFound

pytestmark = pytest.mark.e2e

MRN = "http://example.org/mrn"


def _http(server) -> httpx.Client:
    return httpx.Client(base_url=server.base_url + "/", timeout=10, headers={"Accept": "application/fhir+json"})


def _observation_json(subject: str, bpm: int) -> dict:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
        "subject": {"reference": subject},
        "valueQuantity": {"value": bpm, "unit": "beats/minute", "system": "http://unitsofmeasure.org", "code": "/min"},
    }


# -- fhirclient (SMART on FHIR) ----------------------------------------------------------------


def test_fhirclient_crud_search_and_paging(server) -> None:
    mrn = f"fc-{uuid.uuid4().hex[:12]}"
    smart = smart_client.FHIRClient(settings={"app_id": "ficus-e2e", "api_base": server.base_url + "/"})
    fhir = smart.server

    # The library fetches and parses /metadata with its strict models before anything else.
    assert smart.prepare() is True
    capability = fhir.capabilityStatement
    assert isinstance(capability, CapabilityStatement)
    assert capability.fhirVersion == "4.0.1"
    assert "Patient" in {resource.type for resource in capability.rest[0].resource}

    # create: POST Patient; the library does not set the id, it returns the response JSON.
    patient = Patient({
        "identifier": [{"system": MRN, "value": mrn}],
        "name": [{"family": "Chalmers", "given": ["Peter", "James"]}],
        "gender": "male",
        "birthDate": "1974-12-25",
    })
    created = patient.create(fhir)
    assert created["resourceType"] == "Patient"
    patient_id = created["id"]
    assert created["meta"]["versionId"] == "1"

    # read
    read = Patient.read(patient_id, fhir)
    assert read.id == patient_id
    assert read.meta.versionId == "1"
    assert read.name[0].family == "Chalmers"
    assert read.name[0].given == ["Peter", "James"]
    assert read.birthDate.isostring == "1974-12-25"
    assert read.identifier[0].system == MRN and read.identifier[0].value == mrn

    # update: PUT Patient/<id> with the modified model
    read.name[0].family = "Windsor"
    read.gender = "other"
    updated = read.update()
    assert updated["meta"]["versionId"] == "2"
    again = Patient.read(patient_id, fhir)
    assert again.meta.versionId == "2"
    assert again.name[0].family == "Windsor"
    assert again.gender == "other"

    # An Observation that references the Patient, created through the library as well.
    observation = Observation(_observation_json(f"Patient/{patient_id}", 72))
    observation_id = observation.create(fhir)["id"]
    stored_obs = Observation.read(observation_id, fhir)
    assert isinstance(stored_obs.subject, FHIRReference)
    assert stored_obs.subject.reference == f"Patient/{patient_id}"
    assert float(stored_obs.valueQuantity.value) == 72.0

    # search by identifier: the library builds `Patient?identifier=<system>|<value>` itself
    found = list(Patient.where({"identifier": f"{MRN}|{mrn}"}).perform_resources_iter(fhir))
    assert [p.id for p in found] == [patient_id]
    assert found[0].name[0].family == "Windsor"
    assert list(Patient.where({"identifier": f"{MRN}|no-such-{mrn}"}).perform_resources_iter(fhir)) == []
    by_subject = list(Observation.where({"subject": f"Patient/{patient_id}"}).perform_resources_iter(fhir))
    assert [o.id for o in by_subject] == [observation_id]
    by_code = list(Observation.where({"code": "http://loinc.org|8867-4", "subject": f"Patient/{patient_id}"})
                   .perform_resources_iter(fhir))
    assert [o.id for o in by_code] == [observation_id]

    with _http(server) as http:
        # the old version stays readable
        first = http.get(f"Patient/{patient_id}/_history/1")
        assert first.status_code == 200
        assert first.json()["name"][0]["family"] == "Chalmers"

        # delete through the library; the server then answers 410 Gone
        assert stored_obs.delete() is None  # 204, no body
        assert read.delete() is None
        assert http.get(f"Patient/{patient_id}").status_code == 410
        assert http.get(f"Observation/{observation_id}").status_code == 410
        history = http.get(f"Patient/{patient_id}/_history").json()
        assert history["total"] == 3
        assert history["entry"][0]["request"]["method"] == "DELETE"

    with pytest.raises(requests.HTTPError) as gone:
        Patient.read(patient_id, fhir)
    assert gone.value.response.status_code == 410
    with pytest.raises(FHIRNotFoundException):
        Patient.read(f"never-{mrn}", fhir)
    assert list(Patient.where({"identifier": f"{MRN}|{mrn}"}).perform_resources_iter(fhir)) == []
    assert list(Observation.where({"subject": f"Patient/{patient_id}"}).perform_resources_iter(fhir)) == []

    # paging: the library follows the server's `next` links
    system = f"http://example.org/paging/{uuid.uuid4().hex}"
    ids = {
        Patient({"identifier": [{"system": system, "value": str(i)}], "gender": "female"}).create(fhir)["id"]
        for i in range(5)
    }
    search = Patient.where({"identifier": f"{system}|", "_count": "2"})
    pages = list(search.perform_iter(fhir))
    assert [len(page.entry) for page in pages] == [2, 2, 1]
    assert all(page.total == 5 for page in pages)
    assert {entry.resource.id for page in pages for entry in page.entry} == ids


# -- fhirpy ------------------------------------------------------------------------------------


def test_fhirpy_crud_search_paging_and_conditional_writes(server) -> None:
    mrn = f"py-{uuid.uuid4().hex[:12]}"
    fhir = SyncFHIRClient(server.base_url, requests_config={"timeout": 10})

    # create: resource.save() without an id POSTs and reloads itself from the response
    patient = fhir.resource(
        "Patient",
        identifier=[{"system": MRN, "value": mrn}],
        name=[{"family": "Lovelace", "given": ["Ada"]}],
        gender="female",
        birthDate="1815-12-10",
    )
    patient.save()
    patient_id = patient.id
    assert patient_id
    assert patient["meta"]["versionId"] == "1"

    # read, through a reference and through client.get
    read = fhir.reference("Patient", patient_id).to_resource()
    assert read["name"][0]["family"] == "Lovelace"
    assert read["meta"]["versionId"] == "1"
    assert fhir.get("Patient", patient_id)["identifier"] == [{"system": MRN, "value": mrn}]

    # update: save() with an id PUTs
    read["name"][0]["family"] = "King"
    read["active"] = True
    read.save()
    assert read["meta"]["versionId"] == "2"
    current = fhir.reference("Patient", patient_id).to_resource()
    assert current["name"][0]["family"] == "King"
    assert current["active"] is True
    assert current["meta"]["versionId"] == "2"

    # An Observation referencing the Patient
    fields = {k: v for k, v in _observation_json(f"Patient/{patient_id}", 61).items() if k != "resourceType"}
    observation = fhir.resource("Observation", **{**fields, "subject": patient.to_reference()})
    observation.save()
    observation_id = observation.id
    assert fhir.get("Observation", observation_id)["subject"] == {"reference": f"Patient/{patient_id}"}

    # search by identifier; fhirpy's count() sends _count=0 (and an unknown _totalMethod)
    patients = fhir.resources("Patient").search(identifier=f"{MRN}|{mrn}")
    found = patients.fetch_all()
    assert [p.id for p in found] == [patient_id]
    assert found[0]["name"][0]["family"] == "King"
    assert patients.count() == 1
    assert patients.get().id == patient_id
    assert fhir.resources("Patient").search(identifier=f"{MRN}|other-{mrn}").fetch_all() == []
    observations = fhir.resources("Observation").search(subject=patient).fetch_all()
    assert [o.id for o in observations] == [observation_id]
    assert fhir.resources("Observation").search(subject=patient_id).count() == 1

    # conditional update through the search set: PUT Patient?identifier=...
    replacement = fhir.resource("Patient", identifier=[{"system": MRN, "value": mrn}], name=[{"family": "Byron"}])
    updated, created = patients.update(replacement)
    assert created is False
    assert updated.id == patient_id
    assert updated["meta"]["versionId"] == "3"
    assert fhir.get("Patient", patient_id)["name"] == [{"family": "Byron"}]

    # delete
    observation.delete()
    fhir.reference("Patient", patient_id).delete()
    with _http(server) as http:
        assert http.get(f"Patient/{patient_id}").status_code == 410
        assert http.get(f"Observation/{observation_id}").status_code == 410
        assert http.get(f"Patient/{patient_id}/_history/3").json()["name"] == [{"family": "Byron"}]
    with pytest.raises(ResourceNotFound):
        fhir.get("Patient", patient_id)
    assert patients.fetch_all() == []
    assert patients.count() == 0
    assert fhir.resources("Observation").search(subject=patient).count() == 0

    # paging and conditional delete
    system = f"http://example.org/fhirpy/{uuid.uuid4().hex}"
    ids = set()
    for i in range(5):
        created = fhir.resource("Patient", identifier=[{"system": system, "value": str(i)}])
        created.save()
        ids.add(created.id)

    everyone = fhir.resources("Patient").search(identifier=f"{system}|")
    # fetch_all() follows the server's `next` links page by page
    assert {p.id for p in everyone.limit(2).fetch_all()} == ids
    assert len(everyone.limit(2).fetch()) == 2

    # conditional delete of exactly one match
    one = fhir.resources("Patient").search(identifier=f"{system}|3")
    _, status = one.delete()
    assert status == 204
    assert one.count() == 0
    assert everyone.count() == 4
    # several matches: the server refuses (412), which fhirpy maps to MultipleResourcesFound
    with pytest.raises(MultipleResourcesFound):
        everyone.delete()
    assert everyone.count() == 4
