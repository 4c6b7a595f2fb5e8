"""string search: starts-with ignoring case and accents, :exact, :contains, OR, AND, escaping."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from . import found, load


@pytest.fixture
def people(client: TestClient) -> None:
    load(
        client,
        {"resourceType": "Patient", "id": "eve", "name": [{"family": "Évans", "given": ["Eve", "Maria"]}]},
        {"resourceType": "Patient", "id": "adam", "name": [{"family": "Evanston", "given": ["Adam"]}],
         "address": [{"line": ["1 Main Street"], "city": "Springfield", "postalCode": "12345"}]},
        {"resourceType": "Patient", "id": "bob", "name": [{"text": "Bob de la Cruz", "family": "de la Cruz"}],
         "address": [{"city": "Shelbyville", "country": "NL"}]},
        {"resourceType": "Patient", "id": "comma", "name": [{"family": "Smith, Jr"}]},
        {"resourceType": "Patient", "id": "nameless", "gender": "other"},
    )


def test_default_is_case_and_accent_insensitive_starts_with(client: TestClient, people: None) -> None:
    assert found(client, "Patient", ("family", "evans")) == {"eve", "adam"}
    assert found(client, "Patient", ("family", "ÉVANS")) == {"eve", "adam"}
    assert found(client, "Patient", ("family", "vans")) == set()
    assert found(client, "Patient", ("name", "mar")) == {"eve"}
    assert found(client, "Patient", ("name", "bob")) == {"bob"}


def test_exact_is_case_and_accent_sensitive(client: TestClient, people: None) -> None:
    assert found(client, "Patient", ("family:exact", "Évans")) == {"eve"}
    assert found(client, "Patient", ("family:exact", "Evans")) == set()
    assert found(client, "Patient", ("family:exact", "évans")) == set()
    assert found(client, "Patient", ("family:exact", "Évan")) == set()


def test_contains_matches_anywhere(client: TestClient, people: None) -> None:
    assert found(client, "Patient", ("family:contains", "ANST")) == {"adam"}
    assert found(client, "Patient", ("name:contains", "la cr")) == {"bob"}
    assert found(client, "Patient", ("family:contains", "%")) == set()


def test_comma_is_or_and_repetition_is_and(client: TestClient, people: None) -> None:
    assert found(client, "Patient", ("given", "adam,eve")) == {"adam", "eve"}
    assert found(client, "Patient", ("name", "evans"), ("name", "maria")) == {"eve"}
    assert found(client, "Patient", ("name", "evans"), ("given", "adam")) == {"adam"}


def test_escaped_comma_is_part_of_the_value(client: TestClient, people: None) -> None:
    assert found(client, "Patient", ("family", "smith\\, jr")) == {"comma"}
    assert found(client, "Patient", ("family", "smith\\, sr")) == set()
    assert found(client, "Patient", ("family", "jr,smith")) == {"comma"}


def test_address_parts(client: TestClient, people: None) -> None:
    assert found(client, "Patient", ("address", "spring")) == {"adam"}
    assert found(client, "Patient", ("address", "1 main")) == {"adam"}
    assert found(client, "Patient", ("address-city", "shelby")) == {"bob"}
    assert found(client, "Patient", ("address-postalcode", "123")) == {"adam"}
    assert found(client, "Patient", ("address-country", "nl")) == {"bob"}


def test_missing(client: TestClient, people: None) -> None:
    assert found(client, "Patient", ("name:missing", "true")) == {"nameless"}
    assert found(client, "Patient", ("address:missing", "false")) == {"adam", "bob"}


def test_empty_value_is_ignored(client: TestClient, people: None) -> None:
    assert found(client, "Patient", ("family", "")) == {"eve", "adam", "bob", "comma", "nameless"}
