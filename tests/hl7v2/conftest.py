"""HL7 v2 fixtures: the message store emptied per test, a stack on the test database, and a
listener on a real socket (127.0.0.1, a free port) in its own thread."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .support import RunningListener, Stack


@pytest.fixture
def stack(database_url: str) -> Iterator[Stack]:
    found = Stack(database_url)
    yield found
    found.database.close()


@pytest.fixture
def listener(stack: Stack) -> Iterator[RunningListener]:
    running = RunningListener(stack)
    yield running
    running.stop()


@pytest.fixture
def sqlite_listener(tmp_path: Path) -> Iterator[RunningListener]:
    """A listener on SQLite only, for tests of the protocol rather than of storage."""
    found = Stack(f"sqlite:///{tmp_path / 'ficus.db'}")
    running = RunningListener(found)
    yield running
    running.stop()
    found.database.close()
