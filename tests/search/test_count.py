"""Totals: counting from the index tables alone agrees with counting over build_where, and
large totals are estimated from statistics that know a code belongs to one parameter."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from starlette.testclient import TestClient

from ficus.app import create_app
from ficus.config import Settings
from ficus.search import execute
from ficus.search.query import build_count, build_where, parse_criteria
from ficus.spec import definitions
from ficus.store.database import open_database

from tests.conftest import BASE, TABLES
from . import JSON, load

LOINC = "http://loinc.org"


CASES = [
    ([("code", "2345-7")], 3),
    ([("code", "2345-7"), ("status", "final")], 2),
    ([("code", "2345-7,1111-1")], 3),
    ([("subject:Patient.name", "smith")], 4),
    ([("code:not", "2345-7")], 1),
    ([("_id", "o1,o2")], 2),
    ([("code", "2345-7"), ("_lastUpdated", "gt2000")], 3),
    ([("value-quantity:missing", "false")], 0),
    ([], 4),
]


def test_counts_agree(client: TestClient, database_url: str) -> None:
    """Each coding appears under two systems, so index rows repeat per resource; `gone` is deleted."""
    def obs(id_: str, *codes: str, status: str = "final") -> dict:
        return {"resourceType": "Observation", "id": id_, "status": status, "subject": {"reference": "Patient/smith"},
                "code": {"coding": [{"system": s, "code": c} for c in codes for s in (LOINC, "urn:other")]}}

    load(client, {"resourceType": "Patient", "id": "smith", "name": [{"family": "Smith"}]},
         obs("o1", "2345-7"), obs("o2", "2345-7", "1111-1"), obs("o3", "2345-7", status="amended"),
         obs("o4", "9999-9"), obs("gone", "2345-7"))
    assert client.delete("Observation/gone").status_code in (200, 204)
    database = open_database(database_url)
    try:
        for query, expected in CASES:
            criteria = parse_criteria(query)
            where, params = build_where(definitions(), "Observation", criteria)
            count_sql, count_params = build_count(definitions(), "Observation", criteria)
            with database.session() as tx:
                joined = tx.execute(f"SELECT COUNT(*) FROM resource r WHERE {where}", params).fetchone()[0]
                counted = tx.execute(count_sql, count_params).fetchone()[0]
            assert (joined, counted) == (expected, expected), query
    finally:
        database.close()


@contextmanager
def analyzed(url: str, resources: list[dict]) -> Iterator[TestClient]:
    """A client on an emptied PostgreSQL database holding `resources`, with fresh statistics."""
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY")
    settings = Settings(database_url=url, base_url=BASE, auth="off", explain=True)
    with TestClient(create_app(settings), base_url=BASE + "/") as client:
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": r, "request": {"method": "POST", "url": r["resourceType"]}} for r in resources]}
        assert client.post("", json=bundle, headers=JSON).status_code == 200
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute("ANALYZE")
        yield client


def test_large_totals_are_estimated_from_the_column_statistics(postgres_database: str, monkeypatch) -> None:
    """By default a total above `ESTIMATE_EXACT_BELOW` is PostgreSQL's estimate; the extended
    statistics on (pkey, code) keep it close, where independent columns would put the 240
    matches of code A near 240 × (share of rows that are Observation.code) ≈ 60."""
    monkeypatch.setattr(execute, "ESTIMATE_EXACT_BELOW", 20)
    codes = ["A"] * 240 + ["B"] * 60 + ["C"] * 10

    def obs(i: int, code: str) -> dict:
        return {"resourceType": "Observation", "status": "final",
                "category": [{"coding": [{"system": "urn:cat", "code": "lab"}]}],
                "code": {"coding": [{"system": LOINC, "code": code}]},
                "interpretation": [{"coding": [{"system": "urn:int", "code": "N"}]}],
                "identifier": [{"system": "urn:obs", "value": str(i)}]}

    with analyzed(postgres_database, [obs(i, code) for i, code in enumerate(codes)]) as client:
        def total(code: str, **params: str) -> int:
            return client.get("Observation", params={"code": f"{LOINC}|{code}", "_count": "5", **params}).json()["total"]

        assert 200 <= total("A") <= 280
        assert total("A", _total="accurate") == 240
        assert total("C") == 10  # below the threshold: counted
        explained = client.get("Observation", params={"code": f"{LOINC}|A", "_count": "5", "_explain": "true"}).json()
        purposes = [part["valueString"] for p in explained["parameter"] if p["name"] == "statement"
                    for part in p["part"] if part["name"] == "purpose"]
        assert "estimate" in purposes


def test_an_estimate_below_the_matches_already_counted_is_not_given(postgres_database: str, monkeypatch) -> None:
    """The date histogram is not per parameter: with a century of birth dates beside them, the
    planner puts one month's 60 Observations near 10, below the 20 counted before asking it."""
    monkeypatch.setattr(execute, "ESTIMATE_EXACT_BELOW", 20)
    patients = [{"resourceType": "Patient", "birthDate": f"{1900 + i // 3}-{1 + i % 12:02d}-15"} for i in range(300)]
    observations = [{"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                     "effectiveDateTime": f"2016-03-{1 + i % 28:02d}T10:00:00Z"} for i in range(60)]
    with analyzed(postgres_database, patients + observations) as client:
        assert client.get("Observation", params={"date": "2016-03", "_count": "5"}).json()["total"] == 60
