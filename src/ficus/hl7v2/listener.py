"""The MLLP listener as a whole: store, intake and server on one Ficus database.

`Listener.start()` first finishes messages a previous run stored but never processed, then
listens. `listener_from_environment` starts one inside `ficus serve` when `FICUS_MLLP_PORT`
is set, sharing the server's `Interactions`.
"""

from __future__ import annotations

import asyncio
import logging
import os

from ficus.api.interactions import Interactions
from ficus.hl7v2.intake import Intake
from ficus.hl7v2.mapping import MappingOptions
from ficus.hl7v2.mllp import DEFAULT_MAX_MESSAGE_BYTES, MllpServer
from ficus.hl7v2.store import MessageStore
from ficus.store.database import Database

log = logging.getLogger("ficus.hl7v2")


class Listener:
    """An MLLP endpoint that stores, maps and acknowledges v2 messages."""

    def __init__(self, intake: Intake, host: str = "127.0.0.1", port: int = 2575, workers: int = 8,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, reuse_port: bool = False) -> None:
        self.intake = intake
        self.host = host
        self.requested_port = port
        self.reuse_port = reuse_port
        self.server = MllpServer(intake, workers, max_message_bytes)

    @classmethod
    def on(cls, interactions: Interactions, database: Database, host: str = "127.0.0.1", port: int = 2575,
           options: MappingOptions | None = None, encoding: str = "utf-8", workers: int = 8,
           reuse_port: bool = False) -> Listener:
        """A listener writing to `database` through `interactions`."""
        intake = Intake(interactions, MessageStore(database), options, encoding)
        return cls(intake, host, port, workers, reuse_port=reuse_port)

    @property
    def port(self) -> int:
        return self.server.port

    async def start(self) -> None:
        recovered = await asyncio.get_running_loop().run_in_executor(self.server.executor, self.intake.recover)
        if recovered:
            log.info("Processed %d HL7 v2 messages left unfinished by the previous run", recovered)
        await self.server.start(self.host, self.requested_port, self.reuse_port)
        log.info("HL7 v2 MLLP listener on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        await self.server.close()

    async def serve_forever(self) -> None:
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()


def listener_from_environment(interactions: Interactions, database: Database) -> Listener | None:
    """The listener `FICUS_MLLP_PORT` asks for (host `FICUS_MLLP_HOST`, encoding
    `FICUS_MLLP_ENCODING`, time zone `FICUS_HL7_TIMEZONE`), or None when it is not set."""
    env = os.environ
    port = env.get("FICUS_MLLP_PORT")
    if not port:
        return None
    options = MappingOptions(timezone=env.get("FICUS_HL7_TIMEZONE", "UTC"))
    return Listener.on(
        interactions, database, env.get("FICUS_MLLP_HOST", "127.0.0.1"), int(port), options,
        encoding=env.get("FICUS_MLLP_ENCODING", "utf-8"), reuse_port=True,
    )
