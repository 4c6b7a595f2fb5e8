"""Which v2 message a committed change becomes, built from the stored versions it concerns.

Patient and Encounter changes become ADT, DiagnosticReport and Observation changes ORU^R01.
An Observation that a DiagnosticReport lists as a result travels in that report's ORU, not on
its own. The message is built from the exact version the change wrote, and the resources it
refers to (the Patient in PID, the Encounter, the results) as they were when the change was
made, so a message does not depend on how long it waited to be built. Deleted reports and
results send nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ficus import fhirjson
from ficus.fhirtime import format_instant
from ficus.hl7v2.outbound import adt, oru
from ficus.hl7v2.outbound.encoding import ReverseVocabulary, reference_id
from ficus.hl7v2.outbound.segments import Header, msh, pid, pv1
from ficus.jobs.outbox import OutboxEvent
from ficus.outcome import FhirError
from ficus.search import find_ids
from ficus.store.database import Cursor
from ficus.store.repository import Repository

SOURCE_TYPES = {"Patient": "adt", "Encounter": "adt", "DiagnosticReport": "oru", "Observation": "oru"}


@dataclass(frozen=True)
class Draft:
    """A message without its MSH: what every destination of its kind gets."""

    kind: str
    message_type: str
    patient: str  # the ordering lane: the Patient's id, '' when the message names none
    segments: list[str]

    def render(self, header: Header, control_id: str, when: str) -> str:
        return "\r".join([msh(header, self.message_type, control_id, when), *self.segments])


class MessageBuilder:
    """Builds the Draft of an outbox event, reading through the consumer's transaction."""

    def __init__(self, repository: Repository, base_url: str) -> None:
        self.repository = repository
        self.base_url = base_url.rstrip("/")
        self.vocabulary = ReverseVocabulary()
        self._builders: dict[str, Callable[[Cursor, OutboxEvent], Draft | None]] = {
            "Patient": self._patient, "Encounter": self._encounter,
            "DiagnosticReport": self._report, "Observation": self._observation,
        }

    def draft(self, tx: Cursor, event: OutboxEvent) -> Draft | None:
        """The message for `event`, or None when the change has no v2 message."""
        builder = self._builders.get(event.res_type)
        return builder(tx, event) if builder else None

    def _patient(self, tx: Cursor, event: OutboxEvent) -> Draft | None:
        deleted = event.action == "DELETE"
        previous = self._version(tx, event.res_type, event.res_id, event.version - 1)
        patient = previous if deleted else self._version(tx, event.res_type, event.res_id, event.version)
        if patient is None:
            return None
        trigger = adt.patient_trigger(created=previous is None, deleted=deleted)
        segments = adt.adt_segments(self.vocabulary, trigger, patient, None, format_instant(event.created), self.base_url)
        return Draft("adt", adt.message_type(trigger), event.res_id, segments)

    def _encounter(self, tx: Cursor, event: OutboxEvent) -> Draft | None:
        deleted = event.action == "DELETE"
        previous = self._version(tx, event.res_type, event.res_id, event.version - 1)
        encounter = previous if deleted else self._version(tx, event.res_type, event.res_id, event.version)
        if encounter is None:
            return None
        patient_id, patient = self._subject(tx, encounter, event.created)
        if patient is None:  # ADT needs a PID
            return None
        trigger = adt.encounter_trigger(self.vocabulary, encounter, previous, deleted)
        segments = adt.adt_segments(self.vocabulary, trigger, patient, encounter, format_instant(event.created), self.base_url)
        return Draft("adt", adt.message_type(trigger), patient_id, segments)

    def _report(self, tx: Cursor, event: OutboxEvent) -> Draft | None:
        report = self._version(tx, event.res_type, event.res_id, event.version)
        if report is None:
            return None
        results = []
        for reference in report.get("result") or []:
            observation_id = reference_id(reference, "Observation")
            found = self._as_of(tx, "Observation", observation_id, event.created) if observation_id else None
            if found is not None:
                results.append(found)
        return self._oru(tx, report, results, event.created)

    def _observation(self, tx: Cursor, event: OutboxEvent) -> Draft | None:
        observation = self._version(tx, event.res_type, event.res_id, event.version)
        if observation is None:
            return None
        if find_ids(tx, self.repository.definitions, "DiagnosticReport", [("result", f"Observation/{event.res_id}")], 1):
            return None
        return self._oru(tx, observation, [observation], event.created)

    def _oru(self, tx: Cursor, source: dict, observations: list[dict], when: int) -> Draft:
        patient_id, patient = self._subject(tx, source, when)
        segments = []
        if patient is not None:
            segments.append(pid(self.vocabulary, patient, self.base_url))
            encounter_id = reference_id(source.get("encounter"), "Encounter")
            encounter = self._as_of(tx, "Encounter", encounter_id, when) if encounter_id else None
            if encounter is not None:
                segments.append(pv1(self.vocabulary, encounter))
        segments.append(oru.obr(self.vocabulary, source, self.base_url))
        set_id = 1
        for group, observation in enumerate(observations, start=1):
            obx = oru.obx_segments(self.vocabulary, observation, set_id, group)
            segments += obx
            set_id += len(obx)
        return Draft("oru", oru.MESSAGE_TYPE, patient_id or "", segments)

    def _subject(self, tx: Cursor, resource: dict, when: int) -> tuple[str | None, dict | None]:
        patient_id = reference_id(resource.get("subject"), "Patient")
        return patient_id, self._as_of(tx, "Patient", patient_id, when) if patient_id else None

    def _version(self, tx: Cursor, res_type: str, res_id: str, version: int) -> dict | None:
        if version < 1:
            return None
        try:
            found = self.repository.vread(res_type, res_id, version, tx)
        except FhirError:  # absent, or that version is a deletion
            return None
        return fhirjson.decode(found.content)

    @staticmethod
    def _as_of(tx: Cursor, res_type: str, res_id: str, when: int) -> dict | None:
        """The last version stored at `when` (µs) that is not a deletion; else the first one
        after it (a resource written later in the same transaction Bundle)."""
        for condition, order in (("last_updated <= ?", "DESC"), ("last_updated > ?", "ASC")):
            row = tx.execute(
                f"SELECT content FROM resource_version WHERE res_type = ? AND res_id = ? AND {condition} "
                f"AND content IS NOT NULL ORDER BY version {order} LIMIT 1",
                (res_type, res_id, when),
            ).fetchone()
            if row:
                return fhirjson.decode(bytes(row[0]))
        return None
