"""ADT messages from Patient and Encounter changes.

The trigger follows the IG's Event -> Encounter.status map read backwards, from the status a
change moved the Encounter to: in progress -> A01 (inpatient) or A04, finished -> A03, back
from finished -> A13, cancelled -> A11, planned when new -> A05, any other change -> A08. A new
Patient is registered with A04, a changed one sent as A08, a deleted one as A29.
"""

from __future__ import annotations

from ficus.hl7v2.outbound.encoding import ReverseVocabulary
from ficus.hl7v2.outbound.segments import evn, patient_class, pid, pv1

STRUCTURES = {
    "A01": "ADT_A01", "A03": "ADT_A03", "A04": "ADT_A01", "A05": "ADT_A05", "A08": "ADT_A01",
    "A11": "ADT_A09", "A13": "ADT_A01", "A29": "ADT_A21",
}
_ACTIVE = {"arrived", "triaged", "in-progress", "onleave"}
_VOIDED = {"cancelled", "entered-in-error"}


def patient_trigger(created: bool, deleted: bool) -> str:
    return "A29" if deleted else "A04" if created else "A08"


def encounter_trigger(vocabulary: ReverseVocabulary, encounter: dict, previous: dict | None, deleted: bool) -> str:
    """The ADT event of a change from `previous` (None: new) to `encounter`."""
    if deleted:
        return "A11"
    status = encounter.get("status")
    before = previous.get("status") if previous else None
    if status == "finished":
        return "A03" if before != "finished" else "A08"
    if status in _VOIDED:
        return "A11" if before not in _VOIDED else "A08"
    if status in _ACTIVE and before == "finished":
        return "A13"
    if status in _ACTIVE and before not in _ACTIVE:
        return "A01" if patient_class(vocabulary, encounter) == "I" else "A04"
    if status == "planned" and previous is None:
        return "A05"
    return "A08"


def message_type(trigger: str) -> str:
    return f"ADT^{trigger}^{STRUCTURES[trigger]}"


def adt_segments(vocabulary: ReverseVocabulary, trigger: str, patient: dict, encounter: dict | None,
                 recorded: str | None, base_url: str) -> list[str]:
    """EVN, PID and PV1 of an ADT message (MSH is added per destination)."""
    period = (encounter or {}).get("period") or {}
    occurred = period.get("end") if trigger == "A03" else period.get("start") if trigger in ("A01", "A04") else None
    return [evn(trigger, recorded, occurred), pid(vocabulary, patient, base_url), pv1(vocabulary, encounter)]
