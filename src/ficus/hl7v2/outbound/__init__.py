"""HL7 v2 outbound: FHIR changes from the outbox as ADT and ORU messages to MLLP destinations."""
