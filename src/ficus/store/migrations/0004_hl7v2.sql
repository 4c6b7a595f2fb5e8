-- HL7 v2 message store (ficus.hl7v2.store): every message received over MLLP, kept before it is
-- acknowledged. `sender` is MSH-3|MSH-4 and scopes `control_id` (MSH-10); `digest` is the SHA-256
-- of the message without MSH-7, so a resent message is recognised and one that reuses a control
-- id with other content is not mistaken for it. `status`: received, mapped, failed (dead letter),
-- unsupported (no map yet), replayed, rejected (unreadable frame). `resources` lists the
-- `Type/id/_history/n` the message produced (JSON); `lease_until` marks a message being processed.

CREATE TABLE hl7_message (
    id {identity},
    sender TEXT NOT NULL,
    control_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    message_type TEXT NOT NULL,
    version TEXT NOT NULL,
    raw TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    warnings TEXT,
    resources TEXT,
    attempts INTEGER NOT NULL,
    received BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    lease_until BIGINT,
    UNIQUE (sender, control_id, digest)
);
CREATE INDEX hl7_message_status ON hl7_message (status, id);
CREATE INDEX hl7_message_received ON hl7_message (received);
