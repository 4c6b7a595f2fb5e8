"""Sending queued messages to one destination over MLLP and acting on each ACK.

The rule: AA/CA -> sent. AR/CR (rejected: the same bytes would be rejected again) -> failed at
once. AE/CE (an error the receiver may get over) -> retried with back-off, failed after
`max_attempts` answers. No usable ACK (refused connection, timeout, closed connection, an ACK
for another control id) -> the message stays pending and the whole destination backs off;
these are retried for as long as it takes. A patient's later message waits while an earlier
one is retried; a failed one no longer holds its lane.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import hl7

from ficus.fhirtime import now_micros
from ficus.hl7v2.mllp import FrameError, FrameReader, frame
from ficus.hl7v2.outbound.store import (
    FAILED,
    PENDING,
    SENT,
    Destination,
    OutboundMessage,
    OutboundStore,
)
from ficus.jobs.lease import Lease
from ficus.jobs.threads import WorkerThreads

log = logging.getLogger("ficus.hl7v2.outbound")

ACCEPTED = ("AA", "CA")
REJECTED = ("AR", "CR")


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 2.0
    max_seconds: float = 300.0
    max_attempts: int = 10  # AE/CE answers before a message is dead-lettered
    ack_timeout: float = 30.0
    batch: int = 100

    def delay(self, attempt: int) -> int:
        """Microseconds to wait after the `attempt`-th failure: doubling from the base, capped."""
        seconds = min(self.base_seconds * 2 ** max(attempt - 1, 0), self.max_seconds)
        return int(seconds * 1_000_000)


class NoAcknowledgement(Exception):
    """The destination did not answer a message with a usable ACK."""


def read_ack(ack: bytes, control_id: str) -> tuple[str, str]:
    """(MSA-1 code, the receiver's text: MSA-3 and ERR-8) of an ACK to `control_id`."""
    try:
        message = hl7.parse(ack.decode("utf-8", "replace").replace("\r\n", "\r").replace("\n", "\r"))
        msa = message.segment("MSA")
    except Exception as error:  # noqa: BLE001 - python-hl7 raises several kinds on garbage
        raise NoAcknowledgement(f"The answer is not an ACK: {error}") from None
    code = str(msa[1]) if len(msa) > 1 else ""
    acknowledged = str(msa[2]) if len(msa) > 2 else ""
    if acknowledged != control_id:
        raise NoAcknowledgement(f"The ACK is for control id {acknowledged!r}, not {control_id!r}")
    texts = [message.unescape(str(msa[3]))] if len(msa) > 3 and str(msa[3]) else []
    for segment in message:
        if str(segment[0]) == "ERR" and len(segment) > 8 and str(segment[8]):
            texts.append(message.unescape(str(segment[8])))
    return code, "; ".join(texts)


class Courier:
    """Delivers one destination's queue while holding its lease."""

    def __init__(self, store: OutboundStore, destination: Destination, policy: RetryPolicy, lease: Lease, threads: WorkerThreads) -> None:
        self.store = store
        self.threads = threads
        self.destination = destination
        self.policy = policy
        self.lease = lease
        self._renewed = now_micros()

    async def deliver(self) -> int:
        """Send until nothing is sendable, the destination fails or the lease is lost; returns
        how many messages were accepted."""
        accepted = 0
        while True:
            messages = await self.threads.run(self.store.sendable, self.destination.name, now_micros(), self.policy.batch)
            if not messages:
                return accepted
            sent, reachable = await self._round(messages)
            accepted += sent
            if not reachable or not await self._renew():
                return accepted

    async def _round(self, messages: list[OutboundMessage]) -> tuple[int, bool]:
        """Send one batch on one connection; (accepted, whether the destination answered)."""
        name = self.destination.name
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.destination.host, self.destination.port), self.policy.ack_timeout)
        except (TimeoutError, OSError) as error:
            await self._unreachable(messages[0], f"Cannot connect to {self._address}: {error or 'timeout'}")
            return 0, False
        frames = FrameReader(reader)
        held: set[str] = set()  # lanes with a message waiting for a retry
        accepted = 0
        # each ACK is recorded while the next message is on the wire (one commit's latency hidden
        # per message); at most that one message is sent again if the process dies meanwhile
        recording: asyncio.Future | None = None
        try:
            for message in messages:
                if message.patient in held:
                    continue
                if not await self._renew():
                    break
                try:
                    writer.write(frame(message.raw.encode("utf-8")))
                    await writer.drain()
                    ack = await asyncio.wait_for(frames.next(), self.policy.ack_timeout)
                    if ack is None:
                        raise NoAcknowledgement(f"{self._address} closed the connection without an ACK")
                    code, text = read_ack(ack, message.control_id)
                except (TimeoutError, OSError, FrameError, NoAcknowledgement) as error:
                    if recording is not None:
                        await recording
                        recording = None
                    await self._unreachable(message, str(error) or f"No ACK from {self._address} within {self.policy.ack_timeout} s")
                    return accepted, False
                outcome = self._outcome(message, code, text)
                if recording is not None:
                    await recording
                recording = asyncio.ensure_future(self.threads.run(self.store.record, message.id, *outcome))
                if outcome[0] == PENDING:
                    held.add(message.patient)
                accepted += code in ACCEPTED
        finally:
            writer.close()
            if recording is not None:
                await recording
        if self.destination.failures:
            await self.threads.run(self.store.destination_reached, name)
        return accepted, True

    def _outcome(self, message: OutboundMessage, code: str, text: str) -> tuple[str, str, str | None, int | None]:
        """What an ACK makes of a message: (status, ACK code, error, next attempt)."""
        if code in ACCEPTED:
            return SENT, code, None, None
        error = text or f"{code} without a reason"
        attempts = message.attempts + 1
        if code in REJECTED or attempts >= self.policy.max_attempts:
            log.warning("%s rejected message #%d (%s) with %s: %s", self.destination.name, message.id, message.source, code, error)
            return FAILED, code, error, None
        return PENDING, code, error, now_micros() + self.policy.delay(attempts)

    async def _unreachable(self, message: OutboundMessage, error: str) -> None:
        failures = self.destination.failures + 1
        retry_at = now_micros() + self.policy.delay(failures)
        log.info("%s: %s (retry in %.1f s)", self.destination.name, error, (retry_at - now_micros()) / 1e6)
        await self.threads.run(self.store.record, message.id, PENDING, None, error)
        await self.threads.run(self.store.destination_failed, self.destination.name, error, retry_at)

    async def _renew(self) -> bool:
        """Renew the lease once half of it has passed; False if another process took it."""
        if now_micros() - self._renewed < self.lease.duration // 2:
            return True
        self._renewed = now_micros()
        return await self.threads.run(self.lease.acquire)

    @property
    def _address(self) -> str:
        return f"{self.destination.host}:{self.destination.port}"
