"""Taking in messages: decode, check the structure, store, and answer each with its ACK.

`Intake.check(frame)` reads what an ACK needs without parsing the whole message
(`message.check_structure`); `Intake.store(arrivals)` commits the messages of many connections
in one transaction and returns each one's ACK: AA once stored, AR/AE with a located ERR for a
message that cannot be read (kept as rejected). A resent message (same sender, control id and
content) is answered from the store and not applied again. Mapping happens later (`mapper`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from ficus.hl7v2 import store as s
from ficus.hl7v2.ack import acknowledgement
from ficus.hl7v2.errors import ErrorLocation, Problem, V2Error
from ficus.hl7v2.message import Header, check_structure, loose_header, message_digest, normalise_text, patient_key

log = logging.getLogger("ficus.hl7v2")

# MSH-18 character sets (HL7 table 0211) and the Python codecs that read them.
CHARSETS = {
    "ASCII": "ascii", "8859/1": "latin-1", "8859/2": "iso8859-2", "8859/5": "iso8859-5",
    "8859/7": "iso8859-7", "8859/15": "iso8859-15", "UNICODE UTF-8": "utf-8", "UTF-8": "utf-8",
    "ISO IR192": "utf-8", "ISO IR100": "latin-1", "WINDOWS-1252": "cp1252",
}


@dataclass(frozen=True)
class Arrival:
    """One frame as checked: what to store, the header to answer, the codec to answer in, and
    the error when it cannot be read (then it is stored as rejected)."""

    envelope: s.Envelope
    header: Header | None
    codec: str
    error: V2Error | None = None


class Intake:
    """Receives v2 messages into the store."""

    def __init__(self, message_store: s.MessageStore, encoding: str = "utf-8") -> None:
        self.store = message_store
        self.encoding = encoding

    def check(self, frame: bytes) -> Arrival:
        """The arrival of one MLLP frame's content; never raises for a bad message."""
        encoding = _declared_charset(frame) or self.encoding
        codec = _codec(encoding)
        try:
            text = normalise_text(self.decode(frame, encoding))
            header = check_structure(text)
        except V2Error as error:
            return self._rejected(frame.decode(codec, "backslashreplace"), codec, error)
        envelope = s.Envelope(header.sender, header.control_id, message_digest(text), header.message_type,
                              header.version, text, patient_key(text, header))
        return Arrival(envelope, header, codec)

    def refused(self, content: bytes, reason: str) -> Arrival:
        """The arrival of a frame that broke MLLP: rejected, answered AR."""
        codec = _codec(self.encoding)
        return self._rejected(content.decode(codec, "backslashreplace"), codec, V2Error("100", reason, None, "AR"))

    def store_all(self, arrivals: Sequence[Arrival]) -> list[bytes] | None:
        """Commit the arrivals in one transaction and return their ACKs (encoded), in order; None
        when they could not be stored (nobody gets an ACK, so the senders resend)."""
        try:
            receipts = self.store.record_many([arrival.envelope for arrival in arrivals])
        except Exception:
            log.exception("%d HL7 v2 messages could not be stored", len(arrivals))
            return None
        return [self._answered(arrival, receipt) for arrival, receipt in zip(arrivals, receipts, strict=True)]

    def _answered(self, arrival: Arrival, receipt: s.Receipt) -> bytes:
        """The ACK of a stored arrival; one that cannot be built in the sender's terms becomes
        a plain one, so a stored message is always answered (and not resent for ever)."""
        try:
            return self.answer(arrival, receipt)
        except Exception:
            log.exception("The ACK of HL7 v2 message #%s could not be built", receipt.id)
            code = "AA" if arrival.error is None and receipt.status != s.FAILED else "AE"
            return acknowledgement(None, code, f"Stored as message #{receipt.id}").encode("ascii", "replace")

    def answer(self, arrival: Arrival, receipt: s.Receipt) -> bytes:
        """The ACK (encoded) of a stored arrival."""
        problems: list[Problem] = []
        if not receipt.created:
            problems.append(Problem(
                "205", f"Duplicate of message #{receipt.id} (MSH-10 {arrival.envelope.control_id}); it was "
                f"received before and is not applied again", ErrorLocation("MSH", 1, 10), "I"))
        if arrival.error is not None:
            code, text = arrival.error.ack_code, f"Rejected: {arrival.error.problem.describe()}"
            problems.insert(0, arrival.error.problem)
        elif receipt.status == s.FAILED:
            code, text = "AE", f"Stored as message #{receipt.id}, not applied: {receipt.error}"
            problems.insert(0, Problem("207", receipt.error or "The message failed"))
        elif receipt.status == s.UNSUPPORTED:
            code, text = "AA", f"Stored as message #{receipt.id}, not mapped"
            problems.insert(0, Problem("200", receipt.error or "", None, "W"))
        else:
            code, text = "AA", f"Stored as message #{receipt.id}"
        ack = acknowledgement(arrival.header, code, text, problems)
        return ack.encode(arrival.codec, "replace")

    @staticmethod
    def decode(frame: bytes, encoding: str) -> str:
        """The frame as text in `encoding`; AR when it is not."""
        try:
            return frame.decode(encoding)
        except LookupError:
            raise V2Error("102", f"MSH-18 names a character set this listener cannot read ({encoding})",
                          ErrorLocation("MSH", 1, 18), "AR") from None
        except UnicodeDecodeError as error:
            raise V2Error(
                "102", f"The message is not valid {encoding} text (byte {frame[error.start]:#04x} at offset "
                f"{error.start}); declare its character set in MSH-18 or set the listener's encoding",
                ErrorLocation("MSH", 1, 18), "AR",
            ) from None

    @staticmethod
    def _rejected(text: str, codec: str, error: V2Error) -> Arrival:
        """Keep an unreadable message (status rejected, with the reason) and answer AR/AE."""
        header = loose_header(text)
        envelope = s.Envelope(
            header.sender if header else "", header.control_id if header else "", message_digest(text),
            header.message_type if header else "", header.version if header else "", text,
            status=s.REJECTED, error=error.problem.describe(),
        )
        return Arrival(envelope, header, codec, error)


def _declared_charset(frame: bytes) -> str | None:
    """The codec of the charset MSH-18 declares, read from the raw bytes (ASCII-safe)."""
    first = frame.lstrip(b"\xef\xbb\xbf").split(b"\r", 1)[0].split(b"\n", 1)[0]
    if len(first) < 4 or not first.startswith(b"MSH"):
        return None
    fields = first.split(first[3:4])
    if len(fields) <= 17:
        return None
    declared = fields[17].split(b"~")[0].decode("ascii", "replace").strip().upper()
    return CHARSETS.get(declared)


def _codec(encoding: str) -> str:
    """`encoding` if Python knows it, else latin-1 (which reads any byte), for raw text and ACKs."""
    try:
        "".encode(encoding)
    except LookupError:
        return "latin-1"
    return encoding
