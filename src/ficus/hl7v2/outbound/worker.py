"""The outbound worker: queues messages from the outbox and delivers every due destination.

Each tick it reads new outbox events into the queue, then starts a courier for each destination
with messages due that is not being delivered already. Couriers hold a lease per destination,
so several Ficus processes on one PostgreSQL share the destinations and never send the same
queue at once. `ficus serve` runs one (FICUS_HL7_OUTBOUND=0 turns it off); `ficus hl7 deliver`
runs one on its own.

The outbox is polled (an indexed probe every FICUS_JOBS_POLL_SECONDS) rather than woken by
NOTIFY: on PostgreSQL a transaction that notifies takes a database-wide lock held through its
commit, which would serialise every FHIR write.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field

from ficus.fhirtime import now_micros
from ficus.hl7v2.outbound.delivery import Courier, RetryPolicy
from ficus.hl7v2.outbound.fanout import Fanout
from ficus.hl7v2.outbound.messages import MessageBuilder
from ficus.hl7v2.outbound.store import OutboundStore
from ficus.jobs.lease import Lease, owner_name
from ficus.jobs.threads import WorkerThreads
from ficus.store.database import Database
from ficus.store.repository import Repository

log = logging.getLogger("ficus.hl7v2.outbound")

@dataclass(frozen=True)
class OutboundSettings:
    poll_seconds: float = 0.25
    idle_seconds: float = 5.0  # how often a worker without destinations looks for new ones
    lease_seconds: float = 60.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @classmethod
    def from_environment(cls) -> OutboundSettings:
        env = os.environ
        return cls(
            poll_seconds=float(env.get("FICUS_JOBS_POLL_SECONDS", "0.25")),
            idle_seconds=float(env.get("FICUS_JOBS_IDLE_SECONDS", "5")),
            lease_seconds=float(env.get("FICUS_JOBS_LEASE_SECONDS", "60")),
            retry=RetryPolicy(
                base_seconds=float(env.get("FICUS_HL7_RETRY_SECONDS", "2")),
                max_seconds=float(env.get("FICUS_HL7_RETRY_MAX_SECONDS", "300")),
                max_attempts=int(env.get("FICUS_HL7_MAX_ATTEMPTS", "10")),
                ack_timeout=float(env.get("FICUS_HL7_ACK_TIMEOUT", "30")),
            ),
        )


class OutboundWorker:
    def __init__(self, repository: Repository, base_url: str, settings: OutboundSettings | None = None) -> None:
        self.database: Database = repository.database
        self.settings = settings or OutboundSettings()
        self.store = OutboundStore(self.database)
        self.fanout = Fanout(self.store, MessageBuilder(repository, base_url))
        self.owner = owner_name()
        self._couriers: dict[str, asyncio.Task] = {}
        self._task: asyncio.Task | None = None
        self._threads = WorkerThreads("ficus-hl7-outbound")

    async def start(self) -> None:
        await self._threads.run(self.fanout.start)
        self._task = asyncio.create_task(self.serve_forever(), name="ficus-hl7-outbound")

    async def stop(self) -> None:
        """Cancel the ticks and couriers and wait for their database calls still running (a
        stopped worker is not started again)."""
        tasks = [task for task in (self._task, *self._couriers.values()) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._threads.close()
        self._task = None

    async def serve_forever(self) -> None:
        while True:
            try:
                busy = await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("HL7 v2 outbound tick failed")
                busy = True
            await asyncio.sleep(self.settings.poll_seconds if busy else self.settings.idle_seconds)

    async def tick(self) -> bool:
        """Queue new changes and start couriers; False when there are no destinations at all."""
        if not await self._threads.run(self.store.destinations):
            return False
        await self._threads.run(self.fanout.run)
        for name in await self._threads.run(self.store.due_destinations, now_micros()):
            running = self._couriers.get(name)
            if running is None or running.done():
                self._couriers[name] = asyncio.create_task(self._deliver(name), name=f"ficus-hl7-courier-{name}")
        return True

    async def _deliver(self, name: str) -> None:
        lease = Lease(self.database, f"hl7v2-outbound:{name}", self.owner, self.settings.lease_seconds)
        if not await self._threads.run(lease.acquire):
            return  # another process is delivering this destination
        try:
            destination = await self._threads.run(self.store.destination, name)
            if destination is not None:
                await Courier(self.store, destination, self.settings.retry, lease, self._threads).deliver()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("Delivery to %s failed", name)
        finally:
            await asyncio.shield(self._threads.run(lease.release))


def outbound_from_environment(repository: Repository, base_url: str) -> OutboundWorker | None:
    """The worker `ficus serve` runs, unless FICUS_HL7_OUTBOUND=0."""
    if os.environ.get("FICUS_HL7_OUTBOUND", "1").lower() in ("0", "false", "no"):
        return None
    return OutboundWorker(repository, base_url, OutboundSettings.from_environment())
