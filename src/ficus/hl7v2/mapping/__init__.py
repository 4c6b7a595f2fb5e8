"""HL7 v2 to FHIR R4, after the HL7 v2-to-FHIR IG: one transaction Bundle per message."""

from __future__ import annotations

from dataclasses import dataclass, field

from ficus.fhirtime import format_instant, now_micros
from ficus.hl7v2.errors import ErrorLocation, Problem, V2Error
from ficus.hl7v2.mapping.context import MappingContext, MappingOptions
from ficus.hl7v2.mapping.datatypes import DataTypeError
from ficus.hl7v2.mapping.messages import MESSAGE_MAPS
from ficus.hl7v2.mapping.provenance import provenance
from ficus.hl7v2.mapping.vocabulary import Vocabulary
from ficus.hl7v2.message import V2Message

__all__ = ["Conversion", "MappingOptions", "UnsupportedMessage", "Vocabulary", "convert", "is_supported"]

_VOCABULARY = Vocabulary()


@dataclass
class Conversion:
    """A message as FHIR: the transaction Bundle, warnings for the ACK, and the entries that
    are partial (merged onto the current resource rather than replacing it)."""

    bundle: dict
    problems: list[Problem] = field(default_factory=list)
    merges: list[str] = field(default_factory=list)


class UnsupportedMessage(V2Error):
    """A well-formed message of an event that has no map (yet)."""


def is_supported(message: V2Message) -> bool:
    return message.header.event in MESSAGE_MAPS


def convert(message: V2Message, options: MappingOptions | None = None, recorded: int | None = None,
            vocabulary: Vocabulary | None = None) -> Conversion:
    """Map `message` to a transaction Bundle; `recorded` (microseconds) stamps the Provenance.

    Raises `UnsupportedMessage` for an event without a map and `V2Error` (AE) for a message
    the map cannot read, naming the segment and field."""
    header = message.header
    found = MESSAGE_MAPS.get(header.event)
    if found is None:
        known_code = any(event.startswith(header.message_code + "^") for event in MESSAGE_MAPS)
        code = "201" if known_code else "200"
        raise UnsupportedMessage(
            code, f"{header.event} is stored but not mapped to FHIR: no map for this "
            f"{'event' if known_code else 'message type'} yet (replay it once one exists)",
            ErrorLocation("MSH", 1, 9, 2 if known_code else 1), "AA",
        )
    ctx = MappingContext(message, vocabulary or _VOCABULARY, options or MappingOptions())
    try:
        found.build(ctx)
    except DataTypeError as error:
        raise V2Error("102", str(error)) from None
    provenance(ctx, format_instant(recorded if recorded is not None else now_micros()))
    return Conversion(ctx.builder.bundle(), ctx.problems, ctx.merges)
