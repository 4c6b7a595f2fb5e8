"""Terminology tests: the operations are registered as the server does at start-up, and the
tables of loaded code systems start empty in every test (the shared PostgreSQL test database
is only truncated for the core tables)."""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import ficus.terminology.operations  # noqa: F401 - registers $expand, $validate-code, ...
from ficus.store.database import Database, open_database

FIXTURES = Path(__file__).parent.parent / "fixtures" / "terminology"
TX_TABLES = ("tx_code_system", "tx_concept", "tx_designation", "tx_property", "tx_hierarchy", "tx_closure", "tx_subtree")


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    """The test database, opened (and migrated), with no loaded code systems."""
    opened = open_database(database_url)
    with opened.session(write=True) as tx:
        for table in TX_TABLES:
            tx.execute(f"DELETE FROM {table}")
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def loinc_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The LOINC subset release folder, unpacked."""
    folder = tmp_path_factory.mktemp("loinc")
    with tarfile.open(FIXTURES / "loinc-subset.tgz") as archive:
        archive.extractall(folder, filter="data")
    return folder / "loinc-subset"
