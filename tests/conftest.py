"""Shared fixtures: every storage-backed test runs on SQLite and on PostgreSQL.

PostgreSQL is the server on 127.0.0.1:5432 (override with FICUS_TEST_POSTGRES_URL); each test
run makes its own database and drops it afterwards. A missing PostgreSQL fails the run.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import sys
import time
import uuid
import dataclasses
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import psycopg
import pytest
from starlette.testclient import TestClient

from ficus.app import create_app
from ficus.config import Settings
from ficus.store.database import open_database

POSTGRES_ADMIN_URL = os.environ.get("FICUS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BASE = "http://testserver/fhir"
FIXTURES = Path(__file__).parent / "fixtures"
STARTUP_SECONDS = 60  # generous: a loaded 2-core machine can take long to start a server process
TABLES = (
    "resource", "resource_version", "outbox", "idx_string", "idx_token", "idx_date",
    "idx_number", "idx_quantity", "idx_reference", "idx_uri", "hl7_message", "search_repeated_key",
)


def _postgres_url(database: str) -> str:
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + database


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run (per xdist worker)."""
    name = f"ficus_test_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True)
    except psycopg.OperationalError as error:
        pytest.fail(f"PostgreSQL is required for the storage tests and is not reachable: {error}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = _postgres_url(name)
    open_database(url).close()  # migrate once
    yield url
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty Ficus database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ficus.db'}"
    url = request.getfixturevalue("postgres_database")
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY")
    return url


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, base_url=BASE, auth="off")  # the open development mode, said explicitly


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The Ficus ASGI app in-process, base URL http://testserver/fhir."""
    with TestClient(create_app(settings), base_url=BASE + "/") as test_client:
        yield test_client


@pytest.fixture
def client_with(settings: Settings) -> Iterator[Callable[..., TestClient]]:
    """Make more in-process clients on the same database, with some settings changed."""
    with ExitStack() as stack:

        def make(**changes: object) -> TestClient:
            app = create_app(dataclasses.replace(settings, **changes))
            return stack.enter_context(TestClient(app, base_url=BASE + "/"))

        yield make


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """A real `ficus serve` process on a real socket."""

    def __init__(self, database_url: str, port: int | None = None, env: dict[str, str | None] | None = None) -> None:
        """`env` changes the environment of the process (None: unset the variable); by default
        it runs with `FICUS_AUTH=off`, the open development mode."""
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/fhir"
        changes = {"FICUS_DATABASE_URL": database_url, "FICUS_BASE_URL": self.base_url, "FICUS_AUTH": "off", **(env or {})}
        env = {**os.environ, **{k: v for k, v in changes.items() if v is not None}}
        for name in (k for k, v in changes.items() if v is None):
            env.pop(name, None)
        self.log = tempfile.TemporaryFile()  # a file, not a pipe: a full pipe would block the server
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ficus.cli", "serve", "--port", str(self.port)],
            env=env, stdout=subprocess.DEVNULL, stderr=self.log,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.kill()  # a server that did not come up must not outlive its test
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ficus serve exited: {self.log_text()[-2000:]}")
            try:
                if httpx.get(f"{self.base_url}/metadata", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"ficus serve did not start within {STARTUP_SECONDS} s")

    def log_text(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def server(database_url: str) -> Iterator[ServerProcess]:
    """A running server process on each database kind."""
    process = ServerProcess(database_url)
    yield process
    process.stop()
