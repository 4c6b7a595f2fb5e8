-- Background work on the outbox (ficus.jobs) and HL7 v2 outbound messages (ficus.hl7v2.outbound).
--
-- outbox_consumer: one durable cursor per consumer of the outbox. `position` is the last outbox
-- seq handled; `gap_horizon` (PostgreSQL) is the snapshot xmax seen when a seq after `position`
-- was missing while later ones were visible: once every transaction older than it has ended, the
-- missing seq belonged to a rolled-back transaction and is skipped.
CREATE TABLE outbox_consumer (
    name TEXT PRIMARY KEY,
    position BIGINT NOT NULL,
    gap_horizon BIGINT,
    updated BIGINT NOT NULL
);

-- job_lease: named, expiring claims, so one process at a time does a piece of work.
CREATE TABLE job_lease (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires BIGINT NOT NULL
);

-- hl7_destination: an MLLP consumer of v2 messages. `kinds` is a comma-separated list (adt, oru);
-- only changes after `since_seq` (the outbox when it was added) are sent to it. `failures` and
-- `retry_at` are the back-off after transport failures (down, timeout, garbled ACK).
CREATE TABLE hl7_destination (
    name TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    port INTEGER NOT NULL,
    kinds TEXT NOT NULL,
    sending_application TEXT NOT NULL,
    sending_facility TEXT NOT NULL,
    receiving_application TEXT NOT NULL,
    receiving_facility TEXT NOT NULL,
    since_seq BIGINT NOT NULL,
    failures INTEGER NOT NULL,
    retry_at BIGINT NOT NULL,
    last_error TEXT,
    created BIGINT NOT NULL
);

-- hl7_outbound: every message built for a destination, with its delivery status: pending (to
-- send or to retry at `next_attempt`), sent (AA/CA), failed (dead letter: AR, or AE too often).
-- `patient` is the ordering lane: a message is sent only after every earlier one of its lane.
CREATE TABLE hl7_outbound (
    id {identity},
    destination TEXT NOT NULL,
    patient TEXT NOT NULL,
    outbox_seq BIGINT NOT NULL,
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    message_type TEXT NOT NULL,
    control_id TEXT NOT NULL,
    raw TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt BIGINT NOT NULL,
    ack_code TEXT,
    error TEXT,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    UNIQUE (destination, outbox_seq)
);
CREATE INDEX hl7_outbound_queue ON hl7_outbound (status, destination, id);
CREATE INDEX hl7_outbound_lane ON hl7_outbound (destination, patient, status, id);
