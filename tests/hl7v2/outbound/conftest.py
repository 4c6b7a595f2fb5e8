"""Fixtures for the outbound tests: fast retry settings, an emptied outbound queue, a test MLLP
consumer, and the Ficus app (whose lifespan runs the outbound worker) with a destination."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from ficus.app import create_app
from ficus.config import Settings
from ficus.hl7v2.outbound.store import OutboundStore
from ficus.store.database import open_database

from .consumer import Consumer
from .support import BASE, reset_outbound


@pytest.fixture
def fast_outbound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FICUS_JOBS_POLL_SECONDS", "0.05")
    monkeypatch.setenv("FICUS_JOBS_IDLE_SECONDS", "0.2")
    monkeypatch.setenv("FICUS_HL7_RETRY_SECONDS", "0.1")
    monkeypatch.setenv("FICUS_HL7_RETRY_MAX_SECONDS", "0.4")
    monkeypatch.setenv("FICUS_HL7_ACK_TIMEOUT", "5")


@pytest.fixture
def store(database_url: str) -> Iterator[OutboundStore]:
    reset_outbound(database_url)
    database = open_database(database_url)
    yield OutboundStore(database)
    database.close()
    reset_outbound(database_url)  # no destination outlives its test to surprise a later one


@pytest.fixture
def consumer() -> Iterator[Consumer]:
    running = Consumer().start()
    yield running
    running.shutdown()


@pytest.fixture
def fhir(database_url: str, store: OutboundStore, consumer: Consumer, fast_outbound: None) -> Iterator[TestClient]:
    """The Ficus app with one destination, `lis`, taking ADT and ORU at `consumer`."""
    store.add_destination("lis", "127.0.0.1", consumer.port, ("adt", "oru"), "FICUS", "HOSP", "LIS", "LAB")
    with TestClient(create_app(Settings(database_url=database_url, base_url=BASE, auth="off")), base_url=BASE + "/") as client:
        yield client
