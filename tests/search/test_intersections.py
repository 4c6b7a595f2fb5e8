"""Searches of several criteria: on both databases every page and total is the intersection of
the criteria, whichever comes first in the query; SQLite starts from the criterion with the
fewest index rows and looks the others up in their tables' rid indexes."""

from __future__ import annotations

from ficus.store.indexing import param_key
from tests.search.test_results_snapshot import all_pages, create, get, ids


def observation(status: str, code: str, day: int) -> dict:
    return {"resourceType": "Observation", "status": status,
            "code": {"coding": [{"system": "urn:x", "code": code}, {"system": "urn:y", "code": code}]},
            "effectiveDateTime": f"2020-02-{day:02d}"}


def test_intersections_page_and_count_from_the_narrowest_criterion(client_with, database_url: str) -> None:
    client = client_with(explain=True)
    made = []
    for index in range(40):
        status = "amended" if index % 8 == 0 else "final"
        code = "narrow" if index % 5 == 0 else "broad"
        made.append((create(client, observation(status, code, 1 + index % 28))["id"], status, code, 1 + index % 28))
    expected = [res_id for res_id, status, code, _ in made if status == "final" and code == "narrow"]
    for query in ({"status": "final", "code": "urn:x|narrow"}, {"code": "urn:x|narrow", "status": "final"}):
        first = get(client, "Observation", **query, _count="2")
        assert first["total"] == len(expected) == 7
        assert [i for page in all_pages(client, first) for i in ids(page)] == expected
        back = all_pages(client, all_pages(client, first)[-1], "previous")
        assert [i for page in reversed(back) for i in ids(page)] == expected
    dated = [res_id for res_id, status, code, day in made if status == "final" and code == "broad" and day <= 10]
    first = get(client, "Observation", status="final", code="broad", date="le2020-02-10", _count="4")
    assert [i for page in all_pages(client, first) for i in ids(page)] == dated and first["total"] == len(dated)

    explained = get(client, "Observation", status="final", code="urn:x|narrow", _count="2", _explain="true")
    statements = [{part["name"]: next(v for k, v in part.items() if k.startswith("value")) for part in p["part"]}
                  for p in explained["parameter"] if p["name"] == "statement"]
    page = next(s for s in statements if s["purpose"] == "page")
    if database_url.startswith("sqlite"):
        assert statements[0]["purpose"] == "sizes"
        assert "INDEXED BY idx_token_rid" in page["sql"]
        assert page["parameters"].startswith(f"[{param_key('Observation', 'code')},")  # the code's 8 rows first
    else:
        assert "sizes" not in [s["purpose"] for s in statements] and "INDEXED BY" not in page["sql"]


def test_a_criterion_within_a_compartment_whose_members_include_the_compartment_resource(client) -> None:
    """`Patient/p/Patient`: the patients that link to p and p itself (a UNION, which stays an
    IN on SQLite), intersected with a criterion that matches fewer of them."""
    anchor = create(client, {"resourceType": "Patient", "gender": "male"})["id"]
    linked = [create(client, {"resourceType": "Patient", "gender": "female" if i % 3 else "male",
                              "link": [{"other": {"reference": f"Patient/{anchor}"}, "type": "seealso"}]})["id"]
              for i in range(9)]
    create(client, {"resourceType": "Patient", "gender": "male"})  # outside the compartment
    males = [anchor, *(res_id for i, res_id in enumerate(linked) if i % 3 == 0)]
    first = get(client, f"Patient/{anchor}/Patient", gender="male", _count="2")
    assert [i for page in all_pages(client, first) for i in ids(page)] == males and first["total"] == 4


def _page_sql(client, **query: str) -> str:
    explained = get(client, "Observation", **query, _explain="true")
    statements = [{part["name"]: next(v for k, v in part.items() if k.startswith("value")) for part in p["part"]}
                  for p in explained["parameter"] if p["name"] == "statement"]
    return next(s for s in statements if s["purpose"] == "page")["sql"]


def test_two_dates_bounding_a_range_are_read_as_one_range_until_a_resource_has_two_dates(client_with) -> None:
    """Where no resource has more than one date row, `date=ge..&date=le..` is met by one row;
    a resource whose two dates meet one criterion each (a Timing in February and April, for a
    range in March) matches the criteria as the spec states them, so once one is stored the two
    criteria are tested apart again."""
    client = client_with(explain=True)
    days = {create(client, {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                            "effectiveDateTime": f"2021-{month:02d}-15"})["id"]: month for month in range(1, 7)}
    period = create(client, {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                             "effectivePeriod": {"start": "2021-02-20", "end": "2021-03-10"}})["id"]
    march = {"date": ["ge2021-03-01", "le2021-03-31"]}

    def found() -> list[str]:
        response = client.get("Observation", params={**march, "_count": "50"})
        assert response.status_code == 200, response.text
        return sorted(e["resource"]["id"] for e in response.json().get("entry", []))

    # ge: ends at or after March 1st; le: starts at or before March 31st (the period does both)
    assert found() == sorted([*(i for i, month in days.items() if month == 3), period])
    sql = _page_sql(client, date=march["date"])
    assert sql.count("FROM idx_date") == 1
    twice = create(client, {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                            "effectiveTiming": {"event": ["2021-02-01", "2021-04-30"]}})["id"]
    assert found() == sorted([*(i for i, month in days.items() if month == 3), period, twice])
    assert _page_sql(client, date=march["date"]).count("FROM idx_date") == 2


def test_two_quantity_criteria_on_one_parameter_are_one_range_of_its_rows(client_with) -> None:
    """`value-quantity=gt5&value-quantity=lt10`: each Observation has one quantity, so one row
    meets both criteria, and the index reads the rows between the two."""
    client = client_with(explain=True)
    values = {create(client, {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                              "valueQuantity": {"value": value, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}})["id"]: value
              for value in range(1, 16)}
    response = client.get("Observation", params={"value-quantity": ["gt5", "lt10"], "_count": "50"})
    assert response.status_code == 200, response.text
    assert sorted(e["resource"]["id"] for e in response.json()["entry"]) == sorted(i for i, v in values.items() if 5 < v < 10)
    explained = get(client, "Observation", **{"value-quantity": ["gt5", "lt10"]}, _explain="true")
    page = next(p for p in explained["parameter"] if p["name"] == "statement"
                and any(part.get("valueString") == "page" for part in p["part"]))
    sql = next(part["valueString"] for part in page["part"] if part["name"] == "sql")
    assert sql.count("FROM idx_quantity") == 1
