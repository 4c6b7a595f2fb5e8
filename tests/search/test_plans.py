"""On PostgreSQL, a search whose best plan depends on its values (several criteria, a chain) is
planned for them every time, never given the generic plan of a prepared statement; a search of
one criterion keeps its prepared statements, but for the page of a date, number or quantity
range."""

from __future__ import annotations

from ficus.search.execute import SearchPlan, run
from ficus.search.query import parse_criteria
from ficus.spec import definitions
from ficus.store.database import open_database

from tests.search.test_count import LOINC, analyzed


def prepared_after_repeats(url: str, criteria: list[tuple[str, str]], matches: int = 3) -> list[str]:
    """The search statements PostgreSQL holds prepared after the search ran ten times on one connection."""
    database = open_database(url)
    try:
        with database.session() as tx:
            for _ in range(10):  # psycopg prepares a statement on its fifth run
                plan = SearchPlan(types=["Observation"], criteria=parse_criteria(criteria), count=2, total="accurate")
                assert run(tx, definitions(), "postgresql", plan).total == matches
            rows = tx.execute("SELECT statement FROM pg_prepared_statements WHERE statement LIKE ?", ("%idx_%",)).fetchall()
            return [row[0] for row in rows]
    finally:
        database.close()


def test_value_dependent_searches_are_planned_for_their_values(postgres_database: str) -> None:
    def obs(day: int) -> dict:
        return {"resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": LOINC, "code": "8310-5"}]}, "effectiveDateTime": f"2020-01-{day:02d}"}

    with analyzed(postgres_database, [obs(day) for day in (1, 2, 3)]):
        pass
    def pages(statements: list[str]) -> list[str]:
        return [statement for statement in statements if "resource_version" in statement]

    coded = prepared_after_repeats(postgres_database, [("code", f"{LOINC}|8310-5")])  # one criterion: prepared
    assert pages(coded) and len(coded) > len(pages(coded))  # the page and the count
    dated = prepared_after_repeats(postgres_database, [("date", "2020-01")])
    assert dated and not pages(dated)  # a range's page is planned for its values, its count is not
    assert not prepared_after_repeats(postgres_database, [("code", f"{LOINC}|8310-5"), ("status", "final")])
    assert not prepared_after_repeats(postgres_database, [("date", "ge2020-01-01"), ("date", "le2020-01-31")])
    assert not prepared_after_repeats(postgres_database, [("subject:Patient.gender", "male")], matches=0)
