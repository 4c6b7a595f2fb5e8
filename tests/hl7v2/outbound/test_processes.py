"""Real processes: `ficus serve` delivers to its destinations, and two `ficus hl7 deliver`
processes on one PostgreSQL deliver every message exactly once, each patient's in order."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from conftest import ServerProcess
from ficus.hl7v2.outbound.store import OutboundStore
from ficus.spec import definitions
from ficus.store.database import open_database
from ficus.store.repository import Repository

from .consumer import Consumer, control_id
from .support import OUTBOUND_TABLES, field, reset_outbound, settle

pytestmark = pytest.mark.e2e


@pytest.fixture
def pg_url(postgres_database: str) -> str:
    with psycopg.connect(postgres_database, autocommit=True) as connection:
        connection.execute(f"TRUNCATE outbox, resource, resource_version, {OUTBOUND_TABLES} RESTART IDENTITY")
    return postgres_database


@pytest.fixture
def delivering(pg_url: str) -> Iterator[list[subprocess.Popen]]:
    env = {**os.environ, "FICUS_DATABASE_URL": pg_url, "FICUS_JOBS_POLL_SECONDS": "0.05", "FICUS_JOBS_IDLE_SECONDS": "0.1",
           "FICUS_JOBS_LEASE_SECONDS": "1", "FICUS_HL7_RETRY_SECONDS": "0.1", "FICUS_HL7_RETRY_MAX_SECONDS": "0.5"}
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: a full pipe would block them
        processes = [subprocess.Popen([sys.executable, "-m", "ficus.cli", "hl7", "deliver"], env=env,
                                      stdout=subprocess.DEVNULL, stderr=log) for _ in range(2)]
        yield processes
        for process in processes:
            if process.poll() is None:
                process.terminate()
                process.wait(10)
    reset_outbound(pg_url)


def test_two_processes_deliver_each_message_exactly_once_in_order(pg_url: str, delivering: list) -> None:
    database = open_database(pg_url)
    consumer = Consumer().start()
    try:
        OutboundStore(database).add_destination("lis", "127.0.0.1", consumer.port, ("adt",), "FICUS", "H", "LIS", "L")
        write_versions(database, 4, 10)
        consumer.wait_for(40, timeout=60)
        received = settle(consumer, 1.0)
    finally:
        consumer.shutdown()
        database.close()
    assert len(received) == 40
    assert len({control_id(m) for m in received}) == 40
    for patient in range(4):
        mine = [m for m in received if field(m, "PID", 3).startswith(f"p{patient}^")]
        assert [field(m, "PID", 5) for m in mine] == [f"v{n}" for n in range(10)]
        assert [field(m, "MSH", 9).split("^")[1] for m in mine] == ["A04"] + ["A08"] * 9


def write_versions(database, patients: int, versions: int) -> None:
    """`versions` updates of each of `patients` Patients, the patients written side by side."""
    repository = Repository(database, definitions())

    def write(patient: int) -> None:
        for version in range(versions):
            with repository.transaction() as writer:
                writer.update("Patient", f"p{patient}", {
                    "resourceType": "Patient", "identifier": [{"system": "urn:ficus:hl7v2:H", "value": f"p{patient}"}],
                    "name": [{"family": f"v{version}"}]})

    writers = [threading.Thread(target=write, args=(n,)) for n in range(patients)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()


def test_when_the_delivering_process_dies_the_other_takes_over_and_nothing_is_lost(pg_url: str, delivering: list) -> None:
    database = open_database(pg_url)

    def slowly(message: str) -> str:
        time.sleep(0.02)
        return "AA"

    consumer = Consumer(answer=slowly).start()
    try:
        OutboundStore(database).add_destination("lis", "127.0.0.1", consumer.port, ("adt",), "FICUS", "H", "LIS", "L")
        write_versions(database, 3, 15)
        consumer.wait_for(8)
        with database.session() as tx:
            owner = tx.execute("SELECT owner FROM job_lease WHERE name = 'hl7v2-outbound:lis'").fetchone()[0]
        holder = next(p for p in delivering if f":{p.pid}:" in owner)
        os.kill(holder.pid, signal.SIGKILL)  # dies mid-stream, its lease left to expire
        holder.wait(10)
        consumer.wait_for(45, timeout=60)
        received = settle(consumer, 1.5)
    finally:
        consumer.shutdown()
        database.close()
    ids = [control_id(m) for m in received]
    assert len(set(ids)) == 45  # every message arrived
    assert len(ids) - 45 <= 2  # at most the one in flight (and the one being recorded) came twice
    for patient in range(3):
        firsts = list(dict.fromkeys(field(m, "PID", 5) for m in received if field(m, "PID", 3).startswith(f"p{patient}^")))
        assert firsts == [f"v{n}" for n in range(15)]


def test_ficus_serve_delivers_to_the_configured_destinations(database_url: str, store: OutboundStore,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FICUS_JOBS_POLL_SECONDS", "0.05")
    consumer = Consumer().start()
    store.add_destination("lis", "127.0.0.1", consumer.port, ("adt", "oru"), "FICUS", "HOSP", "LIS", "LAB")
    server = ServerProcess(database_url)
    try:
        response = httpx.post(f"{server.base_url}/Patient", json={
            "resourceType": "Patient", "identifier": [{"system": "urn:ficus:hl7v2:HOSP", "value": "9001"}],
            "name": [{"family": "Served"}], "birthDate": "1990-05-06"})
        assert response.status_code == 201
        message = consumer.wait_for(1)[0]
        assert field(message, "MSH", 9) == "ADT^A04^ADT_A01"
        assert field(message, "PID", 3).startswith("9001^^^HOSP")
        assert field(message, "PID", 7) == "19900506"
    finally:
        server.stop()
        consumer.shutdown()
