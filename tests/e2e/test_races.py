"""Concurrency across two `ficus serve` processes sharing one PostgreSQL database.

Conditional creates must not duplicate, If-Match updates must never lose or reuse a version,
and a transaction whose process dies mid-way must leave nothing behind.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest

from conftest import TABLES, ServerProcess

pytestmark = pytest.mark.e2e

JSON = {"Content-Type": "application/fhir+json"}
MRN = "http://example.org/mrn"


class Pair:
    """Two server processes on one PostgreSQL database, restarted if a test killed one."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.processes: list[ServerProcess | None] = [None, None]

    def ready(self) -> tuple[ServerProcess, ServerProcess]:
        dead = [i for i, p in enumerate(self.processes) if p is None or p.process.poll() is not None]
        with ThreadPoolExecutor(2) as pool:
            started = {i: pool.submit(ServerProcess, self.url) for i in dead}
            for i, future in started.items():
                self.processes[i] = future.result(timeout=60)
        first, second = self.processes
        assert first is not None and second is not None
        return first, second

    def log_sizes(self) -> list[int]:
        return [len(process.log_text()) if process else 0 for process in self.processes]

    def logged_since(self, sizes: list[int]) -> str:
        return "".join(process.log_text()[size:] for process, size in zip(self.processes, sizes) if process)

    def stop(self) -> None:
        for process in self.processes:
            if process is not None:
                process.stop()


@pytest.fixture(scope="module")
def pair(postgres_database: str) -> Iterator[Pair]:
    servers = Pair(postgres_database)
    yield servers
    servers.stop()


@pytest.fixture
def pg_url(postgres_database: str) -> str:
    with psycopg.connect(postgres_database, autocommit=True) as connection:
        connection.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY")
    return postgres_database


@pytest.fixture
def servers(pair: Pair, pg_url: str) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two server processes on the same, emptied PostgreSQL database; neither may log a traceback."""
    processes = pair.ready()
    sizes = pair.log_sizes()
    yield processes
    time.sleep(0.05)  # let the drain threads catch up
    logged = pair.logged_since(sizes)
    assert "Traceback" not in logged, logged[-3000:]


def _clients(servers: tuple[ServerProcess, ...]) -> list[httpx.Client]:
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    return [httpx.Client(base_url=s.base_url + "/", timeout=30, limits=limits) for s in servers]


def _version(response: httpx.Response) -> int:
    etag = response.headers["ETag"]
    assert etag.startswith('W/"') and etag.endswith('"'), etag
    return int(etag[3:-1])


# -- a. conditional create ---------------------------------------------------------------------


def test_concurrent_conditional_creates_make_exactly_one_resource(servers, pg_url: str) -> None:
    workers = 50
    identifier = f"{MRN}|race-1"
    clients = _clients(servers)
    start = threading.Barrier(workers, timeout=30)

    def create(index: int) -> httpx.Response:
        patient = {
            "resourceType": "Patient",
            "identifier": [{"system": MRN, "value": "race-1"}],
            "name": [{"family": f"Racer{index}"}],
        }
        start.wait()  # release all 50 requests at once
        return clients[index % 2].post(
            "Patient", json=patient, headers={**JSON, "If-None-Exist": f"identifier={identifier}"}
        )

    try:
        with ThreadPoolExecutor(workers) as pool:
            responses = list(pool.map(create, range(workers), timeout=60))
        statuses = Counter(r.status_code for r in responses)
        assert set(statuses) <= {200, 201}, [(r.status_code, r.text[:300]) for r in responses if r.status_code not in (200, 201)]
        assert statuses[201] == 1, statuses
        assert statuses[200] == workers - 1
        ids = {r.json()["id"] for r in responses}
        assert len(ids) == 1, ids
        (winner_id,) = ids
        assert all(r.json()["meta"]["versionId"] == "1" for r in responses)

        # both processes find exactly the one resource
        for client in clients:
            bundle = client.get("Patient", params={"identifier": identifier}).json()
            assert bundle["total"] == 1
            assert [e["resource"]["id"] for e in bundle["entry"]] == [winner_id]
    finally:
        for client in clients:
            client.close()

    with psycopg.connect(pg_url) as connection:
        heads = connection.execute("SELECT res_id FROM resource WHERE res_type = 'Patient'").fetchall()
        assert heads == [(winner_id,)]
        assert connection.execute("SELECT count(*) FROM resource_version").fetchone()[0] == 1
        indexed = connection.execute(
            "SELECT count(DISTINCT rid) FROM idx_token WHERE res_type = 'Patient' AND param = 'identifier' "
            "AND system = %s AND code = %s",
            (MRN, "race-1"),
        ).fetchone()[0]
        assert indexed == 1


# -- b. optimistic locking with If-Match -------------------------------------------------------


def test_concurrent_if_match_updates_never_share_a_version(servers, pg_url: str) -> None:
    workers, per_worker = 20, 5  # 100 successful updates in all
    clients = _clients(servers)
    first_round = threading.Barrier(workers, timeout=30)
    try:
        created = clients[0].post("Patient", json={"resourceType": "Patient", "active": True}, headers=JSON)
        assert created.status_code == 201
        patient_id = created.json()["id"]

        def update_loop(worker: int) -> tuple[list[tuple[int, str]], int, list[int]]:
            reader, writer = clients[worker % 2], clients[(worker // 2) % 2]
            successes: list[tuple[int, str]] = []
            conflicts, unexpected = 0, []
            attempts = 0
            while len(successes) < per_worker:
                attempts += 1
                assert attempts < 2000, f"worker {worker} starved"
                current = reader.get(f"Patient/{patient_id}")
                if current.status_code != 200:
                    unexpected.append(current.status_code)
                    continue
                seen = _version(current)
                marker = f"w{worker}-{len(successes)}"
                body = {"resourceType": "Patient", "id": patient_id, "active": True, "name": [{"family": marker}]}
                if attempts == 1:
                    first_round.wait()  # everyone holds version 1: exactly one can win this round
                response = writer.put(f"Patient/{patient_id}", json=body, headers={**JSON, "If-Match": f'W/"{seen}"'})
                if response.status_code == 200:
                    assert _version(response) == seen + 1
                    successes.append((_version(response), marker))
                elif response.status_code == 412:
                    conflicts += 1
                else:
                    unexpected.append(response.status_code)
                    assert len(unexpected) < 5, (response.status_code, response.text[:500])
            return successes, conflicts, unexpected

        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(update_loop, range(workers), timeout=90))

        successes = [s for worker_successes, _, _ in results for s in worker_successes]
        conflicts = sum(c for _, c, _ in results)
        unexpected = [status for _, _, statuses in results for status in statuses]
        assert unexpected == []
        versions = [v for v, _ in successes]
        assert len(versions) == workers * per_worker
        assert len(set(versions)) == len(versions), Counter(versions).most_common(3)
        assert set(versions) == set(range(2, 2 + len(versions)))
        assert conflicts >= workers - 1  # the synchronised first round

        final = clients[1].get(f"Patient/{patient_id}")
        assert final.status_code == 200
        assert final.json()["meta"]["versionId"] == str(1 + len(successes))
        by_version = dict(successes)
        assert final.json()["name"][0]["family"] == by_version[1 + len(successes)]
        # every version holds exactly what its writer sent
        for version in (2, 50, 1 + len(successes)):
            stored = clients[version % 2].get(f"Patient/{patient_id}/_history/{version}").json()
            assert stored["name"][0]["family"] == by_version[version]
    finally:
        for client in clients:
            client.close()

    with psycopg.connect(pg_url) as connection:
        rows = connection.execute(
            "SELECT version FROM resource_version WHERE res_id = %s ORDER BY version", (patient_id,)
        ).fetchall()
        assert [v for (v,) in rows] == list(range(1, 2 + len(successes)))
        head = connection.execute("SELECT version FROM resource WHERE res_id = %s", (patient_id,)).fetchone()
        assert head == (1 + len(successes),)
        # index rows belong to the current version only
        families = connection.execute(
            "SELECT count(*) FROM idx_string s JOIN resource r ON r.rid = s.rid "
            "WHERE r.res_id = %s AND s.param = 'family'", (patient_id,)
        ).fetchone()[0]
        assert families == 1


# -- c. a transaction whose process is killed --------------------------------------------------


def _big_transaction(system: str, patients: int) -> dict:
    entries = []
    for i in range(patients):
        patient_url = f"urn:uuid:{uuid.uuid4()}"
        entries.append({
            "fullUrl": patient_url,
            "resource": {
                "resourceType": "Patient",
                "identifier": [{"system": system, "value": f"p{i}"}],
                "name": [{"family": f"Family{i}", "given": ["Given"]}],
                "gender": "female",
                "birthDate": "1980-02-03",
            },
            "request": {"method": "POST", "url": "Patient"},
        })
        entries.append({
            "fullUrl": f"urn:uuid:{uuid.uuid4()}",
            "resource": {
                "resourceType": "Observation",
                "status": "final",
                "identifier": [{"system": system, "value": f"o{i}"}],
                "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                "subject": {"reference": patient_url},
                "valueQuantity": {"value": 60 + i % 40, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
            },
            "request": {"method": "POST", "url": "Observation"},
        })
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.005)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_killed_transaction_leaves_nothing_and_other_process_serves(servers, pg_url: str) -> None:
    victim, survivor = servers
    system = f"http://example.org/kill/{uuid.uuid4().hex}"
    with httpx.Client(base_url=survivor.base_url + "/", timeout=10) as http:
        existing = http.post("Patient", json={"resourceType": "Patient", "name": [{"family": "Before"}]}, headers=JSON)
        assert existing.status_code == 201
        existing_id = existing.json()["id"]
    body = httpx.Request("POST", "http://x", json=_big_transaction(system, 3000)).content

    monitor = psycopg.connect(pg_url, autocommit=True)
    outcome: dict[str, object] = {}

    def send() -> None:
        try:
            outcome["response"] = httpx.post(victim.base_url, content=body, headers=JSON, timeout=60)
        except httpx.HTTPError as error:  # the server dies under the request
            outcome["error"] = error

    def relation_bytes() -> int:
        return monitor.execute("SELECT pg_relation_size('resource_version')").fetchone()[0]

    def writing_backend() -> int | None:
        # A ficus backend of this database inside a transaction that has already written (backend_xid
        # is assigned on the first write) while a good part of the rows are on disk, uncommitted.
        row = monitor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'ficus' "
            "AND xact_start IS NOT NULL AND state IN ('active', 'idle in transaction') "
            "AND backend_xid IS NOT NULL"
        ).fetchone()
        if row and relation_bytes() >= size_before + 512 * 1024:
            return row[0]
        return None

    try:
        size_before = relation_bytes()
        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        backend_pid = _wait_for(writing_backend, 30, "the big transaction to be writing")
        assert "response" not in outcome  # still running: the kill lands mid-transaction
        victim.kill()  # SIGKILL: no rollback from the client side, the socket just closes
        sender.join(timeout=30)
        assert not sender.is_alive()
        assert "response" not in outcome, outcome  # the transaction never got to answer
        assert isinstance(outcome.get("error"), httpx.HTTPError)

        # PostgreSQL notices the dead client and aborts its transaction
        _wait_for(
            lambda: monitor.execute("SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = %s", (backend_pid,)).fetchone()[0],
            30, "the killed server's backend to end",
        )

        counted = monitor.execute(
            "SELECT count(*) FROM idx_token WHERE param = 'identifier' AND system = %s", (system,)
        ).fetchone()[0]
        assert counted == 0
        assert monitor.execute("SELECT count(*) FROM resource").fetchone()[0] == 1
        assert monitor.execute("SELECT count(*) FROM resource_version").fetchone()[0] == 1
        assert monitor.execute("SELECT count(*) FROM outbox").fetchone()[0] == 1
    finally:
        monitor.close()

    # the surviving process still reads, searches and writes (no lock was left behind)
    with httpx.Client(base_url=survivor.base_url + "/", timeout=10) as http:
        read = http.get(f"Patient/{existing_id}")
        assert read.status_code == 200
        assert read.json()["name"] == [{"family": "Before"}]
        for res_type in ("Patient", "Observation"):
            assert http.get(res_type, params={"identifier": f"{system}|"}).json()["total"] == 0
        assert http.get("_history").json()["total"] == 1
        small = _big_transaction(system, 2)
        done = http.post("", json=small, headers=JSON)
        assert done.status_code == 200, done.text
        assert http.get("Patient", params={"identifier": f"{system}|"}).json()["total"] == 2
