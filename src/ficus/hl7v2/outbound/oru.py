"""ORU^R01 from a DiagnosticReport (OBR, one OBX per result) or a lone Observation.

OBX-2 follows value[x]: Quantity -> NM (SN with a comparator), integer -> NM, string -> ST (TX
when long or multi-line), CodeableConcept -> CWE, boolean -> CWE of HL7 table 0136, Range and
Ratio -> SN, dateTime -> DTM, time -> TM, Period -> DR. Components become OBX segments of
their own, grouped by OBX-4.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ficus.hl7v2.outbound.encoding import (
    UCUM,
    ReverseVocabulary,
    code_of,
    components,
    cwe,
    dtm,
    ei,
    escape,
    format_decimal,
    repetitions,
    time_of_day,
)
from ficus.hl7v2.outbound.segments import segment

MESSAGE_TYPE = "ORU^R01^ORU_R01"
_REPORT_STATUS = "http://hl7.org/fhir/diagnostic-report-status"
_OBSERVATION_STATUS = "http://hl7.org/fhir/observation-status"
# statuses the IG's ResultStatus sheet leaves without a v2 code; HL7 table 0123 has C for them
_CORRECTED = {"corrected": "C", "amended": "C", "appended": "C"}
_MAX_ST = 199  # ST is for short strings; longer text goes as TX


def obr(vocabulary: ReverseVocabulary, source: dict, base_url: str) -> str:
    """OBR from a DiagnosticReport (or, for a lone result, the Observation itself)."""
    identifiers = source.get("identifier") or []
    filler = ei(vocabulary, identifiers[0]) if identifiers else components(
        escape(source.get("id")), "", escape(f"{base_url}/{source.get('resourceType')}"), "URI")
    start, end = _effective(source)
    status = source.get("status") or ""
    result_status = vocabulary.v2_code("ResultStatus[Non-Queries]", None, status) or _CORRECTED.get(status, "")
    categories = source.get("category") or []
    category = categories[0] if isinstance(categories, list) and categories else {}
    fields = [""] * 25
    fields[0] = "1"
    fields[2] = filler
    fields[3] = cwe(vocabulary, source.get("code"))
    fields[6] = dtm(start)
    fields[7] = dtm(end)
    fields[21] = dtm(source.get("issued"))
    fields[23] = code_of(vocabulary, category, "DiagnosticServiceSectionID")
    fields[24] = escape(result_status)
    return segment("OBR", *fields)


def obx_segments(vocabulary: ReverseVocabulary, observation: dict, first_set_id: int, group: int) -> list[str]:
    """OBX for the Observation's value (if any) and one per component, numbered from `first_set_id`."""
    parts: list[dict] = []
    if _has_value(observation) or not observation.get("component"):
        parts.append(observation)
    parts += observation.get("component") or []
    sub_id = str(group) if observation.get("component") else ""
    status = observation.get("status")
    obx_status = vocabulary.v2_code("ObservationResultStatusCodesInterpretation", _OBSERVATION_STATUS, status) or ""
    start, _ = _effective(observation)
    segments = []
    for offset, part in enumerate(parts):
        value_type, value, units = observation_value(vocabulary, part)
        fields = [""] * 14
        fields[0] = str(first_set_id + offset)
        fields[1] = value_type
        fields[2] = cwe(vocabulary, part.get("code"))
        fields[3] = sub_id
        fields[4] = value
        fields[5] = units
        fields[6] = reference_range(part.get("referenceRange"))
        fields[7] = repetitions(code_of(vocabulary, c, "InterpretationCodes") for c in part.get("interpretation") or [])
        fields[10] = escape(obx_status)
        fields[13] = dtm(start)
        segments.append(segment("OBX", *fields))
    return segments


def observation_value(vocabulary: ReverseVocabulary, holder: dict) -> tuple[str, str, str]:
    """(OBX-2 value type, OBX-5 value, OBX-6 units) of an Observation's or component's value[x]."""
    if "valueQuantity" in holder:
        quantity = holder["valueQuantity"]
        comparator = quantity.get("comparator")
        number = _number(quantity.get("value"))
        if comparator:
            return "SN", components(escape(comparator), number), _units(quantity)
        return "NM", number, _units(quantity)
    if "valueInteger" in holder:
        return "NM", str(holder["valueInteger"]), ""
    if "valueString" in holder:
        text = holder["valueString"]
        return ("TX" if len(text) > _MAX_ST or "\n" in text else "ST"), escape(text), ""
    if "valueCodeableConcept" in holder:
        return "CWE", cwe(vocabulary, holder["valueCodeableConcept"]), ""
    if "valueBoolean" in holder:
        yes = holder["valueBoolean"]
        return "CWE", components("Y" if yes else "N", "Yes" if yes else "No", "HL70136"), ""
    if "valueRange" in holder:
        low, high = holder["valueRange"].get("low") or {}, holder["valueRange"].get("high") or {}
        return "SN", components("", _number(low.get("value")), "-", _number(high.get("value"))), _units(low or high)
    if "valueRatio" in holder:
        numerator, denominator = holder["valueRatio"].get("numerator") or {}, holder["valueRatio"].get("denominator") or {}
        return "SN", components("", _number(numerator.get("value")), ":", _number(denominator.get("value"))), ""
    if "valueDateTime" in holder:
        return "DTM", dtm(holder["valueDateTime"]), ""
    if "valueTime" in holder:
        return "TM", time_of_day(holder["valueTime"]), ""
    if "valuePeriod" in holder:
        period = holder["valuePeriod"]
        return "DR", components(dtm(period.get("start")), dtm(period.get("end"))), ""
    return "", "", ""


def reference_range(ranges: list[dict] | None) -> str:
    """OBX-7 from the first referenceRange: `low-high`, `>low`, `<high`, or its text."""
    if not ranges:
        return ""
    first = ranges[0]
    low, high = (first.get("low") or {}).get("value"), (first.get("high") or {}).get("value")
    if low is not None and high is not None:
        return escape(f"{_number(low)}-{_number(high)}")
    if low is not None:
        return escape(f">{_number(low)}")
    if high is not None:
        return escape(f"<{_number(high)}")
    return escape(first.get("text"))


def _has_value(holder: dict) -> bool:
    return any(key.startswith("value") for key in holder)


def _number(value: Any) -> str:
    if value is None:
        return ""
    return format_decimal(value) if isinstance(value, (Decimal, float, int)) else escape(value)


def _units(quantity: dict) -> str:
    """OBX-6: code^unit^UCUM for UCUM units, else the unit text."""
    code, unit = quantity.get("code"), quantity.get("unit")
    if quantity.get("system") == UCUM and code:
        return components(escape(code), escape(unit or code), "UCUM")
    return escape(unit or code)


def _effective(resource: dict) -> tuple[str | None, str | None]:
    if resource.get("effectiveDateTime"):
        return resource["effectiveDateTime"], None
    if resource.get("effectiveInstant"):
        return resource["effectiveInstant"], None
    period = resource.get("effectivePeriod") or {}
    return period.get("start"), period.get("end")
