"""`_sort`, `_count` and paging links, on both databases, including writes between pages."""

from __future__ import annotations

import base64

from starlette.testclient import TestClient

JSON = {"Content-Type": "application/fhir+json"}
BASE = "http://testserver/fhir/"


def create(client: TestClient, resource: dict) -> dict:
    response = client.post(resource["resourceType"], json=resource, headers=JSON)
    assert response.status_code == 201, response.text
    return response.json()


def patient(family: str | None = None, birth: str | None = None, **fields: object) -> dict:
    resource: dict = {"resourceType": "Patient", **fields}
    if family is not None:
        resource["name"] = [{"family": family}]
    if birth is not None:
        resource["birthDate"] = birth
    return resource


def search(client: TestClient, path: str = "Patient", **params: str) -> dict:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def follow(client: TestClient, bundle: dict, relation: str) -> dict | None:
    for link in bundle["link"]:
        if link["relation"] == relation:
            response = client.get(link["url"].removeprefix(BASE))
            assert response.status_code == 200, response.text
            return response.json()
    return None


def families(bundle: dict) -> list[str | None]:
    return [
        (e["resource"].get("name") or [{}])[0].get("family")
        for e in bundle.get("entry", []) if e["search"]["mode"] == "match"
    ]


def ids(bundle: dict) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


def all_pages(client: TestClient, first: dict) -> list[dict]:
    pages = [first]
    while (following := follow(client, pages[-1], "next")) is not None:
        pages.append(following)
        assert len(pages) < 50
    return pages


def test_sort_by_string_ascending_descending_accent_and_case_insensitive(client: TestClient) -> None:
    for family in ("Émile", "adams", "Baker", "zorro", "Young"):
        create(client, patient(family))
    create(client, patient())  # no name: last both ways
    assert families(search(client, _sort="family")) == ["adams", "Baker", "Émile", "Young", "zorro", None]
    assert families(search(client, _sort="-family")) == ["zorro", "Young", "Émile", "Baker", "adams", None]


def test_sort_uses_lowest_value_ascending_and_highest_descending(client: TestClient) -> None:
    both = create(client, {"resourceType": "Patient", "name": [{"family": "Moss"}, {"family": "Abel"}, {"family": "Zuma"}]})
    middle = create(client, patient("Kent"))
    assert ids(search(client, _sort="family")) == [both["id"], middle["id"]]
    assert ids(search(client, _sort="-family")) == [both["id"], middle["id"]]


def test_sort_by_date_number_token_and_several_keys(client: TestClient) -> None:
    a = create(client, patient("Same", "1990-05-01", gender="male"))
    b = create(client, patient("Same", "1980", gender="female"))
    c = create(client, patient("Other", "1985-01-01", gender="male"))
    d = create(client, patient("Other", gender="other"))
    assert ids(search(client, _sort="birthdate")) == [b["id"], c["id"], a["id"], d["id"]]
    # descending orders by the end of each value's range (1980 ends on 1980-12-31)
    assert ids(search(client, _sort="-birthdate")) == [a["id"], c["id"], b["id"], d["id"]]
    assert ids(search(client, _sort="family,-birthdate")) == [c["id"], d["id"], a["id"], b["id"]]
    assert ids(search(client, _sort="-gender,_id")) == [d["id"], *sorted([a["id"], c["id"]]), b["id"]]
    for value in (3, 1.5, 2):
        create(client, {"resourceType": "RiskAssessment", "status": "final", "subject": {"reference": f"Patient/{a['id']}"},
                        "prediction": [{"probabilityDecimal": value}]})
    # RiskAssessment.probability is a number parameter
    probabilities = [e["resource"]["prediction"][0]["probabilityDecimal"]
                     for e in search(client, "RiskAssessment", _sort="-probability")["entry"]]
    assert probabilities == [3, 2, 1.5]


def test_sort_by_id_and_last_updated(client: TestClient) -> None:
    made = [create(client, patient("P"))["id"] for _ in range(4)]
    assert ids(search(client, _sort="_id")) == sorted(made)
    assert ids(search(client, _sort="-_id")) == sorted(made, reverse=True)
    assert ids(search(client, _sort="_lastUpdated")) == made
    assert ids(search(client, _sort="-_lastUpdated")) == made[::-1]


def test_count_limits_the_page_and_links_walk_every_entry_once(client: TestClient) -> None:
    names = [f"N{i:02d}" for i in range(11)]
    for name in reversed(names):
        create(client, patient(name))
    first = search(client, _sort="family", _count="4")
    assert first["total"] == 11
    relations = [link["relation"] for link in first["link"]]
    assert relations == ["self", "first", "next"]
    pages = all_pages(client, first)
    assert [len(p["entry"]) for p in pages] == [4, 4, 3]
    assert [f for p in pages for f in families(p)] == names
    # and back again with previous links
    back = [pages[-1]]
    while (earlier := follow(client, back[-1], "previous")) is not None:
        back.append(earlier)
    assert [families(p) for p in back[::-1]] == [families(p) for p in pages]
    first_again = follow(client, pages[-1], "first")
    assert families(first_again) == names[:4]


def test_count_zero_gives_only_the_total_and_count_is_capped(client: TestClient) -> None:
    for _ in range(3):
        create(client, patient("C"))
    bundle = search(client, _count="0")
    assert bundle["total"] == 3 and "entry" not in bundle
    assert len(search(client, _count="100000")["entry"]) == 3


def test_pages_neither_skip_nor_repeat_while_others_insert_update_and_delete(client: TestClient) -> None:
    made = [create(client, patient(f"F{i:02d}")) for i in range(10)]
    for params in ({}, {"_sort": "family"}, {"_sort": "-family"}):
        page = search(client, _count="3", **params)
        seen = ids(page)
        step = 0
        while (following := follow(client, page, "next")) is not None:
            step += 1
            # other clients write between page fetches: new resources sorting first and last,
            # an update of an already served resource, and an update of one not yet served
            create(client, patient(f"A{step}-{len(params)}"))
            create(client, patient(f"Z{step}-{len(params)}"))
            served = next((p for p in made if p["id"] in seen), None)
            waiting = next((p for p in made if p["id"] not in seen), None)
            for resource in (r for r in (served, waiting) if r is not None):
                updated = client.put(f"Patient/{resource['id']}", json={**resource, "gender": "male"}, headers=JSON)
                assert updated.status_code == 200
            page = following
            seen += ids(page)
        assert len(seen) == len(set(seen)), "an entry was served twice"
        assert {p["id"] for p in made} <= set(seen), "an entry that matched all along was skipped"


def test_deleted_resources_between_pages_do_not_shift_others(client: TestClient) -> None:
    made = [create(client, patient(f"D{i}"))["id"] for i in range(6)]
    first = search(client, _count="2", _sort="family")
    assert ids(first) == made[:2]
    assert client.delete(f"Patient/{made[2]}").status_code == 204
    assert client.delete(f"Patient/{made[1]}").status_code == 204
    second = follow(client, first, "next")
    assert ids(second) == made[3:5]
    assert families(follow(client, second, "previous")) == ["D0"]


def test_total_modes_and_summary_count(client: TestClient) -> None:
    for _ in range(5):
        create(client, patient("T"))
    assert "total" not in search(client, _total="none", _count="2")
    assert search(client, _total="estimate", _count="2")["total"] == 5
    assert search(client, _total="accurate", _count="2")["total"] == 5
    counted = search(client, _summary="count")
    assert counted["total"] == 5 and "entry" not in counted
    assert client.get("Patient", params={"_total": "sometimes"}).status_code == 400


def test_summary_and_elements_shape_the_entries(client: TestClient) -> None:
    create(client, patient("S", "2000-01-01", gender="female", text={
        "status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">S</div>'}))
    entry = search(client, _elements="gender")["entry"][0]["resource"]
    assert entry["gender"] == "female" and "name" not in entry and "birthDate" not in entry
    assert entry["meta"]["tag"][-1]["code"] == "SUBSETTED"
    typed = search(client, _elements="Patient.birthDate")["entry"][0]["resource"]
    assert typed["birthDate"] == "2000-01-01" and "gender" not in typed
    text = search(client, _summary="text")["entry"][0]["resource"]
    assert "text" in text and "gender" not in text
    data = search(client, _summary="data")["entry"][0]["resource"]
    assert "text" not in data and data["gender"] == "female"
    summary = search(client, _summary="true")["entry"][0]["resource"]
    assert summary["gender"] == "female" and "text" not in summary
    assert client.get("Patient", params={"_summary": "some"}).status_code == 400


def test_malformed_paging_values_are_400_naming_the_parameter(client: TestClient) -> None:
    create(client, patient("X"))
    for params, name in (
        ({"_count": "-1"}, "_count"), ({"_count": "ten"}, "_count"), ({"_offset": "x"}, "_offset"),
        ({"_cursor": "not-a-cursor"}, "_cursor"),
        ({"_cursor": base64.urlsafe_b64encode(b'[1,1,5,["a"]]').decode().rstrip("="), "_sort": ""}, "_cursor"),
        ({"_sort": "-"}, "_sort"), ({"_sort": "component-code-value-quantity"}, "_sort"),
    ):
        response = client.get("Observation" if "component" in params.get("_sort", "") else "Patient", params=params)
        assert response.status_code == 400, (params, response.text)
        issue = response.json()["issue"][0]
        assert issue["expression"] == [name], (params, issue)


def test_unknown_sort_parameter_is_reported_or_rejected(client: TestClient) -> None:
    create(client, patient("U"))
    lenient = search(client, _sort="shoe-size")
    assert lenient["entry"][-1]["search"]["mode"] == "outcome"
    strict = client.get("Patient", params={"_sort": "shoe-size"}, headers={"Prefer": "handling=strict"})
    assert strict.status_code == 400


def test_forged_cursors_are_a_400_or_a_page_never_a_5xx(client: TestClient) -> None:
    for i in range(3):
        create(client, patient(f"Q{i}", f"200{i}-01-01"))

    def forged(payload: bytes) -> str:
        return base64.urlsafe_b64encode(payload).decode().rstrip("=")

    for sort, payload in (
        ("birthdate", b'[1,1,1,["not a number"]]'),
        ("birthdate", b'[1,0,99999999999999999999999,[1.5]]'),
        ("family", b'[1,1,1,[123456789012345678901234567890]]'),
        ("family", b'[1,1,-5,[null]]'),
        ("", b'[1,1,"x",[]]'),
        ("", b'{"a":1}'),
    ):
        response = client.get("Patient", params={"_sort": sort, "_cursor": forged(payload)})
        assert response.status_code in (200, 400), (sort, payload, response.text)


def test_default_total_is_configurable(client: TestClient, client_with) -> None:
    for _ in range(3):
        create(client, patient("V"))
    assert search(client, _count="1")["total"] == 3
    without_totals = client_with(default_total="none")
    assert "total" not in search(without_totals, _count="1")
    assert search(without_totals, _count="1", _total="accurate")["total"] == 3
