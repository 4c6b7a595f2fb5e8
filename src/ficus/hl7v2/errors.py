"""What went wrong with a v2 message, in the terms an ERR segment reports (HL7 table 0357)."""

from __future__ import annotations

from dataclasses import dataclass

ERROR_CODES = {
    "0": "Message accepted",
    "100": "Segment sequence error",
    "101": "Required field missing",
    "102": "Data type error",
    "103": "Table value not found",
    "200": "Unsupported message type",
    "201": "Unsupported event code",
    "205": "Duplicate key identifier",
    "207": "Application internal error",
}


@dataclass(frozen=True)
class ErrorLocation:
    """Segment, its sequence among segments of that name, field and component (ERR-2)."""

    segment: str
    sequence: int = 1
    field: int | None = None
    component: int | None = None

    def __str__(self) -> str:
        text = f"{self.segment}-{self.field}" if self.field else self.segment
        if self.component:
            text += f".{self.component}"
        return f"{text} in {self.segment} #{self.sequence}" if self.sequence > 1 else text


@dataclass(frozen=True)
class Problem:
    """One ERR segment: an HL7 error code, the text for people, and where it is."""

    code: str
    text: str
    location: ErrorLocation | None = None
    severity: str = "E"  # E error, W warning, I information (HL7 table 0516)

    def describe(self) -> str:
        where = f"{self.location}: " if self.location else ""
        return f"{where}{self.text}"


class V2Error(Exception):
    """A message that cannot be taken in or mapped; `ack_code` is AR (rejected) or AE (error)."""

    def __init__(self, code: str, text: str, location: ErrorLocation | None = None, ack_code: str = "AE") -> None:
        super().__init__(text)
        self.problem = Problem(code, text, location)
        self.ack_code = ack_code

    def __str__(self) -> str:
        return self.problem.describe()
