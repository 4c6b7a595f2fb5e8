"""date search: precision ranges, every prefix (search.html range semantics), Period, time zones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from starlette.testclient import TestClient

from . import found, load, rejected


@pytest.fixture
def births(client: TestClient) -> None:
    load(
        client,
        {"resourceType": "Patient", "id": "day", "birthDate": "2000-06-15"},
        {"resourceType": "Patient", "id": "month", "birthDate": "2000-06"},
        {"resourceType": "Patient", "id": "year", "birthDate": "2000"},
        {"resourceType": "Patient", "id": "before", "birthDate": "1999-12-31"},
        {"resourceType": "Patient", "id": "unknown"},
    )


BIRTHDATE_CASES = [
    ("2000-06-15", {"day"}),
    ("eq2000-06", {"day", "month"}),
    ("2000", {"day", "month", "year"}),
    ("ne2000", {"before"}),
    ("gt2000-06-15", {"month", "year"}),
    ("lt2000-06-15", {"month", "year", "before"}),
    ("ge2000-06-15", {"day", "month", "year"}),
    ("le2000-06-15", {"day", "month", "year", "before"}),
    ("sa2000-01-01", {"day", "month"}),
    ("eb2000-06-01", {"before"}),
    ("ap2000-06-15", {"day", "month", "year", "before"}),
    ("ap1900-01-01", set()),
    ("1999,2000-06-15", {"before", "day"}),
]


def test_prefixes_on_dates_of_different_precision(client: TestClient, births: None) -> None:
    for value, expected in BIRTHDATE_CASES:
        assert found(client, "Patient", ("birthdate", value)) == expected, value


def test_repeated_date_is_a_range(client: TestClient, births: None) -> None:
    # the year 2000 reaches both above 2000-06-01 and below 2000-06-30, so it matches too
    assert found(client, "Patient", ("birthdate", "ge2000-06-01"), ("birthdate", "le2000-06-30")) == {"day", "month", "year"}
    assert found(client, "Patient", ("birthdate", "ge2000-06-16"), ("birthdate", "le2000-12-31")) == {"month", "year"}


@pytest.fixture
def encounters(client: TestClient) -> None:
    load(
        client,
        {"resourceType": "Encounter", "id": "closed", "status": "finished", "class": {"code": "AMB"},
         "period": {"start": "2021-01-10", "end": "2021-01-20"}},
        {"resourceType": "Encounter", "id": "open", "status": "in-progress", "class": {"code": "AMB"},
         "period": {"start": "2021-02-01"}},
    )


PERIOD_CASES = [
    ("2021-01", {"closed"}),
    ("2021-01-15", set()),
    ("ge2021-01-15", {"closed", "open"}),
    ("lt2021-01-15", {"closed"}),
    ("sa2021-01-09", {"closed", "open"}),
    ("sa2021-01-10", {"open"}),
    ("eb2021-01-21", {"closed"}),
    ("eb2021-01-20", set()),
    ("gt2030", {"open"}),
    ("lt2021-02-01", {"closed"}),
    ("ne2021-01", {"open"}),
]


def test_periods(client: TestClient, encounters: None) -> None:
    for value, expected in PERIOD_CASES:
        assert found(client, "Encounter", ("date", value)) == expected, value


def test_time_zones_are_compared_in_utc(client: TestClient) -> None:
    load(client, {"resourceType": "Observation", "id": "late", "status": "final", "code": {"text": "x"},
                  "effectiveDateTime": "2021-03-01T23:30:00-05:00"})
    assert found(client, "Observation", ("date", "2021-03-02")) == {"late"}
    assert found(client, "Observation", ("date", "2021-03-01")) == set()
    assert found(client, "Observation", ("date", "ge2021-03-01T23:00:00-05:00")) == {"late"}
    assert found(client, "Observation", ("date", "lt2021-03-02T05:00:00+01:00")) == set()
    assert found(client, "Observation", ("date", "2021-03-02T04:30:00Z")) == {"late"}


def test_last_updated(client: TestClient) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    load(client, {"resourceType": "Patient", "id": "fresh"})
    after = datetime.now(UTC) + timedelta(seconds=5)
    assert found(client, "Patient", ("_lastUpdated", f"gt{before.isoformat()}")) == {"fresh"}
    assert found(client, "Patient", ("_lastUpdated", f"lt{before.isoformat()}")) == set()
    assert found(client, "Patient", ("_lastUpdated", f"le{after.isoformat()}")) == {"fresh"}
    assert found(client, "Patient", ("_lastUpdated", before.date().isoformat())) <= {"fresh"}


def test_malformed_dates_are_a_400_naming_the_parameter(client: TestClient) -> None:
    for value in ("2000-13", "yesterday", "gt", "2000-02-30"):
        outcome = rejected(client, "Patient", ("birthdate", value))
        assert outcome["issue"][0]["expression"] == ["birthdate"], value
