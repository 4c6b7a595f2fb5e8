"""What mapping one message needs at hand: the message, vocabulary, options and the Bundle."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

from ficus.hl7v2.errors import ErrorLocation, Problem
from ficus.hl7v2.mapping.bundle import TransactionBuilder
from ficus.hl7v2.mapping.vocabulary import Vocabulary
from ficus.hl7v2.message import V2Message

LOCAL_SYSTEM_BASE = "urn:ficus:hl7v2:"


@dataclass(frozen=True)
class MappingOptions:
    """Site settings: the time zone of v2 times sent without an offset, and local code tables
    (`tables/<sending facility>/<ConceptMap name>.csv`, laid over the IG's maps)."""

    timezone: str = "UTC"
    local_tables: Path | None = None


class MappingContext:
    """The state of mapping one message: its Bundle, its patient/encounter, its warnings."""

    def __init__(self, message: V2Message, vocabulary: Vocabulary, options: MappingOptions) -> None:
        self.message = message
        self.header = message.header
        self.options = options
        self.timezone = ZoneInfo(options.timezone)
        facility = self.header.sending_facility.split("^")[0] or self.header.sending_application.split("^")[0]
        self.facility = facility or "unknown"
        local = options.local_tables / _safe_name(self.facility) if options.local_tables else None
        self.vocabulary = vocabulary.overlaid(local).for_message()
        self.builder = TransactionBuilder(self.header.sender)
        self.problems: list[Problem] = []
        self.patient: str | None = None  # the fullUrl of the message's patient
        self.patient_key = ""  # its identifier as `system|value`, scoping natural keys
        self.encounter: str | None = None
        self.encounter_key = ""
        self.merges: list[str] = []  # fullUrls of entries to merge onto the current resource

    def warn(self, code: str, text: str, location: ErrorLocation | None = None) -> None:
        self.problems.append(Problem(code, text, location, "W"))

    def local_system(self, namespace: str | None = None) -> str:
        """The identifier system for ids a v2 authority assigns without a universal id (its
        namespace, else the sending facility): `urn:ficus:hl7v2:<namespace>`."""
        return LOCAL_SYSTEM_BASE + quote(namespace or self.facility, safe="")


def _safe_name(name: str) -> str:
    return "".join(char if char.isalnum() or char in "-_." else "_" for char in name)
