-- HL7 v2 messages are acknowledged once stored and mapped in the background (ficus.hl7v2.mapper).
-- `lane` says who a message is about (`authority|id` of the first PID identifier; `*` for a
-- merge, which is ordered with every message; "" without a PID): messages of one lane are applied
-- in arrival (id) order. The partial index finds the messages being mapped (leased) quickly.

ALTER TABLE hl7_message ADD COLUMN lane TEXT;
CREATE INDEX hl7_message_leased ON hl7_message (lease_until) WHERE status = 'received';
