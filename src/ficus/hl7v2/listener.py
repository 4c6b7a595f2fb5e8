"""The MLLP listener as a whole: intake, server and background mappers on one Ficus database.

`Listener.start()` starts the mappers (which first take up messages a previous run stored but
never mapped) and then listens. `listener_from_environment` starts one inside `ficus serve` when
`FICUS_MLLP_PORT` is set, sharing the server's `Interactions`.
"""

from __future__ import annotations

import asyncio
import logging
import os

from ficus.api.interactions import Interactions
from ficus.hl7v2.intake import Arrival, Intake
from ficus.hl7v2.mapper import MAPPERS, Mapper, MapperThreads
from ficus.hl7v2.mapping import MappingOptions
from ficus.hl7v2.mllp import DEFAULT_MAX_MESSAGE_BYTES, MllpServer
from ficus.hl7v2.store import LEASE_SECONDS, MessageStore
from ficus.store.database import Database

log = logging.getLogger("ficus.hl7v2")


class Listener:
    """An MLLP endpoint that stores and acknowledges v2 messages, and maps them in the background
    with `mappers` threads (0: leave mapping to other processes on the same database)."""

    def __init__(self, intake: Intake, mapper: Mapper, host: str = "127.0.0.1", port: int = 2575,
                 mappers: int = MAPPERS, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
                 reuse_port: bool = False) -> None:
        self.intake = intake
        self.mapper = mapper
        self.host = host
        self.requested_port = port
        self.reuse_port = reuse_port
        self.mappers = MapperThreads(mapper, mappers)
        self.server = MllpServer(_Waking(intake, self.mappers), max_message_bytes)

    @classmethod
    def on(cls, interactions: Interactions, database: Database, host: str = "127.0.0.1", port: int = 2575,
           options: MappingOptions | None = None, encoding: str = "utf-8", mappers: int = MAPPERS,
           lease_seconds: float = LEASE_SECONDS, reuse_port: bool = False) -> Listener:
        """A listener writing to `database` through `interactions`."""
        store = MessageStore(database, lease_seconds)
        return cls(Intake(store, encoding), Mapper(interactions, store, options), host, port, mappers,
                   reuse_port=reuse_port)

    @property
    def port(self) -> int:
        return self.server.port

    async def start(self) -> None:
        if self.mappers.count:
            self.mappers.start()
        await self.server.start(self.host, self.requested_port, self.reuse_port)
        log.info("HL7 v2 MLLP listener on %s:%d (%d mappers)", self.host, self.port, self.mappers.count)

    async def stop(self) -> None:
        await self.server.close()
        await asyncio.get_running_loop().run_in_executor(None, self.mappers.stop)

    async def serve_forever(self) -> None:
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()


class _Waking:
    """The intake, waking the mappers after each commit."""

    def __init__(self, intake: Intake, mappers: MapperThreads) -> None:
        self.intake = intake
        self.mappers = mappers
        self.check = intake.check
        self.refused = intake.refused

    def store_all(self, arrivals: list[Arrival]) -> list[bytes] | None:
        acks = self.intake.store_all(arrivals)
        if acks is not None:
            self.mappers.wake()
        return acks


def listener_from_environment(interactions: Interactions, database: Database) -> Listener | None:
    """The listener `FICUS_MLLP_PORT` asks for (host `FICUS_MLLP_HOST`, encoding
    `FICUS_MLLP_ENCODING`, time zone `FICUS_HL7_TIMEZONE`, mapper threads `FICUS_HL7_MAPPERS`,
    mapper lease `FICUS_HL7_LEASE_SECONDS`), or None when it is not set."""
    env = os.environ
    port = env.get("FICUS_MLLP_PORT")
    if not port:
        return None
    options = MappingOptions(timezone=env.get("FICUS_HL7_TIMEZONE", "UTC"))
    return Listener.on(
        interactions, database, env.get("FICUS_MLLP_HOST", "127.0.0.1"), int(port), options,
        encoding=env.get("FICUS_MLLP_ENCODING", "utf-8"), mappers=int(env.get("FICUS_HL7_MAPPERS", MAPPERS)),
        lease_seconds=float(env.get("FICUS_HL7_LEASE_SECONDS", LEASE_SECONDS)), reuse_port=True,
    )
