"""The HL7 v2 bridge: MLLP in, the message store, and v2-to-FHIR mapping.

`mllp` frames and serves, `intake` stores, maps and acknowledges each message (`ack`), `store`
keeps every message with its status, `mapping` turns a `message` into a FHIR transaction Bundle
and `apply` runs it through `Interactions`; `listener` puts them together and `cli` is
`ficus hl7 ...`.
"""
