"""build_count: counting from the index tables alone agrees with counting over build_where."""

from __future__ import annotations

from starlette.testclient import TestClient

from ficus.search.query import build_count, build_where, parse_criteria
from ficus.spec import definitions
from ficus.store.database import open_database

from . import load

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
