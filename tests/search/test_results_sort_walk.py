"""Searches sorted on a date read their snapshot's chunks off the date index (`ficus.search.ordered`)
and put every match where sorting all of them would: resources with several dates by their
first (ascending) or last (descending), ties by creation, resources without a date last; and
where the walk gives up, the sort gives the same order. Both databases."""

from __future__ import annotations

import random

import pytest
from starlette.testclient import TestClient

from ficus.search import ordered
from tests.search.test_results_snapshot import JSON, all_pages, create, get, ids


def recorded(monkeypatch, name: str) -> list:
    """What each call of `ordered.<name>` returns, from now on."""
    returned: list = []
    real = getattr(ordered, name)

    def recording(*args, **kwargs):
        returned.append(real(*args, **kwargs))
        return returned[-1]

    monkeypatch.setattr(ordered, name, recording)
    return returned


@pytest.fixture
def walks(monkeypatch) -> list:
    """What each walk returned (a list of rids, or None when it gave up)."""
    return recorded(monkeypatch, "first_matches")


@pytest.fixture(params=["looked-up", "hashed"])
def walk_tests(request: pytest.FixtureRequest, monkeypatch) -> tuple[str, list]:
    """Walks on PostgreSQL made to test rows one way (costs that choose it), and the budgets
    every walk was given; SQLite always hashes."""
    if request.param == "looked-up":
        monkeypatch.setattr(ordered, "PROBE_COST", 0)
    else:
        monkeypatch.setattr(ordered, "PROBE_COST", 10**6)
        monkeypatch.setattr(ordered, "HASH_COST", 0)
    budgets: list = []
    real = ordered.first_matches

    def recording(*args, **kwargs):
        budgets.append(args[-1])
        return real(*args, **kwargs)

    monkeypatch.setattr(ordered, "first_matches", recording)
    return request.param, budgets


def observation(code: str, effective: dict) -> dict:
    return {"resourceType": "Observation", "status": "final", "code": {"coding": [{"system": "urn:walk", "code": code}]}, **effective}


def expected_order(made: list[tuple[str, list[str]]], descending: bool) -> list[str]:
    """Ids by their first day ascending or last day descending, then by creation; no days last."""
    dated = [(max(days) if descending else min(days), index, res_id) for index, (res_id, days) in enumerate(made) if days]
    dated.sort(key=lambda item: item[1])
    dated.sort(key=lambda item: item[0], reverse=descending)  # stable: creation order breaks ties
    return [res_id for _, _, res_id in dated] + [res_id for res_id, days in made if not days]


def test_walked_chunks_order_several_dates_ties_and_undated_matches_as_a_sort_would(
    client: TestClient, database_url: str, monkeypatch, walk_tests: tuple[str, list], walks: list,
) -> None:
    from ficus.search import snapshot

    monkeypatch.setattr(snapshot, "FIRST_CHUNK", 4)
    rng = random.Random(7)
    days = [f"2021-03-{d:02d}" for d in range(1, 9)]  # few days: many ties
    made: list[tuple[str, list[str]]] = []
    for index in range(30):
        shape = index % 5
        if shape == 0:
            chosen, effective = [], {}
        elif shape == 1:
            chosen = sorted(rng.sample(days, 3))
            effective = {"effectiveTiming": {"event": chosen}}
        elif shape == 2:
            chosen = sorted(rng.sample(days, 2))
            effective = {"effectivePeriod": {"start": chosen[0], "end": chosen[1]}}
        else:
            chosen = [rng.choice(days)]
            effective = {"effectiveDateTime": chosen[0]}
        made.append((create(client, observation("walk", effective))["id"], chosen))
    for _ in range(6):  # not matched: walked past
        create(client, observation("other", {"effectiveDateTime": rng.choice(days)}))
    for sort in ("date", "-date"):
        walks.clear()
        pages = all_pages(client, get(client, "Observation", code="urn:walk|walk", _sort=sort, _count="3"))
        served = [i for page in pages for i in ids(page)]
        assert served == expected_order(made, sort.startswith("-")), sort
        assert walks and all(found is not None for found in walks), sort  # every chunk walked
        assert {page["total"] for page in pages} == {30}
    mode, budgets = walk_tests
    assert {budget.hashed for budget in budgets} == {database_url.startswith("sqlite") or mode == "hashed"}


def test_a_walk_that_finds_too_few_matches_gives_up_and_the_sort_orders_them(
    client: TestClient, database_url: str, monkeypatch, walks: list,
) -> None:
    from ficus.search import snapshot

    monkeypatch.setattr(snapshot, "FIRST_CHUNK", 2)
    later = [observation("other", {"effectiveDateTime": f"2021-05-{i % 28 + 1:02d}"}) for i in range(200)]
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": resource, "request": {"method": "POST", "url": "Observation"}} for resource in later
    ]}
    assert client.post("", json=bundle, headers=JSON).status_code == 200
    made = [(create(client, observation("rare", {"effectiveDateTime": day}))["id"], [day]) for day in ("2021-04-02", "2021-04-09", "2021-04-01")]
    first = get(client, "Observation", code="urn:walk|rare", _sort="-date", _count="1")
    served = [i for page in all_pages(client, first) for i in ids(page)]
    assert served == expected_order(made, descending=True)
    # 3 matches, dated before 200 others: a walk of at most 16 rows per wanted match finds none
    # (on PostgreSQL the planner's estimates may foresee that: then it does not walk at all)
    assert all(found is None for found in walks)
    assert walks or database_url.startswith("postgresql")


def test_resources_with_many_dates_fill_the_walk_and_the_sort_takes_over(
    client: TestClient, database_url: str, monkeypatch, walks: list,
) -> None:
    from ficus.search import snapshot

    monkeypatch.setattr(snapshot, "FIRST_CHUNK", 4)
    made: list[tuple[str, list[str]]] = []
    for index in range(8):  # every match has 10 dates: the walk's rows repeat rids
        chosen = [f"2022-{month:02d}-{index + 1:02d}" for month in range(1, 11)]
        made.append((create(client, observation("many", {"effectiveTiming": {"event": chosen}}))["id"], chosen))
    for sort in ("date", "-date"):
        walks.clear()
        first = get(client, "Observation", code="urn:walk|many", _sort=sort, _count="3")
        served = [i for page in all_pages(client, first) for i in ids(page)]
        assert served == expected_order(made, sort.startswith("-")), sort
        # on SQLite a walk gave up; on PostgreSQL the planner's estimate of the index rows
        # sets the walk's budget, which may let it read further, or keep it from trying at all
        assert None in walks or database_url.startswith("postgresql"), sort


def test_the_budget_weighs_a_sort_against_the_two_walks() -> None:
    """With the index rows of tier L's Observation dates (350,000): a code on 13 % of them is
    walked looking rows up, one on 1.1 % hashing its matches first, one on 0.1 % sorted."""
    frequent = ordered.walk_budget(45_000, 350_000, 128, 0)
    assert frequent is not None and not frequent.hashed
    assert frequent.rows == 16 * 128  # twice the 996 rows expected is below 16 a match
    medium = ordered.walk_budget(3_958, 350_000, 128, 0)
    assert medium is not None and medium.hashed and medium.rows == 2 * 11_319  # 128 × 350,000 / 3,958, rounded up
    assert ordered.walk_budget(410, 350_000, 128, 0) is None
    assert ordered.walk_budget(0, 350_000, 128, 0) is None
    # a year sorted by date at L, walked from the top past the 35,000 rows of the year after it
    year = ordered.walk_budget(33_000, 33_000, 128, 0, before=35_000)
    assert year is not None and year.hashed and year.rows == 2 * (35_000 + 128)
    # an estimate of the index rows below the matches still leaves the walk its unestimated rows
    assert ordered.walk_budget(50, 10, 4, 8).rows == ordered.unestimated(4, 8).rows


def _batch(client: TestClient, resources: list[dict]) -> None:
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": resource, "request": {"method": "POST", "url": resource["resourceType"]}} for resource in resources
    ]}
    assert client.post("", json=bundle, headers=JSON).status_code == 200


# date criteria on the sorted parameter, and which of the test's days (one per resource) each matches
OWN_CRITERIA = {
    ("2021-06", "-date"): lambda day: day.startswith("2021-06"),
    ("2021-06", "date"): lambda day: day.startswith("2021-06"),
    ("ge2021-11-01", "-date"): lambda day: day >= "2021-11-01",
    ("le2021-02-28", "date"): lambda day: day <= "2021-02-28",
    ("eb2021-07", "-date"): lambda day: day < "2021-07-01",
    ("sa2021-05", "date"): lambda day: day >= "2021-06-01",
}


# criteria whose matches begin about a date, past the rows that reach across it, in the order
APPROACHED = {
    (("le2021-02-28",), "-date"): lambda day: day <= "2021-02-28",
    (("lt2021-03-01",), "-date"): lambda day: day < "2021-03-01",
    (("ge2021-11-01",), "date"): lambda day: day >= "2021-11-01",
    (("gt2021-10-31",), "date"): lambda day: day >= "2021-11-01",
    (("ge2021-05-01", "le2021-06-30"), "-date"): lambda day: "2021-05-01" <= day <= "2021-06-30",
    (("ge2021-05-01", "le2021-06-30"), "date"): lambda day: "2021-05-01" <= day <= "2021-06-30",
}


def test_a_criterion_on_the_sorted_date_starts_the_walk_where_its_matches_begin(
    client: TestClient, database_url: str, monkeypatch, walk_tests: tuple[str, list], walks: list,
) -> None:
    """A month sorted by date lies together in the order, after the later months (descending)
    or the earlier ones (ascending): the walk starts at the month's edge, or at the first rows
    where a `ge` (descending) or `le` (ascending) begins the order, and finds every chunk."""
    from ficus.search import snapshot

    monkeypatch.setattr(snapshot, "FIRST_CHUNK", 4)
    rng = random.Random(11)
    made: list[tuple[str, str]] = []
    for index in range(72):  # six a month
        day = f"2021-{index % 12 + 1:02d}-{rng.randint(1, 28):02d}"
        made.append((create(client, observation("own", {"effectiveDateTime": day}))["id"], day))
    # 300 more in the summer: a walk from either end of the order to the months past them reads them first
    _batch(client, [observation("other", {"effectiveDateTime": f"2021-{month:02d}-{i % 28 + 1:02d}"})
                    for month in (7, 8, 9) for i in range(100)])
    for (value, sort), matches in OWN_CRITERIA.items():
        wanted = [(res_id, [day]) for res_id, day in made if matches(day)]
        assert len(wanted) > 4, value  # more than a chunk
        walks.clear()
        first = get(client, "Observation", code="urn:walk|own", date=value, _sort=sort, _count="3")
        served = [i for page in all_pages(client, first) for i in ids(page)]
        assert served == expected_order(wanted, sort.startswith("-")), (value, sort)
        assert walks and all(found is not None for found in walks), (value, sort)
    if database_url.startswith("postgresql"):  # as autovacuum would: the budget reads the planner's estimates
        import psycopg

        with psycopg.connect(database_url, autocommit=True) as connection:
            connection.execute("ANALYZE idx_date")
    for (values, sort), matches in APPROACHED.items():
        wanted = [(res_id, [day]) for res_id, day in made if matches(day)]
        walks.clear()
        first = get(client, "Observation", code="urn:walk|own", date=list(values), _sort=sort, _count="3")
        served = [i for page in all_pages(client, first) for i in ids(page)]
        assert served == expected_order(wanted, sort.startswith("-")), (values, sort)
        # a walk that looks rows up reads the rows before the matches within its budget, which
        # counts them (PostgreSQL); one that hashes costs more than the sort of these few matches,
        # and SQLite, without estimates, gives up where those rows are many and sorts
        if database_url.startswith("postgresql") and walk_tests[0] == "looked-up":
            assert walks and all(found is not None for found in walks), (values, sort)


def test_a_resource_with_several_dates_keeps_the_walk_from_starting_at_the_criterion(
    client: TestClient, monkeypatch,
) -> None:
    """One Observation has a date in June and one in December: sorted by its last date it comes
    before every other June match, which a walk starting at the end of June would not see. The
    first resource stored with more than one date row marks the parameter, and from then on its
    own criteria do not bound the walk."""
    from ficus.search import snapshot

    monkeypatch.setattr(snapshot, "FIRST_CHUNK", 2)
    made = [(create(client, observation("own", {"effectiveDateTime": f"2021-06-{d:02d}"}))["id"], [f"2021-06-{d:02d}"])
            for d in range(1, 9)]
    events = ["2021-06-05", "2021-12-20"]
    made.append((create(client, observation("own", {"effectiveTiming": {"event": events}}))["id"], events))
    _batch(client, [observation("other", {"effectiveDateTime": f"2021-09-{i % 28 + 1:02d}"}) for i in range(100)])
    first = get(client, "Observation", date="2021-06", _sort="-date", _count="3")
    served = [i for page in all_pages(client, first) for i in ids(page)]
    assert served == expected_order(made, descending=True)
    assert served[0] == made[-1][0]


def test_a_search_in_the_transaction_that_first_stores_several_dates_sorts_by_them(client: TestClient, monkeypatch) -> None:
    """The transaction that first stores a resource with more than one date row marks the
    parameter as it commits; a search inside that transaction already sorts by its last date."""
    from ficus.search import snapshot

    monkeypatch.setattr(snapshot, "FIRST_CHUNK", 2)
    for day in range(1, 7):
        create(client, observation("own", {"effectiveDateTime": f"2021-06-{day:02d}"}))
    _batch(client, [observation("other", {"effectiveDateTime": f"2021-09-{i % 28 + 1:02d}"}) for i in range(100)])
    twice = observation("own", {"effectiveTiming": {"event": ["2021-06-03", "2021-12-20"]}})
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:6f9c1f0e-3f55-4d8e-9a43-4c2b1f3d8e11", "resource": twice, "request": {"method": "POST", "url": "Observation"}},
        {"request": {"method": "GET", "url": "Observation?date=2021-06&_sort=-date&_count=3"}},
    ]}
    response = client.post("", json=bundle, headers=JSON)
    assert response.status_code == 200, response.text
    created, searched = response.json()["entry"]
    assert ids(searched["resource"])[0] == created["response"]["location"].split("/")[1]


def test_dates_sorted_on_their_own_parameter_alone_read_the_rows_that_meet_them_in_order(client: TestClient, monkeypatch) -> None:
    """With criteria on the sorted date alone, and no resource with more than one date, the
    index rows that meet the criteria are the matches: read in the order of the sort, any
    prefix (`ne` too), several criteria together."""
    from ficus.search import snapshot

    monkeypatch.setattr(snapshot, "FIRST_CHUNK", 4)
    read = recorded(monkeypatch, "rows_meeting")
    rng = random.Random(5)
    days = [f"2021-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}" for _ in range(90)]
    made = [(create(client, observation("any", {"effectiveDateTime": day}))["id"], day) for day in days]
    queries = {
        (("ne2021-06",), "-date"): lambda day: not day.startswith("2021-06"),
        (("le2021-03-31",), "-date"): lambda day: day <= "2021-03-31",
        (("ge2021-10-01",), "date"): lambda day: day >= "2021-10-01",
        (("ge2021-04-01", "lt2021-07-01"), "-date"): lambda day: "2021-04-01" <= day < "2021-07-01",
        (("2021-08",), "date"): lambda day: day.startswith("2021-08"),
        (("2021-08", ""), "-date"): lambda day: day.startswith("2021-08"),  # an empty value is no criterion
    }
    for (values, sort), matches in queries.items():
        wanted = [(res_id, [day]) for res_id, day in made if matches(day)]
        read.clear()
        first = get(client, "Observation", date=list(values), _sort=sort, _count="3")
        served = [i for page in all_pages(client, first) for i in ids(page)]
        assert served == expected_order(wanted, sort.startswith("-")), (values, sort)
        assert read, (values, sort)
