"""`ficus serve --workers N` on one database: several processes on one database is how Ficus
scales out, so every worker must serve reads and writes and stop cleanly.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from conftest import free_port

pytestmark = pytest.mark.e2e

JSON = {"Content-Type": "application/fhir+json"}


class Served:
    """`ficus serve --workers N` on a free port, stopped with SIGINT like a terminal would."""

    def __init__(self, database_url: str, workers: int) -> None:
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}/fhir"
        env = {**os.environ, "FICUS_DATABASE_URL": database_url, "FICUS_BASE_URL": self.base_url, "FICUS_AUTH": "off"}
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ficus.cli", "serve", "--port", str(port), "--workers", str(workers)],
            env=env, stdout=subprocess.DEVNULL, stderr=self.log,
        )
        deadline = time.monotonic() + 60
        while self.workers_ready() < workers:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()  # it must not outlive the test
                raise RuntimeError(f"ficus serve did not start: {self.log_text()[-2000:]}")
            time.sleep(0.2)

    def workers_ready(self) -> int:
        return self.log_text().count("Application startup complete")

    def log_text(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self) -> int:
        self.process.send_signal(2)  # SIGINT
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


@pytest.fixture
def two_workers(database_url: str) -> Iterator[Served]:
    served = Served(database_url, 2)
    yield served
    if served.process.poll() is None:
        served.stop()


def create_update_read(http: httpx.Client, count: int, threads: int) -> list[str]:
    """`count` Observations created, updated and read back by `threads` concurrent clients."""

    def one(index: int) -> str:
        created = http.post("Observation", headers=JSON, json={
            "resourceType": "Observation", "status": "final", "code": {"text": f"reading {index}"},
        })
        assert created.status_code == 201, created.text
        res_id = created.json()["id"]
        updated = http.put(f"Observation/{res_id}", headers=JSON, json={**created.json(), "status": "amended"})
        assert updated.status_code == 200, updated.text
        read = http.get(f"Observation/{res_id}")
        assert read.status_code == 200 and read.json()["status"] == "amended", read.text
        return res_id

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, range(count)))


def test_two_workers_serve_one_database_and_stop_cleanly(two_workers: Served) -> None:
    assert two_workers.log_text().count("Started server process") == 2
    limits = httpx.Limits(max_connections=8, max_keepalive_connections=0)  # new connections spread over the workers
    with httpx.Client(base_url=two_workers.base_url + "/", timeout=60, limits=limits) as http:
        ids = create_update_read(http, 24, 8)
        assert len(set(ids)) == 24
        total = http.get("Observation", params={"_summary": "count"}).json()["total"]
        assert total == 24
        for res_id in ids[:5]:
            assert http.get(f"Observation/{res_id}/_history/2").json()["status"] == "amended"
    assert two_workers.stop() == 0
    logged = two_workers.log_text()
    assert "Traceback" not in logged, logged[-3000:]
