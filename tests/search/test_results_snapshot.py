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


def all_pages(client: TestClient, first: dict, relation: str = "next") -> list[dict]:
    pages = [first]
    while (following := link(pages[-1], relation)) is not None:
        pages.append(get(client, following))
        assert len(pages) < 40
    return pages


def snapshot_of(following: str) -> int:
    cursor = dict(pair.split("=", 1) for pair in following.split("?", 1)[1].split("&"))["_cursor"]
    return msgspec.json.decode(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))[-1]


def header(database_url: str, snapshot: int) -> tuple[int, bool]:
    """(entries stored, complete) of a snapshot, checked against its entries' positions."""
    database = open_database(database_url)
    try:
        with database.session() as tx:
            total, complete = tx.execute("SELECT total, complete FROM search_snapshot WHERE id = ?", (snapshot,)).fetchone()
            positions = [row[0] for row in tx.execute(
                "SELECT position FROM search_snapshot_entry WHERE snapshot = ? ORDER BY position", (snapshot,)
            ).fetchall()]
            rids = tx.execute("SELECT COUNT(DISTINCT rid) FROM search_snapshot_entry WHERE snapshot = ?", (snapshot,)).fetchone()[0]
    finally:
        database.close()
    assert positions == list(range(1, total + 1)) and rids == total
    return total, bool(complete)


def test_pages_store_chunks_growing_twice_as_large_and_serve_every_match_once_in_order(
    client: TestClient, database_url: str, monkeypatch,
) -> None:
    from ficus.search import snapshot

    monkeypatch.setattr(snapshot, "FIRST_CHUNK", 4)
    made = [born(client, 1950 + i) for i in range(12)]
    by_update = [r["id"] for r in made]
    made[3] = update(client, {**made[3], "birthDate": "1950-06-01"})  # a tie with made[0]: rid breaks it
    by_birth = [made[i]["id"] for i in (0, 3, 1, 2, *range(4, 12))]
    by_update = [i for i in by_update if i != made[3]["id"]] + [made[3]["id"]]
    descending = [made[i]["id"] for i in (11, 10, 9, 8, 7, 6, 5, 4, 2, 1, 0, 3)]
    for sort, expected in (("birthdate", by_birth), ("-birthdate", descending), ("_lastUpdated", by_update)):
        pages = [get(client, "Patient", _sort=sort, _count="3", family="Snap")]
        stored = snapshot_of(link(pages[0], "next"))
        headers = [header(database_url, stored)]
        while (following := link(pages[-1], "next")) is not None:
            pages.append(get(client, following))
            headers.append(header(database_url, stored))
        assert [ids(p) for p in pages] == [expected[i:i + 3] for i in range(0, 12, 3)], sort
        # the first page stores 4 (3 and one to know more follow), the second a chunk of 8; the
        # last finds no more matches: the snapshot is complete, and its size is the total
        assert headers == [(4, False), (12, False), (12, False), (12, True)]
        assert [p["total"] for p in pages] == [12] * 4
        back = all_pages(client, pages[-1], "previous")
        assert [ids(p) for p in back] == [ids(p) for p in reversed(pages)], sort
        for offset in (2, 4, 5, 9, 11):
            assert ids(get(client, "Patient", _sort=sort, _count="3", family="Snap", _offset=str(offset))) == expected[offset:offset + 3]
    # a page larger than a chunk stores as many as it needs at once
    large = get(client, "Patient", _sort="birthdate", _count="9", family="Snap")
    assert ids(large) == by_birth[:9]
    assert header(database_url, snapshot_of(link(large, "next"))) == (12, False)  # chunks of 4 and 8


def test_writes_between_pages_keep_stored_entries_in_place_and_come_in_a_later_chunk(
    client: TestClient, database_url: str, monkeypatch,
) -> None:
    from ficus.search import snapshot

    monkeypatch.setattr(snapshot, "FIRST_CHUNK", 4)
    made = [born(client, 1950 + i) for i in range(10)]
    first = get(client, "Patient", _sort="birthdate", _count="2", family="Snap")
    assert ids(first) == [r["id"] for r in made[:2]]  # made[0..3] stored
    update(client, {**made[0], "birthDate": "2090-01-01"})  # served: does not come again
    update(client, {**made[3], "birthDate": "2091-01-01"})  # stored, not served yet: keeps its place
    update(client, {**made[8], "birthDate": "1900-01-01"})  # not stored: in the next chunk, as it sorts now
    assert client.delete(f"Patient/{made[2]['id']}").status_code in (200, 204)  # stored: left out
    assert client.delete(f"Patient/{made[7]['id']}").status_code in (200, 204)  # not stored: gone
    created = born(client, 1800)  # sorts before every stored entry: first in the next chunk
    second = get(client, link(first, "next"))  # stores the rest: 6 of a chunk of 8, complete
    assert ids(second) == [made[3]["id"], created["id"]]  # the order steps back at the chunk's start
    update(client, {**made[4], "birthDate": "2095-01-01"})  # stored in that chunk: keeps its place
    late = born(client, 1700)  # created after the snapshot is complete: not shown
    rest = all_pages(client, second)[1:]
    assert [i for p in rest for i in ids(p)] == [made[i]["id"] for i in (8, 4, 5, 6, 9)]
    assert late["id"] not in [i for p in rest for i in ids(p)]
    assert [second["total"], *(p["total"] for p in rest)] == [10] * 4  # the snapshot's size
    assert header(database_url, snapshot_of(link(first, "next"))) == (10, True)
    back = all_pages(client, rest[-1], "previous")  # across the chunk boundary, the same places
    assert [i for p in reversed(back) for i in ids(p)] == [made[i]["id"] for i in (0, 1, 3)] + [created["id"]] + [
        made[i]["id"] for i in (8, 4, 5, 6, 9)
    ]


def test_clients_paging_the_same_snapshot_at_once_store_each_chunk_once(
    client: TestClient, client_with, database_url: str, monkeypatch,
) -> None:
    from ficus.search import snapshot

    monkeypatch.setattr(snapshot, "FIRST_CHUNK", 2)
    made = {born(client, 1900 + i)["id"] for i in range(40)}
    first = get(client, "Patient", _sort="birthdate", _count="5", family="Snap")
    clients = [client_with() for _ in range(3)]  # each its own app and connection pool
    start = threading.Barrier(len(clients))
    walks: list[list[str]] = [[] for _ in clients]
    failures: list[str] = []

    def walk(index: int) -> None:
        following = link(first, "next")
        while following is not None:
            start.wait(timeout=60)  # every client asks for the same page at once
            response = clients[index].get(following)
            if response.status_code != 200:
                failures.append(response.text)
                start.abort()
                return
            walks[index] += ids(response.json())
            following = link(response.json(), "next")

    threads = [threading.Thread(target=walk, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures[0]
    whole = [ids(first) + seen for seen in walks]
    assert whole[0] == whole[1] == whole[2]
    assert len(whole[0]) == len(set(whole[0])) == 40 and set(whole[0]) == made
    assert header(database_url, snapshot_of(link(first, "next"))) == (40, True)  # each position once


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


def test_a_compartment_search_stores_no_chunk_of_what_moved_out_of_the_compartment(client: TestClient, monkeypatch) -> None:
    from ficus.search import snapshot

    monkeypatch.setattr(snapshot, "FIRST_CHUNK", 4)
    anna, ben = born(client, 1950)["id"], born(client, 1951)["id"]
    observations = [
        create(client, {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                        "subject": {"reference": f"Patient/{anna}"}, "effectiveDateTime": f"2020-01-0{i + 1}"})
        for i in range(6)
    ]
    create(client, {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                    "subject": {"reference": f"Patient/{ben}"}, "effectiveDateTime": "2020-01-03T12:00:00Z"})
    page = get(client, f"Patient/{anna}/Observation", _sort="date", _count="3")
    assert ids(page) == [o["id"] for o in observations[:3]]
    update(client, {**observations[3], "subject": {"reference": f"Patient/{ben}"}})  # stored: left out
    update(client, {**observations[4], "subject": {"reference": f"Patient/{ben}"}})  # not stored: not in the chunk
    rest = all_pages(client, page)[1:]
    assert [i for p in rest for i in ids(p)] == [observations[5]["id"]]
    assert [p["total"] for p in rest] == [5]  # the 4 stored first and the 1 of the last chunk
