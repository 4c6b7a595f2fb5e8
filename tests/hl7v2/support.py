"""Helpers for the HL7 v2 tests: the sample messages, a database stack, a running listener."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from ficus.api.interactions import Interactions
from ficus.config import Settings
from ficus.hl7v2.intake import Intake
from ficus.hl7v2.listener import Listener
from ficus.hl7v2.mapper import Mapper
from ficus.hl7v2.mapping import MappingOptions
from ficus.hl7v2.message import normalise_text
from ficus.hl7v2.mllp import DEFAULT_MAX_MESSAGE_BYTES
from ficus.hl7v2.store import MessageStore
from ficus.policy import Policy
from ficus.spec import definitions
from ficus.store.database import Database, open_database
from ficus.store.repository import Repository

SAMPLES = Path(__file__).parent.parent / "fixtures" / "hl7v2" / "messages"


def sample(name: str) -> str:
    """A sample message as sent over MLLP: segments separated by CR, no byte order mark."""
    return normalise_text((SAMPLES / name).read_text(encoding="utf-8"))


def sample_names() -> list[str]:
    return sorted(path.name for path in SAMPLES.glob("*.hl7"))


class Stack:
    """A database with Interactions, a message store, an intake and a mapper on it."""

    def __init__(self, url: str) -> None:
        self.database: Database = open_database(url)
        settings = Settings(database_url=url, base_url="http://testserver/fhir", auth="off")
        self.interactions = Interactions(settings, Repository(self.database, definitions()), Policy())
        self.store = MessageStore(self.database)
        self.intake = Intake(self.store)
        self.mapper = Mapper(self.interactions, self.store, MappingOptions())


class RunningListener:
    """A `Listener` serving on 127.0.0.1 (a free port) from an event loop in another thread."""

    def __init__(self, stack: Stack, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, mappers: int = 2) -> None:
        self.stack = stack
        self.loop = asyncio.new_event_loop()
        self.listener = Listener(stack.intake, stack.mapper, "127.0.0.1", 0, mappers, max_message_bytes)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.listener.start(), self.loop).result(30)
        self.port = self.listener.port

    def settle(self, timeout: float = 60) -> None:
        """Wait until the background mappers have taken up every received message."""
        deadline = time.monotonic() + timeout
        while self.stack.store.counts().get("received", 0):
            assert time.monotonic() < deadline, "messages were left unmapped"
            time.sleep(0.02)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.listener.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
