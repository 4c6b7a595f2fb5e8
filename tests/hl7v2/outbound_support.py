"""Fixtures for the outbound tests: fast retry settings, an emptied outbound queue, a test MLLP
consumer, and the Ficus app (whose lifespan runs the outbound worker) with a destination."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import hl7
import psycopg
import pytest
from starlette.testclient import TestClient

from ficus.app import create_app
from ficus.config import Settings
from ficus.hl7v2.outbound.store import OutboundStore
from ficus.store.database import open_database

from .outbound_consumer import Consumer

BASE = "http://testserver/fhir"
OUTBOUND_TABLES = "outbox_consumer, job_lease, hl7_destination, hl7_outbound"


def field(message: str, segment: str, number: int, occurrence: int = 0) -> str:
    """The text of field `number` of the `occurrence`-th `segment`, read with python-hl7."""
    parsed = hl7.parse(message)
    found = [s for s in parsed if str(s[0]) == segment][occurrence]
    return str(found[number]) if len(found) > number else ""


def segments(message: str, name: str) -> list[str]:
    return [str(s) for s in hl7.parse(message) if str(s[0]) == name]


@pytest.fixture
def fast_outbound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FICUS_JOBS_POLL_SECONDS", "0.05")
    monkeypatch.setenv("FICUS_JOBS_IDLE_SECONDS", "0.2")
    monkeypatch.setenv("FICUS_HL7_RETRY_SECONDS", "0.1")
    monkeypatch.setenv("FICUS_HL7_RETRY_MAX_SECONDS", "0.4")
    monkeypatch.setenv("FICUS_HL7_ACK_TIMEOUT", "5")


@pytest.fixture
def store(database_url: str) -> Iterator[OutboundStore]:
    if database_url.startswith("postgresql"):
        with psycopg.connect(database_url, autocommit=True) as connection:
            connection.execute(f"TRUNCATE {OUTBOUND_TABLES} RESTART IDENTITY")
    database = open_database(database_url)
    yield OutboundStore(database)
    database.close()


@pytest.fixture
def consumer() -> Iterator[Consumer]:
    running = Consumer().start()
    yield running
    running.shutdown()


@pytest.fixture
def fhir(database_url: str, store: OutboundStore, consumer: Consumer, fast_outbound: None) -> Iterator[TestClient]:
    """The Ficus app with one destination, `lis`, taking ADT and ORU at `consumer`."""
    store.add_destination("lis", "127.0.0.1", consumer.port, ("adt", "oru"), "FICUS", "HOSP", "LIS", "LAB")
    with TestClient(create_app(Settings(database_url=database_url, base_url=BASE)), base_url=BASE + "/") as client:
        yield client


def settle(consumer: Consumer, seconds: float = 0.6) -> list[str]:
    """What the consumer holds once nothing more arrived for `seconds` (to catch duplicates)."""
    count = -1
    while count != len(consumer.messages()):
        count = len(consumer.messages())
        time.sleep(seconds)
    return consumer.messages()


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)
