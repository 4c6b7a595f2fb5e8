"""FHIR interactions for the command line: the operator's own database, no caller restrictions."""

from __future__ import annotations

from dataclasses import replace

from ficus.api.interactions import Interactions
from ficus.config import Settings
from ficus.policy import Policy
from ficus.spec import definitions
from ficus.store.database import Database, open_database
from ficus.store.repository import Repository


def local_interactions(database_url: str | None = None) -> tuple[Interactions, Database]:
    """The interactions and database of FICUS_DATABASE_URL (or `database_url`); close the database when done."""
    settings = Settings.from_environment()
    if database_url:
        settings = replace(settings, database_url=database_url)
    database = open_database(settings.database_url)
    return Interactions(settings, Repository(database, definitions(), settings.base_url), Policy()), database
