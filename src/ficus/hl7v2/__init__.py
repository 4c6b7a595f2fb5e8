"""The HL7 v2 bridge: MLLP in, the message store, and v2-to-FHIR mapping.

`mllp` frames, serves and group-commits, `intake` checks and stores each message and builds
its ACK (`ack`), `store` keeps every message with its status, `mapper` maps stored messages in
the background (`mapping` turns a `message` into a FHIR transaction Bundle, `apply` runs it
through `Interactions`); `listener` puts them together and `cli` is `ficus hl7 ...`.
"""
