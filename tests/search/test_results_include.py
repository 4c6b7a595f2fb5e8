"""`_include`, `_revinclude` (with `:iterate`, `*` and target types), entry modes and the
number of SQL statements a page with includes costs, on both databases."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

JSON = {"Content-Type": "application/fhir+json"}


def create(client: TestClient, resource: dict) -> str:
    response = client.post(resource["resourceType"], json=resource, headers=JSON)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def search(client: TestClient, path: str, **params: str) -> dict:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def by_mode(bundle: dict) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for entry in bundle.get("entry", []):
        resource = entry["resource"]
        found.setdefault(entry["search"]["mode"], set()).add(f"{resource['resourceType']}/{resource.get('id')}")
    return found


@pytest.fixture
def world(client: TestClient) -> dict[str, str]:
    """Two patients with a shared organization and practitioner, observations and an encounter."""
    ids: dict[str, str] = {}
    ids["org"] = create(client, {"resourceType": "Organization", "name": "Clinic"})
    ids["parent"] = create(client, {"resourceType": "Organization", "name": "Holding"})
    client.put(f"Organization/{ids['org']}", json={"resourceType": "Organization", "id": ids["org"], "name": "Clinic",
                                                    "partOf": {"reference": f"Organization/{ids['parent']}"}}, headers=JSON)
    ids["doc"] = create(client, {"resourceType": "Practitioner", "name": [{"family": "House"}]})
    for name in ("anna", "bert"):
        ids[name] = create(client, {"resourceType": "Patient", "name": [{"family": name}],
                                    "managingOrganization": {"reference": f"Organization/{ids['org']}"},
                                    "generalPractitioner": [{"reference": f"Practitioner/{ids['doc']}"}]})
        ids[f"{name}-enc"] = create(client, {"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"},
                                             "subject": {"reference": f"Patient/{ids[name]}"}})
        for code in ("1", "2"):
            ids[f"{name}-obs{code}"] = create(client, {
                "resourceType": "Observation", "status": "final", "code": {"coding": [{"system": "s", "code": code}]},
                "subject": {"reference": f"Patient/{ids[name]}"},
                "encounter": {"reference": f"Encounter/{ids[f'{name}-enc']}"},
                "performer": [{"reference": f"Practitioner/{ids['doc']}"}],
            })
    ids["loner"] = create(client, {"resourceType": "Patient", "name": [{"family": "loner"}]})
    return ids


def test_include_marks_targets_include_and_lists_each_once(client: TestClient, world: dict[str, str]) -> None:
    bundle = search(client, "Observation", code="s|1", _include="Observation:subject")
    modes = by_mode(bundle)
    assert modes["match"] == {f"Observation/{world['anna-obs1']}", f"Observation/{world['bert-obs1']}"}
    assert modes["include"] == {f"Patient/{world['anna']}", f"Patient/{world['bert']}"}
    assert bundle["total"] == 2  # includes are not counted
    both = search(client, "Observation", _include="Observation:subject")
    assert len([e for e in both["entry"] if e["search"]["mode"] == "include"]) == 2


def test_include_with_target_type_and_wildcard(client: TestClient, world: dict[str, str]) -> None:
    only_practitioners = by_mode(search(client, "Observation", code="s|1", _include="Observation:performer:Practitioner"))
    assert only_practitioners["include"] == {f"Practitioner/{world['doc']}"}
    none = by_mode(search(client, "Observation", code="s|1", _include="Observation:performer:Organization"))
    assert "include" not in none
    everything = by_mode(search(client, "Observation", code="s|1", _include="Observation:*"))
    assert everything["include"] == {
        f"Patient/{world['anna']}", f"Patient/{world['bert']}", f"Practitioner/{world['doc']}",
        f"Encounter/{world['anna-enc']}", f"Encounter/{world['bert-enc']}",
    }
    star = by_mode(search(client, "Patient", name="anna", _include="*"))
    assert star["include"] == {f"Organization/{world['org']}", f"Practitioner/{world['doc']}"}


def test_revinclude_and_revinclude_wildcard(client: TestClient, world: dict[str, str]) -> None:
    bundle = by_mode(search(client, "Patient", name="anna", _revinclude="Observation:subject"))
    assert bundle["match"] == {f"Patient/{world['anna']}"}
    assert bundle["include"] == {f"Observation/{world['anna-obs1']}", f"Observation/{world['anna-obs2']}"}
    all_refs = by_mode(search(client, "Patient", name="anna", _revinclude="*"))
    assert all_refs["include"] == {
        f"Observation/{world['anna-obs1']}", f"Observation/{world['anna-obs2']}", f"Encounter/{world['anna-enc']}",
    }
    nobody = by_mode(search(client, "Patient", name="loner", _revinclude="Observation:subject"))
    assert "include" not in nobody


def test_iterate_follows_includes_of_included_resources(client: TestClient, world: dict[str, str]) -> None:
    plain = by_mode(search(client, "Observation", code="s|1", _include=["Observation:subject", "Patient:organization"]))
    assert plain["include"] == {f"Patient/{world['anna']}", f"Patient/{world['bert']}"}
    response = client.get("Observation", params=[
        ("code", "s|1"), ("_include", "Observation:subject"), ("_include:iterate", "Patient:organization"),
        ("_include:iterate", "Organization:partof"),
    ])
    iterated = by_mode(response.json())
    assert iterated["include"] == {
        f"Patient/{world['anna']}", f"Patient/{world['bert']}",
        f"Organization/{world['org']}", f"Organization/{world['parent']}",
    }
    # revinclude from an included resource: the encounters' other observations
    rev = client.get("Encounter", params=[
        ("_id", world["anna-enc"]), ("_revinclude", "Observation:encounter"), ("_include:iterate", "Observation:performer"),
    ]).json()
    assert by_mode(rev)["include"] == {
        f"Observation/{world['anna-obs1']}", f"Observation/{world['anna-obs2']}", f"Practitioner/{world['doc']}",
    }


def test_page_with_includes_costs_a_fixed_number_of_statements(
    client_with, world: dict[str, str]
) -> None:
    client = client_with(explain=True)

    def statements(params: list[tuple[str, str]]) -> list[str]:
        explained = client.get("Observation", params=[*params, ("_explain", "true")]).json()
        assert explained["resourceType"] == "Parameters"
        return [
            next(p["valueString"] for p in parameter["part"] if p["name"] == "purpose")
            for parameter in explained["parameter"] if parameter["name"] == "statement"
        ]

    includes = [("_include", "Observation:subject"), ("_include", "Observation:performer"),
                ("_include", "Observation:encounter"), ("_revinclude", "Provenance:target")]
    small = statements([("_count", "1"), *includes])
    large = statements([("_count", "3"), *includes])
    assert small == large == ["page", "include-0", "count"]
    # a first page holding every match knows its total without counting
    assert statements([("_count", "10"), *includes]) == ["page", "include-0"]
    iterate = statements([("_count", "4"), ("_include", "Observation:subject"), ("_include:iterate", "Patient:organization")])
    assert iterate == ["page", "include-0", "include-1", "include-2"]  # last level finds nothing new, total known


def test_include_errors(client: TestClient, world: dict[str, str]) -> None:
    for value in ("Observation", "Spaceship:subject", "Observation:code", "Observation:subject:Spaceship", "a:b:c:d"):
        response = client.get("Observation", params={"_include": value})
        assert response.status_code == 400, value
        assert response.json()["issue"][0]["expression"] == ["_include"]
    lenient = search(client, "Observation", _include="Observation:nonsense")
    assert lenient["entry"][-1]["search"]["mode"] == "outcome"
    strict = client.get("Observation", params={"_include": "Observation:nonsense"}, headers={"Prefer": "handling=strict"})
    assert strict.status_code == 400


class _CountingCursor:
    """Passes every statement to the real cursor and records it."""

    def __init__(self, cursor, seen: list[str]) -> None:
        self._cursor, self._seen = cursor, seen

    def execute(self, sql, params=()):
        self._seen.append(sql)
        self._cursor.execute(sql, params)
        return self

    def executemany(self, sql, rows):
        self._seen.append(sql)
        self._cursor.executemany(sql, rows)
        return self

    def fetchone(self):
        return self._cursor.fetchone()

    def fetchall(self):
        return self._cursor.fetchall()

    @property
    def raw(self):
        return self._cursor.raw


def test_statements_sent_to_the_database_do_not_grow_with_the_page_or_its_includes(
    world: dict[str, str], settings
) -> None:
    """Counted where they reach the database driver, for whole requests: no statement per
    match, per included resource or per page."""
    from contextlib import contextmanager

    from ficus.api.exchange import FhirRequest
    from ficus.api.interactions import Interactions
    from ficus.policy import Policy
    from ficus.spec import definitions
    from ficus.store.database import open_database
    from ficus.store.repository import Repository

    database = open_database(settings.database_url)
    seen: list[str] = []
    opened = database.session

    @contextmanager
    def counted(write: bool = False):
        with opened(write) as cursor:
            yield _CountingCursor(cursor, seen)

    database.session = counted  # type: ignore[method-assign]
    interactions = Interactions(settings, Repository(database, definitions(), settings.base_url), Policy())

    def statements(url: str) -> tuple[int, dict]:
        seen.clear()
        response = interactions.handle(FhirRequest.from_url("GET", url))
        assert response.status == 200, response.body
        return len(seen), response.body

    try:
        includes = "&_include=Observation:subject&_include=Observation:performer&_revinclude=Provenance:target"
        one, small = statements(f"Observation?_count=1{includes}")
        three, large = statements(f"Observation?_count=3{includes}")
        assert len(large["entry"]) > len(small["entry"]) > 1  # more matches and includes...
        assert one == three <= 3  # ...same statements: page, includes, count
        # a sorted search of several pages: its snapshot is written once, later pages read it
        first, sorted_page = statements(f"Observation?_sort=code&_count=1{includes}")
        following = next(x["url"] for x in sorted_page["link"] if x["relation"] == "next")
        later, _ = statements(following.removeprefix(settings.base_url + "/"))
        assert later <= 3  # snapshot check, page, includes; the total comes from the snapshot
        assert first <= 9, first  # page-size probe, then (PostgreSQL: settings,) purge (2), store, size, header, page, includes
        again, _ = statements(f"Observation?_sort=code&_count=2{includes}")
        assert again == first, (one, first, later)
    finally:
        database.close()
