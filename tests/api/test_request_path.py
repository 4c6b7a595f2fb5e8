"""The HTTP request path: reads served on the event loop answer exactly as the interaction layer
does (a batch runs the same reads through `Interactions.handle`), the raw ASGI endpoint keeps
HTTP's rules for HEAD and unknown methods, concurrent writers all commit (on SQLite they
queue for the one writer connection instead of failing with "database is locked"), and
Bundles beyond `bundle_concurrency` queue.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
from starlette.testclient import TestClient

from conftest import BASE
from e2e.test_serve_workers import create_update_read
from ficus.app import create_app
from ficus.config import Settings
from ficus.policy import Access, Caller, Policy

JSON = {"Content-Type": "application/fhir+json"}


def _batch_get(client: TestClient, *urls: str) -> list[dict]:
    bundle = {
        "resourceType": "Bundle", "type": "batch",
        "entry": [{"request": {"method": "GET", "url": url}} for url in urls],
    }
    answer = client.post("", json=bundle, headers=JSON)
    assert answer.status_code == 200, answer.text
    return answer.json()["entry"]


def test_reads_on_the_event_loop_answer_like_the_interaction_layer(client: TestClient) -> None:
    created = client.post("Patient", json={"resourceType": "Patient", "gender": "female"}, headers=JSON).json()
    pid = created["id"]
    updated = {**created, "gender": "male"}
    assert client.put(f"Patient/{pid}", json=updated, headers=JSON).status_code == 200
    gone = client.post("Patient", json={"resourceType": "Patient"}, headers=JSON).json()["id"]
    assert client.delete(f"Patient/{gone}").status_code == 204

    urls = [
        f"Patient/{pid}", f"Patient/{pid}/_history/1", f"Patient/{pid}/_history/2",
        f"Patient/{pid}/_history/3", f"Patient/{gone}", f"Patient/{gone}/_history/2",
        "Patient/never-stored", f"Patient/{pid}?_elements=gender",
    ]
    entries = _batch_get(client, *urls)
    for url, entry in zip(urls, entries):
        direct = client.get(url)
        assert entry["response"]["status"].startswith(str(direct.status_code)), (url, entry["response"], direct.text)
        if direct.status_code == 200:
            assert entry["resource"] == direct.json(), url
            assert entry["response"]["etag"] == direct.headers["ETag"], url
        else:
            assert direct.json()["resourceType"] == "OperationOutcome", url
    statuses = [client.get(url).status_code for url in urls]
    assert statuses == [200, 200, 200, 404, 410, 410, 404, 200]
    assert client.get(f"Patient/{pid}").json()["gender"] == "male"
    assert client.get(f"Patient/{pid}/_history/1").json()["gender"] == "female"
    assert client.get(f"Patient/{pid}?_elements=gender").json()["meta"]["tag"][0]["code"] == "SUBSETTED"


def test_bad_ids_and_versions_on_the_read_path(client: TestClient) -> None:
    pid = client.post("Patient", json={"resourceType": "Patient"}, headers=JSON).json()["id"]
    for url, status in (
        ("Patient/bad_id!", 400),  # not a FHIR id
        (f"Patient/{pid}/_history/x", 404),
        (f"Patient/{pid}/_history/99999999999999999999", 404),
        ("NotAType/1", 404),
    ):
        answer = client.get(url)
        assert answer.status_code == status, (url, answer.text)
        assert answer.json()["resourceType"] == "OperationOutcome"
    etag = client.get(f"Patient/{pid}").headers["ETag"]
    assert client.get(f"Patient/{pid}", headers={"If-None-Match": etag}).status_code == 304
    assert client.get(f"Patient/{pid}", headers={"Accept": "application/fhir+xml"}).status_code == 406


def test_head_read_sends_the_length_without_the_body(client: TestClient) -> None:
    pid = client.post("Patient", json={"resourceType": "Patient", "active": True}, headers=JSON).json()["id"]
    full = client.get(f"Patient/{pid}")
    head = client.head(f"Patient/{pid}")
    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["Content-Length"]) == len(full.content)
    assert head.headers["ETag"] == full.headers["ETag"]
    assert head.headers["Content-Type"].startswith("application/fhir+json")


def test_an_unknown_http_method_is_405_with_allow(client: TestClient) -> None:
    answer = client.request("PROPFIND", "Patient")
    assert answer.status_code == 405
    assert answer.json()["resourceType"] == "OperationOutcome"
    assert set(answer.headers["Allow"].split(", ")) == {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}


def test_reads_survive_postgresql_closing_the_connections(postgres_database: str) -> None:
    """A PostgreSQL restart or failover drops every connection: the next read must not fail."""
    with TestClient(create_app(Settings(database_url=postgres_database, base_url=BASE, auth="off")), base_url=BASE + "/") as client:
        _survives_closed_connections(client, postgres_database)


def _survives_closed_connections(client: TestClient, database_url: str) -> None:
    pid = client.post("Patient", json={"resourceType": "Patient"}, headers=JSON).json()["id"]
    assert client.get(f"Patient/{pid}").status_code == 200
    with psycopg.connect(database_url, autocommit=True) as admin:
        ended = admin.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = 'ficus' AND pid <> pg_backend_pid()"
        ).fetchone()[0]
    assert ended >= 1
    for _ in range(6):  # more reads than connections were open: every dropped one is met
        assert client.get(f"Patient/{pid}").status_code == 200
        assert client.get(f"Patient/{pid}/_history/1").status_code == 200


def test_concurrent_writers_all_commit(client: TestClient) -> None:
    ids = create_update_read(client, 48, 16)
    assert len(set(ids)) == 48
    history = client.get("Observation/_history", params={"_count": "0"}).json()
    assert history["total"] == 96  # a create and an update each, none lost


class _Overlap(Policy):
    """Open, but each Bundle's check takes a while and records how many run at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = self.most = 0

    def authorize(self, caller: Caller, access: Access) -> None:
        if access.interaction != "batch":
            return
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.2)
        with self.lock:
            self.running -= 1


def test_bundles_beyond_bundle_concurrency_wait_their_turn(settings: Settings) -> None:
    bundle = {"resourceType": "Bundle", "type": "batch",
              "entry": [{"request": {"method": "GET", "url": "Patient?_count=1"}}]}
    for limit, at_least in ((1, 1), (3, 2)):
        policy = _Overlap()
        with TestClient(create_app(dataclasses.replace(settings, bundle_concurrency=limit), policy), base_url=BASE + "/") as client:
            with ThreadPoolExecutor(4) as pool:
                answers = list(pool.map(lambda _: client.post("", json=bundle, headers=JSON), range(4)))
        assert [a.status_code for a in answers] == [200] * 4
        assert at_least <= policy.most <= limit, (limit, policy.most)
