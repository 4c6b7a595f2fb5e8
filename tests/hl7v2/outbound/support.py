"""Helpers for the outbound tests: reading fields with python-hl7, waiting for the consumer."""

from __future__ import annotations

import time
from collections.abc import Callable

import hl7
import psycopg
from starlette.testclient import TestClient

from .consumer import Consumer

BASE = "http://testserver/fhir"
OUTBOUND_TABLES = "outbox_consumer, job_lease, hl7_destination, hl7_outbound"


def field(message: str, segment: str, number: int, occurrence: int = 0) -> str:
    """The text of field `number` of the `occurrence`-th `segment`, read with python-hl7."""
    parsed = hl7.parse(message)
    found = [s for s in parsed if str(s[0]) == segment][occurrence]
    return str(found[number]) if len(found) > number else ""


def segments(message: str, name: str) -> list[str]:
    return [str(s) for s in hl7.parse(message) if str(s[0]) == name]


def reset_outbound(database_url: str) -> None:
    """Empty the outbound tables of the shared PostgreSQL test database (SQLite ones are per test)."""
    if database_url.startswith("postgresql"):
        with psycopg.connect(database_url, autocommit=True) as connection:
            connection.execute(f"TRUNCATE {OUTBOUND_TABLES} RESTART IDENTITY")


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


def create(client: TestClient, resource: dict) -> dict:
    """POST `resource` through the FHIR API; the stored resource."""
    response = client.post(resource["resourceType"], json=resource)
    assert response.status_code == 201, response.text
    return response.json()


def update(client: TestClient, resource: dict) -> dict:
    """PUT `resource` under its id through the FHIR API; the stored resource."""
    response = client.put(f"{resource['resourceType']}/{resource['id']}", json=resource)
    assert response.status_code == 200, response.text
    return response.json()
