"""Apply a converted message to the FHIR store through `Interactions`, changing only what changed.

Before the transaction runs, each entry's resource is looked up by the identity the entry
names (`find_current`). An existing resource that the message would leave as it is, and one an `ifNoneExist`
entry only refers to, is taken out of the Bundle and referred to by its id, so replaying a
message (or receiving the same facts twice) writes no new versions. Entries the mapping marks
as partial (`Conversion.merges`) are merged onto the resource they find.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import msgspec

from ficus import fhirjson
from ficus.api.exchange import FhirRequest
from ficus.api.interactions import Interactions
from ficus.hl7v2.mapping import Conversion
from ficus.outcome import FhirError
from ficus.policy import Caller
from ficus.search import find_ids

# the bridge writes on the server's own behalf: with FICUS_AUTH=smart it needs system scopes
HL7V2_CALLER = Caller(subject="ficus-hl7v2", scopes=frozenset({"system/*.cruds"}), client_id="ficus-hl7v2")


@dataclass
class Current:
    """A resource an entry found: where it is and what it holds (without id and meta)."""

    reference: str
    version: str
    content: dict


@dataclass
class Applied:
    """What applying a message did: every resource it stands for, and how many it wrote."""

    resources: list[str] = field(default_factory=list)
    written: int = 0


def apply_conversion(interactions: Interactions, conversion: Conversion, caller: Caller = HL7V2_CALLER) -> Applied:
    """Run the conversion's transaction, minus entries that would change nothing."""
    entries = conversion.bundle.get("entry", [])
    found = find_current(interactions, entries)
    references = {url: current.reference for url, current in found.items()}
    for entry in entries:
        _rewrite(entry["resource"], references)
    applied = Applied()
    kept = []
    for entry in entries:
        current = found.get(entry["fullUrl"])
        if current is not None and entry["fullUrl"] in conversion.merges:
            entry["resource"] = _merged(current.content, entry["resource"])
        if current is not None and (entry["request"]["method"] == "POST" or _same(current.content, entry["resource"])):
            applied.resources.append(f"{current.reference}/_history/{current.version}")
        else:
            kept.append(entry)
    if kept:
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": kept}
        response = interactions.handle(FhirRequest("POST", "", body=bundle, caller=caller))
        written = [_location(result) for result in response.body["entry"]] if isinstance(response.body, dict) else []
        applied.resources.extend(written)
        applied.written = len(written)
    return applied


def find_current(interactions: Interactions, entries: list[dict]) -> dict[str, Current]:
    """The current resource each entry names (by id, or by its identifier criteria when exactly
    one matches), read in one database session. This is the listener's own idempotency check,
    not a read on a caller's behalf; the writes still go through `Interactions`."""
    repository = interactions.repository
    found: dict[str, Current] = {}
    with repository.reading() as tx:
        for entry in entries:
            request = entry["request"]
            res_type = entry["resource"]["resourceType"]
            if request["method"] == "PUT" and "?" not in request["url"]:
                res_id: str | None = request["url"].partition("/")[2]
            else:
                criteria = request.get("ifNoneExist") or request["url"].partition("?")[2]
                matches = find_ids(tx, interactions.definitions, res_type, parse_qsl(criteria)) if criteria else []
                res_id = matches[0] if len(matches) == 1 else None
            if res_id is None:
                continue
            try:
                version = repository.read(res_type, res_id, tx)
            except FhirError:
                continue
            found[entry["fullUrl"]] = _current(fhirjson.decode(version.content or b"{}"))
    return found


def _current(resource: dict) -> Current:
    version = resource.get("meta", {}).get("versionId", "1")
    reference = f"{resource['resourceType']}/{resource['id']}"
    return Current(reference, version, {k: v for k, v in resource.items() if k not in ("id", "meta")})


def _same(current: dict, new: dict) -> bool:
    return current == {k: v for k, v in new.items() if k not in ("id", "meta")}


def _merged(current: dict, partial: dict) -> dict:
    """`partial` laid over `current`: its single values win, its lists add what is missing."""
    merged = dict(current)
    for key, value in partial.items():
        if isinstance(value, list) and isinstance(merged.get(key), list):
            merged[key] = merged[key] + [item for item in value if item not in merged[key]]
        else:
            merged[key] = value
    return merged


def _rewrite(node: Any, references: dict[str, str]) -> None:
    """Point references at entries that found their resource to that resource's id."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str) and value in references:
                node[key] = references[value]
            else:
                _rewrite(value, references)
    elif isinstance(node, list):
        for item in node:
            _rewrite(item, references)


def _location(result: dict) -> str:
    details = result.get("response", {})
    if details.get("location"):
        return str(details["location"])
    resource = result.get("resource")
    content = fhirjson.decode(bytes(resource)) if isinstance(resource, msgspec.Raw) else resource or {}
    return f"{content.get('resourceType')}/{content.get('id')}/_history/{content.get('meta', {}).get('versionId')}"
