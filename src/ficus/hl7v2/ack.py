"""Original-mode acknowledgements: MSH, MSA and one ERR segment per problem."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from ficus.hl7v2.errors import ERROR_CODES, Problem
from ficus.hl7v2.message import Header

RECEIVER = "Ficus"
DEFAULT_VERSION = "2.5.1"


def acknowledgement(header: Header | None, code: str, text: str, problems: list[Problem] | None = None) -> str:
    """The ACK text (segments separated by CR) answering `header`'s message with `code`.

    Without a header (a frame that held no readable MSH) the ACK uses the standard separators
    and leaves MSA-2 empty. Each problem becomes an ERR segment carrying both the v2.3-style
    ERR-1 and the v2.5-style ERR-2/3/4/8, so old and new receivers can read it.
    """
    separators = _Separators(header)
    msh = _header_segment(header, separators)
    msa = separators.join("MSA", code, separators.escape(header.control_id) if header else "", separators.escape(text))
    segments = [msh, msa] + [_error_segment(problem, separators) for problem in problems or []]
    return "\r".join(segments)


class _Separators:
    def __init__(self, header: Header | None) -> None:
        encoding = header.encoding_characters if header and len(header.encoding_characters) >= 4 else "^~\\&"
        self.field = header.field_separator if header and header.field_separator else "|"
        self.encoding = encoding
        self.component, self.repetition, self.escape_char, self.subcomponent = encoding[:4]

    def join(self, *fields: str) -> str:
        return self.field.join(fields).rstrip(self.field)

    def escape(self, text: str) -> str:
        """Text made safe for a field: separators as escape sequences, line breaks as \\.br\\."""
        e = self.escape_char
        replacements = [
            (e, f"{e}E{e}"), (self.field, f"{e}F{e}"), (self.component, f"{e}S{e}"),
            (self.repetition, f"{e}R{e}"), (self.subcomponent, f"{e}T{e}"),
        ]
        for old, new in replacements:
            text = text.replace(old, new)
        return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", f"{e}.br{e}")


def _header_segment(header: Header | None, s: _Separators) -> str:
    now = datetime.now(UTC).strftime("%Y%m%d%H%M%S+0000")
    trigger = header.trigger_event if header else ""
    message_type = s.component.join(["ACK", trigger, "ACK"]) if trigger else "ACK"
    return s.join(
        "MSH", s.encoding,
        header.receiving_application if header and header.receiving_application else RECEIVER,
        header.receiving_facility if header else "",
        header.sending_application if header else "",
        header.sending_facility if header else "",
        now, "", message_type, uuid.uuid4().hex[:20],
        header.processing_id if header and header.processing_id else "P",
        header.version if header and header.version else DEFAULT_VERSION,
    )


def _error_segment(problem: Problem, s: _Separators) -> str:
    location = problem.location
    name = ERROR_CODES.get(problem.code, "")
    segment = location.segment if location else ""
    sequence = str(location.sequence) if location else ""
    field = str(location.field) if location and location.field else ""
    component = str(location.component) if location and location.component else ""
    coded = s.subcomponent.join([problem.code, s.escape(name), "HL70357"])
    eld = s.component.join([segment, sequence, field, coded])
    erl = s.component.join([segment, sequence, field, "", component]).rstrip(s.component) if location else ""
    cwe = s.component.join([problem.code, s.escape(name), "HL70357"])
    return s.join("ERR", eld, erl, cwe, problem.severity, "", "", "", s.escape(problem.describe()))
