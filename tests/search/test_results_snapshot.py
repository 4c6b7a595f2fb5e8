"""Sorted searches page over a stored snapshot: entries whose sort value changes between page
fetches, or while another client writes, are neither skipped nor served twice; a snapshot cursor
works only for the search that made it, and only until it expires. Both databases."""

from __future__ import annotations

import base64
import random
import threading
import time

import msgspec
from starlette.testclient import TestClient

from ficus.store.database import open_database

JSON = {"Content-Type": "application/fhir+json"}
BASE = "http://testserver/fhir/"


def create(client: TestClient, resource: dict) -> dict:
    response = client.post(resource["resourceType"], json=resource, headers=JSON)
    assert response.status_code == 201, response.text
    return response.json()


def update(client: TestClient, resource: dict) -> dict:
    response = client.put(f"{resource['resourceType']}/{resource['id']}", json=resource, headers=JSON)
    assert response.status_code == 200, response.text
    return response.json()


def link(bundle: dict, relation: str) -> str | None:
    return next((x["url"].removeprefix(BASE) for x in bundle["link"] if x["relation"] == relation), None)


def get(client: TestClient, path: str, **params: str) -> dict:
    response = client.get(path, params=params) if params else client.get(path)  # keeps a link's query
    assert response.status_code == 200, response.text
    return response.json()


def ids(bundle: dict) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


def born(client: TestClient, year: int) -> dict:
    return create(client, {"resourceType": "Patient", "name": [{"family": "Snap"}], "birthDate": f"{year}-06-01"})


def test_sorted_pages_keep_their_entries_when_sort_values_change_between_pages(client: TestClient) -> None:
    made = [born(client, 1950 + i) for i in range(12)]
    for sort in ("birthdate", "-birthdate", "_lastUpdated"):
        page = get(client, "Patient", _sort=sort, _count="4", family="Snap")
        assert page["total"] == 12
        seen = ids(page)
        while (following := link(page, "next")) is not None:
            # an entry already served jumps to the end of the order and one not yet served to
            # its start: with a keyset cursor the first would come again and the second be skipped
            served = next(r for r in made if r["id"] == seen[0])
            waiting = next(r for r in made if r["id"] not in seen)
            served_year, waiting_year = (2090, 1900) if not sort.startswith("-") else (1900, 2090)
            for resource, year in ((served, served_year), (waiting, waiting_year)):
                update(client, {**resource, "birthDate": f"{year}-01-01"})
            page = get(client, following)
            assert page["total"] == 12  # the total of the snapshot, as the first page said
            seen += ids(page)
        assert len(seen) == len(set(seen)) == 12, (sort, len(seen))
        assert set(seen) == {r["id"] for r in made}


def test_previous_links_walk_the_same_snapshot_back(client: TestClient) -> None:
    made = [born(client, 1960 + i)["id"] for i in range(7)]
    pages = [get(client, "Patient", _sort="birthdate", _count="3")]
    while (following := link(pages[-1], "next")) is not None:
        pages.append(get(client, following))
    assert [ids(p) for p in pages] == [made[0:3], made[3:6], made[6:7]]
    client.delete(f"Patient/{made[4]}")  # deleted since: left out, the others keep their places
    back = get(client, link(pages[-1], "previous"))
    assert ids(back) == [made[2], made[3], made[5]]  # the page before the last, filled up
    assert ids(get(client, link(back, "previous"))) == made[0:2]


def test_paging_is_exact_while_another_client_writes_concurrently(client: TestClient, client_with) -> None:
    other = client_with()  # its own app and connection pool on the same database
    made = [born(client, 1940 + i) for i in range(30)]
    stop = threading.Event()
    failures: list[str] = []

    def write() -> None:
        rng = random.Random(7)
        current = {r["id"]: r for r in made}
        while not stop.is_set():
            chosen = current[rng.choice(sorted(current))]
            response = other.put(
                f"Patient/{chosen['id']}", json={**chosen, "birthDate": f"{rng.randint(1900, 2090)}-01-01"}, headers=JSON,
            )
            if response.status_code != 200:
                failures.append(response.text)
                return
            current[chosen["id"]] = response.json()
            created = other.post("Patient", json={"resourceType": "Patient", "name": [{"family": "Snap"}],
                                                   "birthDate": f"{rng.randint(1900, 2090)}-01-01"}, headers=JSON)
            if created.status_code != 201:
                failures.append(created.text)
                return

    writer = threading.Thread(target=write)
    writer.start()
    try:
        for sort in ("birthdate", "-birthdate"):
            page = get(client, "Patient", _sort=sort, _count="4", family="Snap")
            total = page["total"]
            seen = ids(page)
            while (following := link(page, "next")) is not None:
                page = get(client, following)
                seen += ids(page)
            assert len(seen) == len(set(seen)), "an entry was served twice"
            assert {r["id"] for r in made} <= set(seen), "an entry that existed all along was skipped"
            assert len(seen) == total
    finally:
        stop.set()
        writer.join()
    assert not failures, failures[0]


def test_a_snapshot_cursor_belongs_to_its_search_and_expires(client: TestClient, database_url: str) -> None:
    for i in range(5):
        born(client, 1970 + i)
    first = get(client, "Patient", _sort="birthdate", _count="2")
    following = link(first, "next")
    assert following is not None
    cursor = dict(pair.split("=", 1) for pair in following.split("?", 1)[1].split("&"))["_cursor"]
    # the same cursor on another search (other criteria, or another sort) is refused
    for params in ({"_sort": "birthdate", "birthdate": "gt1971"}, {"_sort": "-birthdate"}):
        response = client.get("Patient", params={**params, "_count": "2", "_cursor": cursor})
        assert response.status_code == 400, response.text
        assert response.json()["issue"][0]["expression"] == ["_cursor"]
    assert client.get(following).status_code == 200
    database = open_database(database_url)
    try:
        with database.session(write=True) as tx:
            tx.execute("UPDATE search_snapshot SET expires = ?", (0,))
    finally:
        database.close()
    expired = client.get(following)
    assert expired.status_code == 410, expired.text
    assert expired.json()["resourceType"] == "OperationOutcome"


def test_single_page_sorted_searches_store_nothing(client: TestClient, database_url: str) -> None:
    for i in range(3):
        born(client, 1980 + i)
    database = open_database(database_url)

    def live() -> int:  # other tests' expired snapshots may be purged meanwhile
        with database.session() as tx:
            return tx.execute("SELECT COUNT(*) FROM search_snapshot WHERE expires > ?", (int(time.time() * 1e6),)).fetchone()[0]

    try:
        before = live()
        assert "next" not in {x["relation"] for x in get(client, "Patient", _sort="birthdate")["link"]}
        assert live() == before
        following = link(get(client, "Patient", _sort="birthdate", _count="2"), "next")
        assert live() == before + 1
        snapshot = msgspec.json.decode(base64.urlsafe_b64decode(following.split("_cursor=")[1] + "=="))[3]
        with database.session() as tx:
            entries = tx.execute("SELECT COUNT(*) FROM search_snapshot_entry WHERE snapshot = ?", (snapshot,)).fetchone()[0]
        assert entries == 3
    finally:
        database.close()


def test_results_larger_than_a_snapshot_page_by_keyset_and_say_so(client: TestClient, monkeypatch) -> None:
    from ficus.search import snapshot

    made = [born(client, 1990 + i)["id"] for i in range(5)]
    monkeypatch.setattr(snapshot, "MAX_ENTRIES", 3)
    page = get(client, "Patient", _sort="birthdate", _count="2")
    outcome = [e["resource"] for e in page["entry"] if e["search"]["mode"] == "outcome"]
    assert outcome and "More than 3 matches" in outcome[0]["issue"][0]["diagnostics"]
    seen = ids(page)
    while (following := link(page, "next")) is not None:
        page = get(client, following)
        seen += ids(page)
    assert seen == made


def test_a_compartment_snapshot_leaves_out_entries_moved_out_of_the_compartment(client: TestClient) -> None:
    anna, ben = born(client, 1950)["id"], born(client, 1951)["id"]
    observations = [
        create(client, {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                        "subject": {"reference": f"Patient/{anna}"}, "effectiveDateTime": f"2020-01-0{i + 1}"})
        for i in range(4)
    ]
    page = get(client, f"Patient/{anna}/Observation", _sort="date", _count="2")
    assert ids(page) == [o["id"] for o in observations[:2]]
    update(client, {**observations[3], "subject": {"reference": f"Patient/{ben}"}})
    rest = get(client, link(page, "next"))
    assert ids(rest) == [observations[2]["id"]]  # the one now in Ben's compartment is not shown
