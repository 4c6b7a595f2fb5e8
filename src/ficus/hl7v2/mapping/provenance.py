"""The Provenance of one message: what it produced, when, from which sender and message."""

from __future__ import annotations

from typing import Any

from ficus.hl7v2.mapping import datatypes as dt
from ficus.hl7v2.mapping.context import MappingContext

EVENT_TYPES = "http://terminology.hl7.org/CodeSystem/v2-0003"
PARTICIPANT_TYPES = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"


def provenance(ctx: MappingContext, recorded: str) -> None:
    """Add a Provenance targeting every resource of the Bundle, with the message (sender and
    control id, MSH-10) as its source entity. Its id derives from the message, so a replay
    rewrites the same Provenance."""
    targets = [{"reference": entry["fullUrl"]} for entry in ctx.builder.entries]
    if not targets:
        return
    header = ctx.header
    resource: dict[str, Any] = {
        "resourceType": "Provenance",
        "target": targets,
        "recorded": recorded,
        "activity": {"coding": [{"system": EVENT_TYPES, "code": header.trigger_event}], "text": header.message_type},
        "agent": [{
            "type": {"coding": [{"system": PARTICIPANT_TYPES, "code": "author"}]},
            "who": {"identifier": {"system": ctx.local_system("sending-facility"), "value": header.sender},
                    "display": header.sender.replace("|", " at ")},
        }],
        "entity": [{
            "role": "source",
            "what": {
                "identifier": {"system": ctx.local_system(header.sender) + ":message", "value": header.control_id},
                "display": f"{header.message_type} message {header.control_id}",
            },
        }],
    }
    occurred = _occurred(ctx)
    if occurred:
        resource["occurredDateTime"] = occurred
    ctx.builder.upsert(resource, key=("provenance", header.control_id, ctx.message.digest))


def _occurred(ctx: MappingContext) -> str | None:
    evn = ctx.message.segment("EVN")
    when = (evn.value(6) or evn.value(2)) if evn is not None else ""
    try:
        return dt.date_time(ctx, when or ctx.header.timestamp)
    except dt.DataTypeError:
        return None
