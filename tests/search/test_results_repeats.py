"""A criterion can match a resource by several of its index rows (every event of a Timing, every
coding of a code). Pages, totals and the page-size probe of one criterion read index rows as
they come and keep each resource once; where rows repeat more than their window allows, they
count distinct resources instead. Every match appears once, in rid order, and the totals are
exact. Both databases."""

from __future__ import annotations

import random

from starlette.testclient import TestClient

from ficus.search import execute
from tests.search.test_results_snapshot import all_pages, create, get, ids


def timed(events: list[str]) -> dict:
    return {"resourceType": "Observation", "status": "final", "code": {"text": "repeats"},
            "effectiveTiming": {"event": events}}


def test_pages_of_one_criterion_keep_each_resource_once_however_often_its_rows_repeat(client: TestClient) -> None:
    rng = random.Random(11)
    days = [f"2016-03-{d:02d}T08:00:00Z" for d in range(1, 29)]
    made = []
    for index in range(24):
        # from 1 to 12 events in March, and one in April that the criterion does not match
        events = rng.sample(days, 1 + index % 12) + ["2016-04-02T08:00:00Z"]
        made.append(create(client, timed(events))["id"])
    for count in ("2", "5", "24"):
        pages = all_pages(client, get(client, "Observation", date="2016-03", _count=count))
        assert [res_id for page in pages for res_id in ids(page)] == made, count  # creation order: rid order
        assert all(len(ids(page)) == int(count) for page in pages[:-1])
        assert pages[0]["total"] == 24
        back = all_pages(client, pages[-1], "previous")
        assert [res_id for page in reversed(back) for res_id in ids(page)] == made, count
    assert ids(get(client, "Observation", date="2016-04", _count="30")) == made


def test_a_window_of_repeated_rows_falls_back_to_distinct_resources(client_with, monkeypatch) -> None:
    """Ten resources of twelve rows each, each on a day of its own: a window of rows twice the
    page, or of the 20 rows the estimated total counts exactly, holds only one or two of them
    (in rid order and in date order alike)."""
    monkeypatch.setattr(execute, "ESTIMATE_EXACT_BELOW", 20)
    client = client_with(explain=True)
    made = [create(client, timed([f"2016-05-{day:02d}T{hour:02d}:00:00Z" for hour in range(12)]))["id"]
            for day in range(1, 11)]

    first = get(client, "Observation", date="2016-05", _count="3", _total="estimate")
    assert ids(first) == made[:3]
    assert first["total"] == 10
    assert [res_id for page in all_pages(client, first) for res_id in ids(page)] == made
    explained = get(client, "Observation", date="2016-05", _count="3", _total="estimate", _explain="true")
    purposes = [part["valueString"] for p in explained["parameter"] if p["name"] == "statement"
                for part in p["part"] if part["name"] == "purpose"]
    assert purposes.count("page") == 2  # the rows of the first two resources filled the window
    # sorted, the probe for more than one page sees the 10 resources behind 120 rows
    sorted_pages = all_pages(client, get(client, "Observation", date="2016-05", _sort="-date", _count="4"))
    assert sorted(res_id for page in sorted_pages for res_id in ids(page)) == sorted(made)
    assert len(sorted_pages) == 3


def test_the_window_of_one_criterion_is_exact_for_a_token_under_two_systems(client: TestClient) -> None:
    codes = {"resourceType": "Observation", "status": "final", "code": {"coding": [
        {"system": "urn:a", "code": "twice"}, {"system": "urn:b", "code": "twice"}]}}
    made = [create(client, dict(codes))["id"] for _ in range(7)]
    first = get(client, "Observation", code="twice", _count="3")
    assert first["total"] == 7
    assert [res_id for page in all_pages(client, first) for res_id in ids(page)] == made
