"""Outbox events -> queued v2 messages, one per destination that takes the message's kind.

The messages are queued in the same transaction that moves the outbox cursor, so each change
is queued exactly once per destination. A change whose message cannot be built is queued as a
`failed` message carrying the error, for the operator to see, and never blocks the ones after it.
"""

from __future__ import annotations

import logging

from ficus.fhirtime import format_instant, now_micros
from ficus.hl7v2.outbound.encoding import dtm
from ficus.hl7v2.outbound.messages import SOURCE_TYPES, Draft, MessageBuilder
from ficus.hl7v2.outbound.segments import Header
from ficus.hl7v2.outbound.store import CONSUMER, FAILED, PENDING, Destination, OutboundStore
from ficus.jobs.outbox import OutboxConsumer, OutboxEvent
from ficus.store.database import Cursor

log = logging.getLogger("ficus.hl7v2.outbound")


class Fanout:
    def __init__(self, store: OutboundStore, builder: MessageBuilder, batch: int = 200) -> None:
        self.store = store
        self.builder = builder
        self.consumer = OutboxConsumer(store.database, CONSUMER, batch)

    def start(self) -> None:
        self.consumer.register()

    def run(self) -> int:
        """Queue messages for every change committed so far; returns how many changes were read."""
        destinations = self.store.destinations()
        if not destinations:
            return 0
        self.consumer.skip_to(min(d.since_seq for d in destinations))
        if not self.consumer.pending():
            return 0
        total = 0
        while True:
            handled = self.consumer.consume(self._queue)
            if not handled:
                return total
            total += handled

    def _queue(self, tx: Cursor, events: list[OutboxEvent]) -> None:
        destinations = self.store.destinations(tx)
        rows: list[tuple] = []
        for event in events:
            kind = SOURCE_TYPES.get(event.res_type)
            targets = [d for d in destinations if kind in d.kinds and event.seq > d.since_seq]
            if not targets:
                continue
            try:
                draft = self.builder.draft(tx, event)
            except Exception as error:
                log.exception("Could not build the v2 message of %s", event.reference)
                rows += [_failed_row(d, event, kind, f"Could not build the message: {error}") for d in targets]
                continue
            if draft is not None:
                rows += [_row(d, event, draft) for d in targets]
        self.store.enqueue(tx, rows)


def _row(destination: Destination, event: OutboxEvent, draft: Draft) -> tuple:
    header = Header(destination.sending_application, destination.sending_facility,
                    destination.receiving_application, destination.receiving_facility)
    control_id = str(event.seq)  # unique per destination: one message per change
    raw = draft.render(header, control_id, dtm(format_instant(event.created)))
    now = now_micros()
    return (destination.name, draft.patient, event.seq, event.reference, draft.kind, draft.message_type,
            control_id, raw, PENDING, 0, now, now, now, None)


def _failed_row(destination: Destination, event: OutboxEvent, kind: str, error: str) -> tuple:
    now = now_micros()
    return (destination.name, "", event.seq, event.reference, kind, "", str(event.seq), "", FAILED, 0, now, now, now, error)
