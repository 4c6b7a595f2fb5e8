"""Taking in one message: decode, read the header, store it, map and apply it, and answer.

`Intake.receive(frame)` is synchronous (the store is) and never raises for a bad message: every
outcome is an ACK. The message is committed to the store before anything else happens to it, so
an ACK is only ever sent for a message that is kept. A resent message (same sender, control id
and content) is answered from the store and not applied again; a message whose processing was
cut short (a crash) is processed when it is resent, or by `recover`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from ficus.api.interactions import Interactions
from ficus.hl7v2 import store as s
from ficus.hl7v2.ack import acknowledgement
from ficus.hl7v2.apply import apply_conversion
from ficus.hl7v2.errors import ErrorLocation, Problem, V2Error
from ficus.hl7v2.mapping import MappingOptions, UnsupportedMessage, Vocabulary, convert
from ficus.hl7v2.message import Header, V2Message, loose_header, message_digest
from ficus.outcome import FhirError
from ficus.terminology.mapping.bridge import StoredConceptMaps

log = logging.getLogger("ficus.hl7v2")

# MSH-18 character sets (HL7 table 0211) and the Python codecs that read them.
CHARSETS = {
    "ASCII": "ascii", "8859/1": "latin-1", "8859/2": "iso8859-2", "8859/5": "iso8859-5",
    "8859/7": "iso8859-7", "8859/15": "iso8859-15", "UNICODE UTF-8": "utf-8", "UTF-8": "utf-8",
    "ISO IR192": "utf-8", "ISO IR100": "latin-1", "WINDOWS-1252": "cp1252",
}
WAIT_FOR_OTHER_SECONDS = 30.0


@dataclass
class Outcome:
    """What became of one message: its stored status and the acknowledgement code and errors."""

    status: str
    ack_code: str
    text: str
    problems: list[Problem] = field(default_factory=list)
    message_id: int | None = None
    resources: list[str] = field(default_factory=list)


class Intake:
    """Receives v2 messages into the store and the FHIR resources they map to."""

    def __init__(self, interactions: Interactions, message_store: s.MessageStore,
                 options: MappingOptions | None = None, encoding: str = "utf-8") -> None:
        self.interactions = interactions
        self.store = message_store
        self.options = options or MappingOptions()
        self.encoding = encoding
        # local codes are translated by the ConceptMaps stored in this server
        self.vocabulary = Vocabulary(local_maps=StoredConceptMaps(interactions.repository))

    # -- receiving ------------------------------------------------------------------------------

    def receive(self, frame: bytes) -> bytes | None:
        """The ACK (encoded) for one MLLP frame's content; None when it could not be stored (the
        sender gets no ACK and resends)."""
        encoding = _declared_charset(frame) or self.encoding
        header: Header | None = None
        try:
            try:
                text = self.decode(frame, encoding)
                message = V2Message(text)
                header = message.header
                outcome = self._take(message, text)
            except V2Error as error:
                text = frame.decode(_codec(encoding), "backslashreplace")
                header = loose_header(text)
                outcome = self._reject(text, header, error)
        except Exception:  # the store is unreachable: no ACK, so the sender resends
            log.exception("HL7 v2 message could not be stored")
            return None
        ack = acknowledgement(header, outcome.ack_code, outcome.text, outcome.problems)
        return ack.encode(_codec(encoding), "replace")

    def refuse(self, content: bytes, reason: str) -> bytes:
        """The AR for a frame that broke MLLP (kept as rejected, for the record)."""
        text = content.decode(_codec(self.encoding), "backslashreplace")
        header = loose_header(text)
        error = V2Error("100", reason, None, "AR")
        try:
            outcome = self._reject(text, header, error)
        except Exception:  # the refusal is sent even if it cannot be recorded
            log.exception("A refused MLLP frame could not be recorded")
            outcome = Outcome(s.REJECTED, "AR", f"Rejected: {reason}", [error.problem])
        ack = acknowledgement(header, outcome.ack_code, outcome.text, outcome.problems)
        return ack.encode(_codec(self.encoding), "replace")

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

    def _take(self, message: V2Message, text: str) -> Outcome:
        header = message.header
        envelope = s.Envelope(header.sender, header.control_id, message.digest, header.message_type,
                              header.version, text)
        stored, created = self.store.record(envelope)
        if created:
            return self._process(stored, message)
        return self._answer_duplicate(stored)

    def _reject(self, text: str, header: Header | None, error: V2Error) -> Outcome:
        """Keep an unreadable message (status rejected) and answer AR with what is wrong."""
        envelope = s.Envelope(
            header.sender if header else "", header.control_id if header else "", message_digest(text),
            header.message_type if header else "", header.version if header else "", text,
        )
        stored, _ = self.store.record(envelope, status=s.REJECTED)
        if stored.status == s.REJECTED and stored.error is None:
            self.store.finish(stored.id, s.REJECTED, error=error.problem.describe())
        return Outcome(s.REJECTED, error.ack_code, f"Rejected: {error.problem.describe()}", [error.problem], stored.id)

    def _answer_duplicate(self, stored: s.StoredMessage) -> Outcome:
        if stored.status == s.RECEIVED:
            claimed = self.store.claim(stored.id)
            if claimed is not None:
                return self._process(claimed, V2Message(claimed.raw))
            stored = self._wait_for_outcome(stored)
        note = Problem("205", f"Duplicate of message #{stored.id} (MSH-10 {stored.control_id}); it was "
                       f"received before and is not applied again", ErrorLocation("MSH", 1, 10), "I")
        return _answer(stored, [note])

    def _wait_for_outcome(self, stored: s.StoredMessage) -> s.StoredMessage:
        """Another worker holds the message: wait (bounded) for it to finish."""
        deadline = time.monotonic() + WAIT_FOR_OTHER_SECONDS
        while stored.status == s.RECEIVED and time.monotonic() < deadline:
            time.sleep(0.05)
            stored = self.store.get(stored.id) or stored
        return stored

    # -- processing -----------------------------------------------------------------------------

    def _process(self, stored: s.StoredMessage, message: V2Message, replay: bool = False) -> Outcome:
        """Map and apply a stored message (leased to us) and record the outcome."""
        try:
            conversion = convert(message, self.options, recorded=stored.received, vocabulary=self.vocabulary)
            applied = apply_conversion(self.interactions, conversion)
        except UnsupportedMessage as error:
            self.store.finish(stored.id, s.UNSUPPORTED, error=error.problem.describe())
            return Outcome(s.UNSUPPORTED, "AA", "Stored, not mapped", [_warning(error.problem)], stored.id)
        except V2Error as error:
            return self._fail(stored, error.problem)
        except FhirError as error:
            return self._fail(stored, Problem("207", f"The FHIR transaction was refused: {error}"))
        except Exception as error:  # a mapping bug must not cost the message: it is kept as failed
            log.exception("HL7 v2 message #%s could not be mapped", stored.id)
            return self._fail(stored, Problem("207", f"Internal error while mapping: {type(error).__name__}: {error}"))
        status = s.REPLAYED if replay else s.MAPPED
        warnings = [problem.describe() for problem in conversion.problems]
        self.store.finish(stored.id, status, warnings=warnings, resources=applied.resources)
        text = f"Mapped to {len(applied.resources)} FHIR resources ({applied.written} written)"
        return Outcome(status, "AA", text, conversion.problems, stored.id, applied.resources)

    def _fail(self, stored: s.StoredMessage, problem: Problem) -> Outcome:
        """The dead letter: kept with its reason, answered AE, replayable after a fix."""
        self.store.finish(stored.id, s.FAILED, error=problem.describe())
        return Outcome(s.FAILED, "AE", f"Stored, not applied: {problem.describe()}", [problem], stored.id)

    # -- operations ---------------------------------------------------------------------------

    def replay(self, message_id: int) -> Outcome:
        """Map and apply a stored message again (after a mapping fix); a message that changes
        nothing writes nothing."""
        stored = self.store.claim(message_id, statuses=(s.FAILED, s.UNSUPPORTED, s.MAPPED, s.REPLAYED, s.RECEIVED))
        if stored is None:
            found = self.store.get(message_id)
            if found is None:
                raise KeyError(f"No HL7 v2 message #{message_id}")
            return Outcome(found.status, "AR", f"Message #{message_id} is {found.status} and cannot be replayed now",
                           message_id=message_id)
        try:
            message = V2Message(stored.raw)
        except V2Error as error:
            return self._fail(stored, error.problem)
        return self._process(stored, message, replay=True)

    def recover(self) -> int:
        """Process the messages a stopped listener stored but never finished; returns how many."""
        done = 0
        for message_id in self.store.stale():
            stored = self.store.claim(message_id)
            if stored is not None:
                try:
                    self._process(stored, V2Message(stored.raw))
                except V2Error as error:
                    self._fail(stored, error.problem)
                done += 1
        return done


def _answer(stored: s.StoredMessage, extra: list[Problem]) -> Outcome:
    """The ACK a stored message earns again (for a resend)."""
    if stored.status in (s.FAILED, s.REJECTED):
        problem = Problem("207", stored.error or "The message failed")
        return Outcome(stored.status, "AE" if stored.status == s.FAILED else "AR", f"Stored, not applied: {stored.error}",
                       [problem, *extra], stored.id)
    if stored.status == s.UNSUPPORTED:
        return Outcome(stored.status, "AA", "Stored, not mapped", [Problem("200", stored.error or "", None, "W"), *extra], stored.id)
    if stored.status == s.RECEIVED:
        return Outcome(stored.status, "AA", "Stored; still being processed", extra, stored.id)
    return Outcome(stored.status, "AA", "Already received and applied", extra, stored.id, stored.resources)


def _warning(problem: Problem) -> Problem:
    return Problem(problem.code, problem.text, problem.location, "W")


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
