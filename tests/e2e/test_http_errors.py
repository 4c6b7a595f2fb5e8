"""Bad requests over a real socket: every one gets a 4xx OperationOutcome, never a 5xx.

One `ficus serve` process per database kind (SQLite, PostgreSQL) serves this module; the tables
are emptied before each test. The tests using the `http` fixture also require that the server
logged no unhandled error meanwhile. The tests at the end pin down requests that once got a 500.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import closing

import httpx
import psycopg
import pytest

from conftest import TABLES, ServerProcess
from ficus.store.database import open_database

pytestmark = pytest.mark.e2e

FHIR_JSON = "application/fhir+json"
JSON = {"Content-Type": FHIR_JSON}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}
MRN = "http://example.org/mrn"


class ServerLog:
    """What the server process has written to stderr so far."""

    def __init__(self, process: ServerProcess) -> None:
        self._process = process

    def text(self) -> str:
        return self._process.log_text()


class Served:
    """One server process per database kind for this module; emptied before every test."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.process: ServerProcess | None = None
        self.log: ServerLog | None = None

    def ready(self) -> ServerProcess:
        if self.process is None or self.process.process.poll() is not None:
            self.process = ServerProcess(self.database_url)
            self.log = ServerLog(self.process)
        self._empty()
        return self.process

    def _empty(self) -> None:
        if self.database_url.startswith("sqlite:///"):
            with closing(sqlite3.connect(self.database_url[len("sqlite:///"):], timeout=30)) as connection, connection:
                for table in TABLES:
                    connection.execute(f"DELETE FROM {table}")
        else:
            with psycopg.connect(self.database_url, autocommit=True) as connection:
                connection.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY")

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('errors') / 'ficus.db'}"
        open_database(url).close()
    else:
        url = request.getfixturevalue("postgres_database")
    holder = Served(url)
    yield holder
    holder.stop()


@pytest.fixture
def raw_http(served: Served) -> Iterator[httpx.Client]:
    """A client of the module's server on an empty database."""
    server = served.ready()
    with httpx.Client(base_url=server.base_url + "/", timeout=15) as client:
        yield client


@pytest.fixture
def http(served: Served, raw_http: httpx.Client) -> Iterator[httpx.Client]:
    """Like `raw_http`, and the server must log no unhandled error during the test."""
    assert served.log is not None
    logged_before = len(served.log.text())
    yield raw_http
    time.sleep(0.05)  # let the drain thread catch up
    logged = served.log.text()[logged_before:]
    assert "Traceback" not in logged, logged[-3000:]


def assert_outcome(response: httpx.Response, status: int | tuple[int, ...]) -> dict:
    """`response` is a 4xx FHIR OperationOutcome with error issues and the expected status."""
    expected = status if isinstance(status, tuple) else (status,)
    assert response.status_code in expected, f"{response.status_code} (wanted {expected}): {response.text[:500]}"
    assert 400 <= response.status_code < 500
    assert response.headers["content-type"].startswith(FHIR_JSON)
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome", outcome
    assert outcome["issue"], outcome
    for issue in outcome["issue"]:
        assert issue["severity"] in ("error", "fatal")
        assert issue["code"]
        assert issue["diagnostics"]
    return outcome


def diagnostics(outcome: dict) -> str:
    return " ".join(issue["diagnostics"] for issue in outcome["issue"])


def check_all(http: httpx.Client, cases: list[tuple], status_of=None) -> None:
    """Send each (method, path, body bytes, headers, status) and collect every wrong answer."""
    problems = []
    for method, path, body, headers, status in cases:
        response = http.request(method, path, content=body, headers=headers)
        try:
            assert_outcome(response, status)
        except (AssertionError, ValueError, KeyError) as error:
            problems.append(f"{method} {path} {body[:80] if body else b''!r}: {error}")
    assert problems == [], "\n".join(problems)


def total(http: httpx.Client, path: str = "_history", **params: str) -> int:
    response = http.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()["total"]


@pytest.fixture
def patient(raw_http: httpx.Client) -> dict:
    created = raw_http.post(
        "Patient",
        json={"resourceType": "Patient", "identifier": [{"system": MRN, "value": "p1"}],
              "name": [{"family": "Original", "given": ["A", "B"]}], "gender": "female"},
        headers=JSON,
    )
    assert created.status_code == 201
    return created.json()


def assert_unchanged(http: httpx.Client, patient: dict) -> None:
    current = http.get(f"Patient/{patient['id']}")
    assert current.status_code == 200
    assert current.json() == patient
    assert total(http) == 1


# -- bodies ------------------------------------------------------------------------------------


def test_malformed_json_bodies(http: httpx.Client, patient: dict) -> None:
    pid = patient["id"]
    check_all(http, [
        ("POST", "Patient", b'{"resourceType": "Patient",', JSON, 400),
        ("POST", "Patient", b'{"resourceType": "Patient", "active": tru}', JSON, 400),
        ("POST", "Patient", b'\xff\xfe\x00\x01', JSON, 400),
        ("POST", "Patient", b"", JSON, 400),
        ("POST", "Patient", b"[1, 2]", JSON, 400),
        ("POST", "Patient", b'"a string"', JSON, 400),
        ("POST", "Patient", b"null", JSON, 400),
        ("PUT", f"Patient/{pid}", b'{"resourceType": "Patient", "id": "' + pid.encode(), JSON, 400),
        ("PUT", f"Patient/{pid}", b"", JSON, 400),
        ("PATCH", f"Patient/{pid}", b'[{"op": "replace", ', JSON_PATCH, 400),
        ("POST", "", b'{"resourceType": "Bundle", "type": "transaction", "entry": [', JSON, 400),
    ])
    assert_unchanged(http, patient)


def test_wrong_resource_type_and_structure(http: httpx.Client, patient: dict) -> None:
    pid = patient["id"]
    observation = {"resourceType": "Observation", "status": "final", "code": {"text": "hr"}}
    check_all(http, [
        ("POST", "Patient", json.dumps(observation).encode(), JSON, 400),
        ("POST", "Patient", b'{"resourceType": 5}', JSON, 400),
        ("POST", "Patient", b'{"name": [{"family": "NoType"}]}', JSON, 400),
        ("PUT", f"Patient/{pid}", json.dumps({**observation, "id": pid}).encode(), JSON, 400),
        ("PUT", f"Patient?identifier={MRN}|p1", json.dumps(observation).encode(), JSON, 400),
        # structurally invalid Patients
        ("POST", "Patient", b'{"resourceType": "Patient", "gender": "robot"}', JSON, 400),
        ("POST", "Patient", b'{"resourceType": "Patient", "name": "not a list"}', JSON, 400),
        ("POST", "Patient", b'{"resourceType": "Patient", "birthDate": "1970-13-45"}', JSON, 400),
        ("POST", "Patient", b'{"resourceType": "Patient", "birthDate": 1970}', JSON, 400),
        ("POST", "Patient", b'{"resourceType": "Patient", "unknownElement": true}', JSON, 400),
        ("POST", "Patient", b'{"resourceType": "Patient", "multipleBirthInteger": 99999999999999999999}', JSON, 400),
        ("POST", "Patient", b'{"resourceType": "Patient", "id": "not a valid id!"}', JSON, 400),
        ("POST", "Patient", b'{"resourceType": "Patient", "contained": [{"resourceType": "Nope"}]}', JSON, 400),
        # POST to the base URL takes only batch and transaction Bundles
        ("POST", "", json.dumps(patient).encode(), JSON, 400),
        ("POST", "", b'{"resourceType": "Bundle", "type": "collection"}', JSON, 400),
        ("POST", "", b'{"resourceType": "Bundle", "type": "transaction", "entry": {}}', JSON, 400),
    ])
    assert_unchanged(http, patient)


def test_id_mismatch_and_bad_ids(http: httpx.Client, patient: dict) -> None:
    pid = patient["id"]
    body = {k: v for k, v in patient.items() if k != "meta"}
    check_all(http, [
        ("PUT", f"Patient/{pid}", json.dumps({**body, "id": "someone-else"}).encode(), JSON, 400),
        ("PUT", f"Patient/{pid}", json.dumps({k: v for k, v in body.items() if k != "id"}).encode(), JSON, 400),
        ("PUT", "Patient/someone-else", json.dumps(body).encode(), JSON, 400),
        # conditional update whose match differs from the body's id
        ("PUT", f"Patient?identifier={MRN}|p1", json.dumps({**body, "id": "someone-else"}).encode(), JSON, 400),
        ("PUT", "Patient/bad$id", json.dumps({**body, "id": "bad$id"}).encode(), JSON, 400),
        ("GET", "Patient/bad$id", None, {}, 400),
        ("GET", "Patient/" + "a" * 65, None, {}, 400),
        ("DELETE", "Patient/bad$id", None, {}, 400),
        ("PUT", "Patient", json.dumps(body).encode(), JSON, 400),  # no id, no criteria
        ("DELETE", "Patient", None, {}, 400),
    ])
    assert http.get("Patient/someone-else").status_code == 404
    assert_unchanged(http, patient)


def test_unknown_types_paths_and_methods(http: httpx.Client, patient: dict) -> None:
    check_all(http, [
        ("GET", "Foo/1", None, {}, 404),
        ("GET", "Foo", None, {}, 404),
        ("POST", "Foo", b'{"resourceType": "Foo"}', JSON, 404),
        ("PUT", "Foo/1", b'{"resourceType": "Foo", "id": "1"}', JSON, 404),
        ("DELETE", "Foo/1", None, {}, 404),
        ("GET", "patient/1", None, {}, 404),  # type names are case-sensitive
        ("GET", f"Patient/{patient['id']}/nonsense", None, {}, 404),
        ("GET", f"Patient/{patient['id']}/_history/abc", None, {}, 404),
        ("GET", f"Patient/{patient['id']}/_history/2", None, {}, 404),
        ("GET", "Patient/never-created", None, {}, 404),
        ("DELETE", "Patient/never-created", None, {}, 404),
        ("PUT", "", b"{}", JSON, 405),
        ("DELETE", "", None, {}, 405),
        ("PATCH", "", b"[]", JSON_PATCH, 405),
        ("POST", "metadata", b"{}", JSON, 405),
        ("PUT", "Patient/_history", b"{}", JSON, 405),
    ])
    assert_unchanged(http, patient)


def test_oversized_bodies_get_413(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    limit = 2048
    monkeypatch.setenv("FICUS_MAX_BODY_BYTES", str(limit))
    server = ServerProcess(database_url)
    log = ServerLog(server)
    try:
        with httpx.Client(base_url=server.base_url + "/", timeout=15) as http:
            def patient_of_size(size: int) -> bytes:
                body = {"resourceType": "Patient", "name": [{"family": "x"}]}
                text = json.dumps(body).encode()
                body["name"][0]["family"] = "x" * (size - len(text) + 1)
                encoded = json.dumps(body).encode()
                assert len(encoded) == size
                return encoded

            fits = http.post("Patient", content=patient_of_size(limit), headers=JSON)
            assert fits.status_code == 201, fits.text
            pid = fits.json()["id"]

            big = patient_of_size(20 * limit)
            outcome = assert_outcome(http.post("Patient", content=big, headers=JSON), 413)
            assert str(limit) in diagnostics(outcome)
            assert_outcome(http.post("Patient", content=patient_of_size(limit + 1), headers=JSON), 413)
            # no Content-Length: a chunked body is cut off while it streams in
            chunked = http.post("Patient", content=iter([big[i:i + 512] for i in range(0, len(big), 512)]), headers=JSON)
            assert "content-length" not in chunked.request.headers
            assert_outcome(chunked, 413)
            # PUT, PATCH and Bundles are limited too
            replacement = json.loads(big)
            replacement["id"] = pid
            assert_outcome(http.put(f"Patient/{pid}", json=replacement, headers=JSON), 413)
            patch = [{"op": "replace", "path": "/name/0/family", "value": "y" * (2 * limit)}]
            assert_outcome(http.patch(f"Patient/{pid}", json=patch, headers=JSON_PATCH), 413)
            bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
                {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": {"resourceType": "Patient"},
                 "request": {"method": "POST", "url": "Patient"}} for _ in range(50)
            ]}
            assert_outcome(http.post("", json=bundle, headers=JSON), 413)

            # the connection-level rejections stored nothing and the server still works
            assert total(http) == 1
            assert http.get(f"Patient/{pid}").json()["meta"]["versionId"] == "1"
            assert http.get("metadata").status_code == 200
    finally:
        server.stop()
    assert "Traceback" not in log.text()


# -- patches -----------------------------------------------------------------------------------


def test_invalid_json_patch(http: httpx.Client, patient: dict) -> None:
    pid = patient["id"]

    def patch(*operations) -> tuple:
        return operations

    cases = [
        # malformed documents: 400
        ({"op": "replace", "path": "/gender", "value": "male"}, 400),  # an object, not an array
        (patch({"op": "bogus", "path": "/gender"}), 400),
        (patch({"path": "/gender", "value": "male"}), 400),
        (patch({"op": "replace", "path": "gender", "value": "male"}), 400),
        (patch({"op": "replace", "path": "/gender"}), 400),
        (patch({"op": "move", "path": "/gender"}), 400),
        (patch(5), 400),
        # documents that cannot apply to this resource: 422
        (patch({"op": "replace", "path": "/birthDate", "value": "2000-01-01"}), 422),
        (patch({"op": "remove", "path": "/name/5"}), 422),
        (patch({"op": "add", "path": "/name/01", "value": {}}), 422),
        (patch({"op": "test", "path": "/gender", "value": "male"}), 422),
        (patch({"op": "copy", "from": "/nowhere", "path": "/x"}), 422),
        (patch({"op": "move", "from": "/name", "path": "/name/0"}), 422),
        (patch({"op": "replace", "path": "/id", "value": "other"}), 422),
        (patch({"op": "remove", "path": "/resourceType"}), 422),
        (patch({"op": "replace", "path": "", "value": []}), 422),
        # applies, but the result is not a valid Patient: 400
        (patch({"op": "replace", "path": "/gender", "value": "robot"}), 400),
        (patch({"op": "add", "path": "/favouriteColour", "value": "green"}), 400),
        # the second operation fails: the first must not stick
        (patch({"op": "replace", "path": "/gender", "value": "male"}, {"op": "test", "path": "/gender", "value": "female"}), 422),
    ]
    check_all(http, [
        ("PATCH", f"Patient/{pid}", json.dumps(document).encode(), JSON_PATCH, status) for document, status in cases
    ] + [
        ("PATCH", f"Patient?identifier={MRN}|p1", json.dumps(cases[-1][0]).encode(), JSON_PATCH, 422),
        ("PATCH", "Patient?identifier=nobody", b"[]", JSON_PATCH, 404),
        ("PATCH", "Patient/never-created", b"[]", JSON_PATCH, 404),
        ("PATCH", f"Patient/{pid}", b"[]", {**JSON_PATCH, "If-Match": 'W/"7"'}, 412),
        ("PATCH", f"Patient/{pid}", b"[]", {**JSON_PATCH, "If-Match": "garbage"}, 400),
    ])
    assert_unchanged(http, patient)


def _fhirpath_patch(*operations: list[dict]) -> dict:
    return {"resourceType": "Parameters", "parameter": [{"name": "operation", "part": parts} for parts in operations]}


def _op(kind: str, path: str | None = None, **parts: dict) -> list[dict]:
    found = [{"name": "type", "valueCode": kind}]
    if path is not None:
        found.append({"name": "path", "valueString": path})
    found += [{"name": name, **value} for name, value in parts.items()]
    return found


def test_invalid_fhirpath_patch(http: httpx.Client, patient: dict) -> None:
    pid = patient["id"]
    cases = [
        ({"resourceType": "Parameters", "parameter": "x"}, 400),
        ({"resourceType": "Parameters", "parameter": [{"name": "something-else"}]}, 400),
        ({"resourceType": "Parameters", "parameter": [{"name": "operation"}]}, 400),
        (_fhirpath_patch(_op("explode", "Patient.gender")), 400),
        (_fhirpath_patch(_op("delete")), 400),  # no path
        (_fhirpath_patch(_op("delete", "Patient.((")), 400),  # path does not parse
        (_fhirpath_patch(_op("replace", "Patient.gender")), 400),  # no value
        (_fhirpath_patch(_op("insert", "Patient.name", index={"valueInteger": -1}, value={"valueHumanName": {}})), 400),
        (_fhirpath_patch(_op("replace", "Patient.birthDate", value={"valueDate": "2000-01-01"})), 422),  # selects nothing
        (_fhirpath_patch(_op("insert", "Patient.name", index={"valueInteger": 9}, value={"valueHumanName": {"family": "Q"}})), 422),
        (_fhirpath_patch(_op("add", "Patient", name={"valueString": "id"}, value={"valueId": "other"})), 422),
        (_fhirpath_patch(_op("replace", "Patient.gender", value={"valueCode": "robot"})), 400),
        # the first operation applies, the second fails: nothing is stored
        (_fhirpath_patch(_op("replace", "Patient.gender", value={"valueCode": "male"}),
                         _op("delete", "Patient.((")), 400),
        # a resource of another type is no patch at all
        ({"resourceType": "Observation", "status": "final"}, 400),
    ]
    check_all(http, [
        ("PATCH", f"Patient/{pid}", json.dumps(document).encode(), JSON, status) for document, status in cases
    ])
    assert_unchanged(http, patient)


# -- content negotiation -----------------------------------------------------------------------


def test_unsupported_content_types_and_formats(http: httpx.Client, patient: dict) -> None:
    pid = patient["id"]
    body = json.dumps({"resourceType": "Patient", "gender": "male"}).encode()
    put_body = json.dumps({"resourceType": "Patient", "id": pid, "gender": "male"}).encode()
    patch = json.dumps([{"op": "replace", "path": "/gender", "value": "male"}]).encode()
    xml = b'<Patient xmlns="http://hl7.org/fhir"><gender value="male"/></Patient>'
    check_all(http, [
        ("POST", "Patient", body, {"Content-Type": "text/plain"}, 415),
        ("POST", "Patient", xml, {"Content-Type": "application/fhir+xml"}, 415),
        ("POST", "Patient", xml, {"Content-Type": "application/xml"}, 415),
        ("POST", "Patient", body, {"Content-Type": "multipart/form-data; boundary=x"}, 415),
        ("PUT", f"Patient/{pid}", put_body, {"Content-Type": "text/html"}, 415),
        ("PATCH", f"Patient/{pid}", patch, {"Content-Type": "text/plain"}, 415),
        ("PATCH", f"Patient/{pid}", patch, {"Content-Type": "application/merge-patch+json"}, 415),
        ("POST", "", b'{"resourceType": "Bundle", "type": "batch"}', {"Content-Type": "application/octet-stream"}, 415),
        ("GET", f"Patient/{pid}", None, {"Accept": "application/fhir+xml"}, 406),
        ("GET", "Patient", None, {"Accept": "text/html"}, 406),
        ("GET", f"Patient/{pid}?_format=xml", None, {}, 406),
        ("GET", "metadata?_format=text/turtle", None, {}, 406),
    ])
    assert_unchanged(http, patient)


# -- search, history and conditional headers -------------------------------------------------


def test_bad_search_history_and_conditional_requests(http: httpx.Client, patient: dict) -> None:
    pid = patient["id"]
    body = json.dumps({"resourceType": "Patient", "id": pid, "gender": "male"}).encode()
    strict = {"Prefer": "handling=strict"}
    check_all(http, [
        ("GET", "Patient?_count=abc", None, {}, 400),
        ("GET", "Patient?_count=-1", None, {}, 400),
        ("GET", "Patient?birthdate=not-a-date", None, {}, 400),
        ("GET", "Patient?_lastUpdated=gtyesterday", None, {}, 400),
        ("GET", "Observation?value-quantity=abc", None, {}, 400),
        ("GET", "Patient?_summary=bogus", None, {}, 400),
        ("GET", "Patient?no-such-param=1", None, strict, 400),
        ("POST", "Patient/_search", b"birthdate=not-a-date", {"Content-Type": "application/x-www-form-urlencoded"}, 400),
        ("GET", "_history?_since=last-tuesday", None, {}, 400),
        ("GET", f"Patient/{pid}/_history?_count=x", None, {}, 400),
        ("GET", "Patient/_history?_offset=-3", None, {}, 400),
        # conditional interactions
        ("PUT", f"Patient/{pid}", body, {**JSON, "If-Match": "garbage"}, 400),
        ("PUT", f"Patient/{pid}", body, {**JSON, "If-Match": 'W/"2"'}, 412),
        ("DELETE", f"Patient/{pid}", None, {"If-Match": 'W/"5"'}, 412),
        ("POST", "Patient", body.replace(f'"id": "{pid}", '.encode(), b""), {**JSON, "If-None-Exist": "&&&"}, 400),
        ("POST", "Patient", body.replace(f'"id": "{pid}", '.encode(), b""), {**JSON, "If-None-Exist": "no-such-param=1"}, 400),
        ("POST", "Patient", body.replace(f'"id": "{pid}", '.encode(), b""), {**JSON, "If-None-Exist": "birthdate=soon"}, 400),
        ("PUT", "Patient?no-such-param=1", body, JSON, 400),
        ("DELETE", "Patient?no-such-param=1", None, {}, 400),
    ])
    assert_unchanged(http, patient)

    # conditional writes that match several resources are refused
    twin = http.post("Patient", json={"resourceType": "Patient", "identifier": [{"system": MRN, "value": "p1"}]}, headers=JSON)
    assert twin.status_code == 201
    new_patient = json.dumps({"resourceType": "Patient", "identifier": [{"system": MRN, "value": "p1"}]}).encode()
    check_all(http, [
        ("PUT", f"Patient?identifier={MRN}|p1", new_patient, JSON, 412),
        ("DELETE", f"Patient?identifier={MRN}|p1", None, {}, 412),
        ("PATCH", f"Patient?identifier={MRN}|p1", b"[]", JSON_PATCH, 412),
        ("POST", "Patient", new_patient, {**JSON, "If-None-Exist": f"identifier={MRN}|p1"}, 412),
    ])
    assert total(http, "Patient", identifier=f"{MRN}|p1") == 2
    assert total(http) == 2


def test_search_form_body_that_is_not_utf8_is_a_400(http: httpx.Client) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert_outcome(http.post("Patient/_search", content=b"name=\xff\xfe", headers=form), 400)


# -- Bundles -----------------------------------------------------------------------------------


def _post(resource: dict, full_url: str | None = None, **request: str) -> dict:
    return {
        "fullUrl": full_url or f"urn:uuid:{uuid.uuid4()}",
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"], **request},
    }


def _good_entries(system: str) -> list[dict]:
    patient_url = f"urn:uuid:{uuid.uuid4()}"
    return [
        _post({"resourceType": "Patient", "identifier": [{"system": system, "value": "a"}]}, patient_url),
        _post({"resourceType": "Observation", "status": "final", "code": {"text": "hr"},
               "identifier": [{"system": system, "value": "o"}], "subject": {"reference": patient_url}}),
        {"resource": {"resourceType": "Patient", "id": "tx-put", "identifier": [{"system": system, "value": "b"}]},
         "request": {"method": "PUT", "url": "Patient/tx-put"}},
        _post({"resourceType": "Patient", "identifier": [{"system": system, "value": "c"}]},
              ifNoneExist=f"identifier={system}|c"),
    ]


def test_transaction_with_a_bad_entry_leaves_nothing_behind(http: httpx.Client, patient: dict) -> None:
    system = f"http://example.org/tx/{uuid.uuid4().hex}"
    pid = patient["id"]
    bad_entries = {
        "invalid resource": (_post({"resourceType": "Patient", "gender": "robot"}), 400),
        "unknown type": (_post({"resourceType": "Foo"}), 404),
        "type mismatch": ({"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Observation"}}, 400),
        "missing resource": ({"request": {"method": "POST", "url": "Patient"}}, 400),
        "missing request": ({"resource": {"resourceType": "Patient"}}, 400),
        "bad method": ({"resource": {"resourceType": "Patient"}, "request": {"method": "FETCH", "url": "Patient"}}, 400),
        "dangling urn:uuid": (_post({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                                     "subject": {"reference": f"urn:uuid:{uuid.uuid4()}"}}), 400),
        "conditional reference without match": (
            _post({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                   "subject": {"reference": f"Patient?identifier={system}|nobody"}}), 404),
        "id mismatch": ({"resource": {"resourceType": "Patient", "id": "one"}, "request": {"method": "PUT", "url": "Patient/two"}}, 400),
        # fails only once the other entries have been written (PUTs run after POSTs)
        "stale If-Match": ({"resource": {**{k: v for k, v in patient.items() if k != "meta"}, "gender": "male"},
                            "request": {"method": "PUT", "url": f"Patient/{pid}", "ifMatch": 'W/"9"'}}, 412),
        "invalid JSON Patch": ({"resource": {"resourceType": "Binary", "contentType": "application/json-patch+json",
                                             "data": base64.b64encode(b'[{"op": "test", "path": "/gender", "value": "male"}]').decode()},
                                "request": {"method": "PATCH", "url": f"Patient/{pid}"}}, 422),
        "delete of an unknown resource": ({"request": {"method": "DELETE", "url": "Patient/never-created"}}, 404),
        "read of an unknown resource": ({"request": {"method": "GET", "url": "Patient/never-created"}}, 404),
        "bad search": ({"request": {"method": "GET", "url": "Patient?birthdate=not-a-date"}}, 400),
    }
    problems = []
    for name, (bad, status) in bad_entries.items():
        for position in (0, 4):  # the bad entry first, and after all the good ones
            entries = _good_entries(system)
            entries.insert(position, bad)
            response = http.post("", json={"resourceType": "Bundle", "type": "transaction", "entry": entries}, headers=JSON)
            try:
                outcome = assert_outcome(response, status)
                assert f"Bundle.entry[{position}]" in diagnostics(outcome), diagnostics(outcome)
            except (AssertionError, ValueError, KeyError) as error:
                problems.append(f"{name} at {position}: {error}")
    assert problems == [], "\n".join(problems)

    # nothing of any of those transactions was stored
    for res_type in ("Patient", "Observation"):
        assert total(http, res_type, identifier=f"{system}|") == 0
    assert http.get("Patient/tx-put").status_code == 404
    assert_unchanged(http, patient)

    # the same good entries on their own do commit
    committed = http.post("", json={"resourceType": "Bundle", "type": "transaction", "entry": _good_entries(system)}, headers=JSON)
    assert committed.status_code == 200, committed.text
    assert [e["response"]["status"] for e in committed.json()["entry"]] == ["201 Created"] * 4
    assert total(http, "Patient", identifier=f"{system}|") == 3
    assert total(http, "Observation", identifier=f"{system}|") == 1


def test_transaction_error_names_the_failing_entry_once(http: httpx.Client) -> None:
    """Errors raised while ids are assigned are wrapped twice ("Bundle.entry[0] (...): Bundle.entry[0] (...): ...")."""
    entries = [
        {"resource": {"resourceType": "Patient", "id": "not a valid id"},
         "request": {"method": "PUT", "url": "Patient?identifier=http://example.org/mrn|1"}},
        _post({"resourceType": "Patient"}, ifNoneExist="no-such-param=1"),
    ]
    for index, entry in enumerate(entries):
        response = http.post("", json={"resourceType": "Bundle", "type": "transaction", "entry": [entry]}, headers=JSON)
        text = diagnostics(assert_outcome(response, 400))
        assert text.count("Bundle.entry[0]") == 1, f"entry {index}: {text}"
    assert total(http) == 0


def test_batch_answers_bad_entries_one_by_one(http: httpx.Client, patient: dict) -> None:
    system = f"http://example.org/batch/{uuid.uuid4().hex}"
    entries = [
        _post({"resourceType": "Patient", "identifier": [{"system": system, "value": "ok"}]}),
        _post({"resourceType": "Patient", "gender": "robot"}),
        {"request": {"method": "GET", "url": "Foo/1"}},
        {"request": {"method": "GET", "url": f"Patient/{patient['id']}"}},
        {"request": {"method": "GET", "url": "Patient?_count=abc"}},
        {"request": {"method": "DELETE", "url": "Patient/never-created"}},
    ]
    response = http.post("", json={"resourceType": "Bundle", "type": "batch", "entry": entries}, headers=JSON)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["type"] == "batch-response"
    statuses = [entry["response"]["status"] for entry in result["entry"]]
    assert statuses == ["201 Created", "400 Bad Request", "404 Not Found", "200 OK", "400 Bad Request", "404 Not Found"]
    for entry in result["entry"]:
        if not entry["response"]["status"].startswith("2"):
            assert entry["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert total(http, "Patient", identifier=f"{system}|ok") == 1
    assert total(http) == 2


# -- requests that currently end in a 500 (server bugs) ----------------------------------------


def test_deeply_nested_json_is_a_400(raw_http: httpx.Client) -> None:
    """Deep nesting hits RecursionError in fhirjson.decode (msgspec) or in the validator."""
    deep_arrays = b'{"resourceType": "Patient", "extension": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    extension: dict = {"url": "http://example.org/x", "valueString": "leaf"}
    for _ in range(400):  # decodes fine, then recurses past the limit in validation
        extension = {"url": "http://example.org/x", "extension": [extension]}
    deep_extensions = json.dumps({"resourceType": "Patient", "extension": [extension]}).encode()
    bundle = json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": json.loads(deep_extensions), "request": {"method": "POST", "url": "Patient"}}
    ]}).encode()
    check_all(raw_http, [
        ("POST", "Patient", b"[" * 100000 + b"]" * 100000, JSON, 400),
        ("POST", "Patient", deep_arrays, JSON, 400),
        ("POST", "Patient", deep_extensions, JSON, 400),
        ("POST", "", bundle, JSON, 400),
    ])
    assert total(raw_http) == 0


def test_bundle_entries_with_wrongly_typed_fields_are_a_400(raw_http: httpx.Client) -> None:
    """A non-string id in a conditional PUT entry, or non-string Binary.data in a PATCH entry, raise TypeError."""
    conditional_put = {"resource": {"resourceType": "Patient", "id": 5}, "request": {"method": "PUT", "url": "Patient?identifier=a|b"}}
    binary_patch = {"resource": {"resourceType": "Binary", "data": 5}, "request": {"method": "PATCH", "url": "Patient/x"}}
    transactions = [
        {"resourceType": "Bundle", "type": "transaction", "entry": [_post({"resourceType": "Patient"}), entry]}
        for entry in (conditional_put, binary_patch)
    ]
    check_all(raw_http, [("POST", "", json.dumps(bundle).encode(), JSON, 400) for bundle in transactions])
    assert total(raw_http) == 0
    # in a batch the bad entry fails on its own and the good one is created
    batch = raw_http.post("", json={"resourceType": "Bundle", "type": "batch", "entry": [
        _post({"resourceType": "Patient"}), conditional_put,
    ]}, headers=JSON)
    assert batch.status_code == 200, batch.text[:500]
    assert [e["response"]["status"][:3] for e in batch.json()["entry"]] == ["201", "400"]
    assert total(raw_http) == 1


def test_numbers_beyond_64_bits_in_the_url_are_not_a_500(raw_http: httpx.Client, patient: dict) -> None:
    """Huge _offset (both databases) and huge vread versions (SQLite) overflow the database driver."""
    huge = "9" * 25
    problems = []
    for path in (f"Patient/{patient['id']}/_history/{huge}", f"Patient?_offset={huge}", f"_history?_offset={huge}",
                 f"Patient/_history?_snapshot={huge}"):
        response = raw_http.get(path)
        if response.status_code >= 500:
            problems.append(f"{path}: {response.status_code}")
        elif response.status_code == 200:
            if response.json()["resourceType"] == "Bundle" and "_snapshot" not in path:
                assert "entry" not in response.json(), path
        else:
            assert_outcome(response, (400, 404))
    assert problems == []
    assert_unchanged(raw_http, patient)


def test_control_characters_in_strings_are_a_400_on_every_database(raw_http: httpx.Client) -> None:
    """FHIR strings may not hold characters below U+0020 but tab, CR and LF (R4 datatypes, string).

    SQLite stores them; PostgreSQL fails with a 500 on a NUL in any indexed string (TEXT column).
    """
    tab = raw_http.post("Patient", json={"resourceType": "Patient", "name": [{"family": "tab\tand\r\nnewline"}]}, headers=JSON)
    assert tab.status_code == 201, tab.text
    pid = tab.json()["id"]
    bad_patients = [
        {"resourceType": "Patient", "name": [{"family": "a\u0000b"}]},
        {"resourceType": "Patient", "identifier": [{"system": "http://example.org/\u0000", "value": "1"}]},
        {"resourceType": "Patient", "extension": [{"url": "http://example.org/\u0000", "valueString": "v"}]},
        {"resourceType": "Patient", "name": [{"family": "bell\u0007"}]},
    ]
    cases = [("POST", "Patient", json.dumps(body).encode(), JSON, 400) for body in bad_patients]
    cases.append(("PATCH", f"Patient/{pid}", b'[{"op": "replace", "path": "/name/0/family", "value": "x\\u0000"}]', JSON_PATCH, 400))
    cases.append(("POST", "", json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": [
        _post({"resourceType": "Patient", "identifier": [{"system": MRN, "value": "ok"}]}), _post(bad_patients[0]),
    ]}).encode(), JSON, 400))
    check_all(raw_http, cases)
    assert raw_http.get("Patient", params={"name": "a\x00b"}).status_code == 400
    assert total(raw_http) == 1
