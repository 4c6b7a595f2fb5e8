"""Just enough FHIR XML → FHIR JSON to read the official patch test cases.

Repetition and types come from the R4 definitions: `value` attributes become JSON primitives
(booleans, integers and decimals typed), ids and extensions of primitives go to `_name`,
`div` becomes its XHTML text, and contained resources keep their `resourceType`.
"""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from decimal import Decimal
from typing import Any

from ficus.spec import Element, definitions

FHIR = "{http://hl7.org/fhir}"
XHTML = "http://www.w3.org/1999/xhtml"
INTEGER_TYPES = ("integer", "positiveInt", "unsignedInt")
ATTRIBUTES = ("id", "url")


def resource_from_xml(element: ET.Element) -> dict:
    """The JSON of the resource `element` (e.g. `<Patient xmlns="http://hl7.org/fhir">`)."""
    kind = _local_name(element)
    return {"resourceType": kind, **_object(element, kind, kind)}


def _local_name(element: ET.Element) -> str:
    if not element.tag.startswith(FHIR):
        raise ValueError(f"not a FHIR element: {element.tag}")
    return element.tag[len(FHIR) :]


def _object(element: ET.Element, type_name: str, path: str) -> dict:
    children = definitions().children(type_name, path)
    result: dict[str, Any] = {
        name: element.attrib[name] for name in ATTRIBUTES if name in element.attrib
    }
    for child in element:
        if child.tag == f"{{{XHTML}}}div":
            result["div"] = _xhtml(child)
            continue
        name = _local_name(child)
        definition = children[name]
        value, extras = _value(child, type_name, f"{path}.{name}", definition)
        if definition.many:
            values = result.setdefault(name, [])
            values.append(value)
            if extras or f"_{name}" in result:
                shadows = result.setdefault(f"_{name}", [])
                shadows.extend([None] * (len(values) - 1 - len(shadows)) + [extras])
        else:
            result[name] = value
            if extras:
                result[f"_{name}"] = extras
    return result


def _value(
    element: ET.Element, owner_type: str, path: str, definition: Element
) -> tuple[Any, dict | None]:
    """The JSON of one child element, and for a primitive its id and extensions (or None)."""
    if definition.content_reference:
        reference = definition.content_reference
        return _object(element, reference.split(".")[0], reference), None
    (type_name,) = definition.types
    if type_name in ("BackboneElement", "Element"):
        return _object(element, owner_type, path), None
    if type_name == "Resource":
        (inner,) = list(element)
        return resource_from_xml(inner), None
    if definitions().types[type_name]["kind"] != "primitive-type":
        return _object(element, type_name, type_name), None
    extras = _object(element, type_name, type_name)
    return _primitive(element.attrib.get("value"), type_name), extras or None


def _primitive(text: str | None, type_name: str) -> Any:
    if text is None:
        return None
    if type_name == "boolean":
        return {"true": True, "false": False}[text]
    if type_name in INTEGER_TYPES:
        return int(text)
    if type_name == "decimal":
        return Decimal(text)
    return text


def _xhtml(element: ET.Element) -> str:
    detached = copy.deepcopy(element)
    detached.tail = None
    return ET.tostring(detached, encoding="unicode", default_namespace=XHTML)
