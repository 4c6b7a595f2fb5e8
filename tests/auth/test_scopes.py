"""SMART scope grammar (v1 and v2), narrowing to a registration, and coverage on refresh."""

from __future__ import annotations

import pytest

from ficus.auth.scopes import ResourceScope, covered, narrow, parse_resource_scope, wants_refresh


@pytest.mark.parametrize(("text", "level", "res_type", "letters", "query"), [
    ("patient/Observation.read", "patient", "Observation", "rs", ()),
    ("user/*.write", "user", "*", "cud", ()),
    ("system/*.*", "system", "*", "cruds", ()),
    ("patient/Observation.rs", "patient", "Observation", "rs", ()),
    ("user/Patient.cruds", "user", "Patient", "cruds", ()),
    ("patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
     "patient", "Observation", "rs", (("category", "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"),)),
])
def test_parse(text: str, level: str, res_type: str, letters: str, query: tuple) -> None:
    parsed = parse_resource_scope(text)
    assert parsed is not None
    assert (parsed.level, parsed.res_type, parsed.permissions, parsed.query) == (level, res_type, frozenset(letters), query)


@pytest.mark.parametrize("text", [
    "patient/Observation.sr",  # letters out of order
    "patient/Observation.x", "patient/observation.rs", "doctor/Observation.rs", "patient/Observation.",
    "patient/Observation.read?category=x",  # v1 has no query
    "patient/Observation.rs?category=", "openid", "launch/patient",
])
def test_not_resource_scopes(text: str) -> None:
    assert parse_resource_scope(text) is None


def test_render_keeps_the_requested_syntax() -> None:
    assert ResourceScope("patient", "Observation", frozenset("rs"), v1=True).render() == "patient/Observation.read"
    assert ResourceScope("patient", "Observation", frozenset("r"), v1=True).render() == "patient/Observation.r"
    assert ResourceScope("user", "*", frozenset("cruds")).render() == "user/*.cruds"


def test_narrow_to_the_registration() -> None:
    registered = "launch/patient openid patient/*.rs user/Observation.cruds"
    requested = "launch/patient openid offline_access patient/Observation.cruds user/Observation.read user/Patient.rs system/*.rs"
    assert narrow(requested, registered) == ["launch/patient", "openid", "patient/Observation.rs", "user/Observation.read"]


def test_narrow_granular_scopes() -> None:
    lab = "patient/Observation.rs?category=laboratory"
    assert narrow(lab, "patient/*.rs") == [lab]  # a narrower request of a wider registration
    assert narrow("patient/Observation.rs", lab) == []  # never wider than the registration
    assert narrow(lab, lab) == [lab]


def test_narrow_by_level() -> None:
    assert narrow("system/*.rs user/*.rs", "system/*.rs user/*.rs", levels=("system",)) == ["system/*.rs"]


def test_covered() -> None:
    granted = "offline_access patient/Observation.rs patient/Patient.r"
    assert covered("patient/Observation.r", granted)
    assert covered("offline_access patient/Patient.r", granted)
    assert not covered("patient/Patient.rs", granted)
    assert not covered("patient/*.rs", granted)
    assert not covered("openid", granted)


def test_wants_refresh() -> None:
    assert wants_refresh("openid offline_access") == "offline_access"
    assert wants_refresh("online_access patient/*.rs") == "online_access"
    assert wants_refresh("openid") is None
