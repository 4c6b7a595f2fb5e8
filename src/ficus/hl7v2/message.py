"""HL7 v2 messages parsed with python-hl7 into a regular shape that mapping code can read.

python-hl7 returns a plain string for a field without separators and nested lists otherwise;
`V2Message` turns every field into repetitions of `Composite`s (components, each with its
subcomponents), unescapes the text once, and exposes the MSH header as `Header`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import hl7

from ficus.hl7v2.errors import ErrorLocation, V2Error

_SEGMENT_NAME = re.compile(r"[A-Z][A-Z0-9]{2}")
_UNESCAPE_MAP = {"H": "", "N": "", ".br": "\n", ".sp": "\n", ".ce": "\n"}
Parts = tuple[tuple[str, ...], ...]


class Composite:
    """One field repetition (its components) or one component (its subcomponents), 1-based."""

    __slots__ = ("_parts",)

    def __init__(self, parts: Parts) -> None:
        self._parts = parts

    def __getitem__(self, index: int) -> str:
        """The text of part `index` (its first subcomponent), stripped; "" when absent."""
        if 0 < index <= len(self._parts):
            part = self._parts[index - 1]
            return part[0].strip() if part else ""
        return ""

    def raw(self, index: int = 1) -> str:
        """Part `index` unstripped, with its subcomponents joined by `&`."""
        if 0 < index <= len(self._parts):
            return "&".join(self._parts[index - 1])
        return ""

    def sub(self, index: int) -> Composite:
        """Part `index` as a composite of its subcomponents (e.g. CX.4, an HD)."""
        if 0 < index <= len(self._parts):
            return Composite(tuple((text,) for text in self._parts[index - 1]))
        return Composite(())

    def __bool__(self) -> bool:
        return any(text.strip() for part in self._parts for text in part)

    def __len__(self) -> int:
        return len(self._parts)

    def __repr__(self) -> str:
        return f"Composite({self._parts!r})"


EMPTY = Composite(())


class Segment:
    """One segment: `fields[n]` holds the repetitions of field n (MSH-1 is the field separator)."""

    __slots__ = ("fields", "index", "name")

    def __init__(self, name: str, fields: list[list[Composite]], index: int) -> None:
        self.name = name
        self.fields = fields
        self.index = index  # 1-based position among the segments of the same name

    def repetitions(self, field: int) -> list[Composite]:
        """The valued repetitions of `field`."""
        if 0 < field < len(self.fields):
            return [rep for rep in self.fields[field] if rep]
        return []

    def first(self, field: int) -> Composite:
        reps = self.repetitions(field)
        return reps[0] if reps else EMPTY

    def value(self, field: int, component: int = 1) -> str:
        return self.first(field)[component]

    def where(self, field: int | None = None, component: int | None = None) -> ErrorLocation:
        return ErrorLocation(self.name, self.index, field, component)


@dataclass(frozen=True)
class Header:
    """What the MSH segment says about a message."""

    field_separator: str
    encoding_characters: str
    sending_application: str
    sending_facility: str
    receiving_application: str
    receiving_facility: str
    timestamp: str
    message_code: str
    trigger_event: str
    structure: str
    control_id: str
    processing_id: str
    version: str
    charset: str

    @property
    def sender(self) -> str:
        """The sending application and facility (MSH-3|MSH-4): the scope of MSH-10."""
        return f"{self.sending_application}|{self.sending_facility}"

    @property
    def message_type(self) -> str:
        return "^".join(part for part in (self.message_code, self.trigger_event, self.structure) if part)

    @property
    def event(self) -> str:
        """`ADT^A01`: the message code and trigger event that choose a mapping."""
        return f"{self.message_code}^{self.trigger_event}"


class V2Message:
    """A parsed message: its header and its segments in order."""

    def __init__(self, text: str) -> None:
        self.text = normalise_text(text)
        if not self.text.startswith("MSH"):
            raise V2Error("100", "The message does not start with an MSH segment", ErrorLocation("MSH", 1), "AR")
        _check_separators(self.text)
        try:
            parsed = hl7.parse(self.text)
        except (ValueError, IndexError, AssertionError, hl7.ParseException) as error:
            raise V2Error("100", f"The message cannot be parsed: {error or type(error).__name__}",
                          ErrorLocation("MSH", 1), "AR") from None
        self._parsed = parsed
        self.segments = self._segments(parsed)
        self.header = self._header()

    def _segments(self, parsed: Any) -> list[Segment]:
        counts: dict[str, int] = {}
        segments = []
        for position, raw in enumerate(parsed, start=1):
            name = str(raw[0]).strip()
            if not _SEGMENT_NAME.fullmatch(name):
                raise V2Error("100", f"Segment {position} has an invalid name {name[:10]!r}", ErrorLocation(name[:3], 1), "AR")
            counts[name] = counts.get(name, 0) + 1
            fields = [self._field(value) for value in raw]
            if name == "MSH":
                fields[1] = [Composite(((str(raw[1]),),))]
                fields[2] = [Composite(((str(raw[2]),),))]
            segments.append(Segment(name, fields, counts[name]))
        return segments

    def _field(self, value: Any) -> list[Composite]:
        if isinstance(value, str):
            return [Composite(((self._text(value),),))]
        items = list(value)
        if items and all(isinstance(item, str) for item in items):
            return [Composite(((self._text("".join(items)),),))]
        return [self._repetition(rep) for rep in items]

    def _repetition(self, rep: Any) -> Composite:
        if isinstance(rep, str):
            return Composite(((self._text(rep),),))
        return Composite(tuple(self._component(component) for component in rep))

    def _component(self, component: Any) -> tuple[str, ...]:
        if isinstance(component, str):
            return (self._text(component),)
        return tuple(self._text(str(sub)) for sub in component)

    def _text(self, text: str) -> str:
        if self._parsed.esc in text:
            return self._parsed.unescape(text, _UNESCAPE_MAP)
        return text

    def _header(self) -> Header:
        msh = self.segments[0]
        message_type = msh.first(9)
        control_id = msh.value(10)
        if not message_type[1] or not message_type[2]:
            raise V2Error("101", "MSH-9 (message type) must give a message code and a trigger event", msh.where(9), "AR")
        if not control_id:
            raise V2Error("101", "MSH-10 (message control id) is empty", msh.where(10), "AR")
        return Header(
            field_separator=msh.value(1),
            encoding_characters=msh.value(2),
            sending_application=_field_text(msh, 3),
            sending_facility=_field_text(msh, 4),
            receiving_application=_field_text(msh, 5),
            receiving_facility=_field_text(msh, 6),
            timestamp=msh.value(7),
            message_code=message_type[1],
            trigger_event=message_type[2],
            structure=message_type[3],
            control_id=control_id,
            processing_id=msh.value(11),
            version=msh.value(12),
            charset=msh.value(18),
        )

    def __iter__(self) -> Iterator[Segment]:
        return iter(self.segments)

    def segment(self, name: str) -> Segment | None:
        return next((segment for segment in self.segments if segment.name == name), None)

    def all(self, name: str) -> list[Segment]:
        return [segment for segment in self.segments if segment.name == name]

    @property
    def digest(self) -> str:
        return message_digest(self.text)


def _check_separators(text: str) -> None:
    """MSH-1 and MSH-2 must name distinct separators before anything else can be read."""
    field_separator = text[3:4]
    encoding = text[4:].split(field_separator, 1)[0] if field_separator else ""
    characters = field_separator + encoding[:4]
    if (len(encoding) not in (4, 5) or len(set(characters)) != 5
            or any(char.isalnum() or char.isspace() for char in characters)):
        raise V2Error(
            "100", f"MSH-1/MSH-2 must give five distinct separator characters (such as |^~\\&), not {text[3:9]!r}",
            ErrorLocation("MSH", 1, 2), "AR",
        )


def _field_text(segment: Segment, field: int) -> str:
    """A field as sent (components joined by ^), e.g. MSH-4 `GHH^2.16.840.1.1^ISO`."""
    rep = segment.first(field)
    return "^".join(rep.raw(i) for i in range(1, len(rep) + 1)).rstrip("^")


def check_structure(text: str) -> Header:
    """The header of a normalised message after the checks an ACK can be sent on without parsing
    the whole message: an MSH first, valid separators, MSH-9 and MSH-10 given, and every segment
    named by three capitals or digits. Raises `V2Error` (AR) at the first failure, located as
    `V2Message` would locate it; the full parse happens later, when the message is mapped."""
    if not text.startswith("MSH"):
        raise V2Error("100", "The message does not start with an MSH segment", ErrorLocation("MSH", 1), "AR")
    _check_separators(text)
    header = loose_header(text)
    assert header is not None  # an MSH line with valid separators
    msh = ErrorLocation("MSH", 1)
    if not header.message_code or not header.trigger_event:
        raise V2Error("101", "MSH-9 (message type) must give a message code and a trigger event",
                      ErrorLocation("MSH", 1, 9), "AR")
    if not header.control_id:
        raise V2Error("101", "MSH-10 (message control id) is empty", ErrorLocation(msh.segment, 1, 10), "AR")
    separator = header.field_separator
    for position, line in enumerate(text.split("\r"), start=1):
        name = line.split(separator, 1)[0].strip()
        if not _SEGMENT_NAME.fullmatch(name):
            raise V2Error("100", f"Segment {position} has an invalid name {name[:10]!r}", ErrorLocation(name[:3], 1), "AR")
    return header


def patient_key(text: str, header: Header) -> str:
    """Who a normalised message is about, read from the first PID's first identifier (PID-3, or
    PID-2 in old messages) as `authority|id`: messages with the same key are applied in arrival
    order. A merge (an MRG segment) is about two patients and returns `*`, which orders it with
    every message; a message without a PID returns ""."""
    separator = header.field_separator
    component, repetition = header.encoding_characters[:1] or "^", header.encoding_characters[1:2] or "~"
    key = ""
    for line in text.split("\r"):
        name = line[:3]
        if name == "MRG":
            return "*"
        if name == "PID" and not key:
            fields = line.split(separator)
            for number in (3, 2):
                identifier = fields[number].split(repetition)[0] if len(fields) > number else ""
                parts = identifier.split(component)
                if parts[0].strip():
                    key = f"{parts[3].strip() if len(parts) > 3 else ''}|{parts[0].strip()}"
                    break
            else:
                key = "|"
    return key


def loose_header(text: str) -> Header | None:
    """The MSH read by splitting its line, without unescaping: enough for the store and the ACK
    of any message, including one that fails to parse (then it still names the sender and
    control id); None without an MSH line."""
    first = normalise_text(text).split("\r", 1)[0]
    if not first.startswith("MSH") or len(first) < 8:
        return None
    separator = first[3]
    fields = ["MSH", separator, *first[4:].split(separator)] + [""] * 20
    component = fields[2][:1] or "^"
    repetition = fields[2][1:2] or "~"

    def field(number: int) -> str:
        return fields[number].split(repetition)[0].rstrip(component) if repetition != separator else fields[number]

    def part(number: int) -> list[str]:
        return [value.strip() for value in field(number).split(component)] + ["", "", ""]

    message_type = part(9)
    return Header(separator, fields[2], field(3), field(4), field(5), field(6), part(7)[0], message_type[0],
                  message_type[1], message_type[2], part(10)[0], part(11)[0], part(12)[0], part(18)[0])


def normalise_text(text: str) -> str:
    """Segments separated by CR, without a byte order mark or blank lines."""
    text = text.lstrip("\ufeff").replace("\r\n", "\r").replace("\n", "\r")
    return "\r".join(line for line in text.split("\r") if line.strip())


def message_digest(text: str) -> str:
    """SHA-256 of the normalised message without MSH-7, which some senders restamp on resend."""
    lines = normalise_text(text).split("\r")
    if lines and lines[0].startswith("MSH") and len(lines[0]) > 3:
        fields = lines[0].split(lines[0][3])
        if len(fields) > 6:
            fields[6] = ""
        lines[0] = lines[0][3].join(fields)
    return hashlib.sha256("\r".join(lines).encode("utf-8", "surrogatepass")).hexdigest()


def split_messages(text: str) -> list[str]:
    """The messages of a file holding one or more messages, each starting at an MSH line."""
    messages: list[list[str]] = []
    for line in normalise_text(text).split("\r"):
        if line.startswith("MSH") or not messages:
            messages.append([])
        messages[-1].append(line)
    return ["\r".join(lines) for lines in messages if lines]
