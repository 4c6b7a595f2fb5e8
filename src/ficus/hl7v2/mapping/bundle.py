"""The transaction Bundle one message becomes: identity-based entries and `urn:uuid` references.

Every entry is idempotent. A resource the message is the authority for is written with a
conditional update on its identifier (`PUT Patient?identifier=sys|value`) or, when v2 gives it no
identifier, an update of an id derived from the sender and the resource's natural key. A resource
the message only refers to (a practitioner, a location) is created only if none has its
identifier yet (`ifNoneExist`). Replaying a message therefore finds the same resources.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any
from urllib.parse import urlencode

_NAMESPACE = uuid.UUID("6f1c2a4e-3b7d-5e8f-9a0b-1c2d3e4f5a6b")


def token(identifier: dict) -> str:
    """`system|value` with the FHIR search escapes, for identifier criteria."""
    return f"{_escape(identifier.get('system', ''))}|{_escape(identifier['value'])}"


def _escape(text: str) -> str:
    for char in ("\\", "|", ",", "$"):
        text = text.replace(char, "\\" + char)
    return text


def derived_id(namespace: str, res_type: str, key: tuple[str, ...]) -> str:
    """A stable resource id for a resource v2 identifies only by its place in a message flow."""
    digest = hashlib.sha256("\x1f".join((namespace, res_type, *key)).encode()).hexdigest()
    return f"v2-{digest[:40]}"


class TransactionBuilder:
    """Collects the entries of one message's transaction, one entry per distinct resource."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self._entries: list[dict[str, Any]] = []
        self._urls: dict[str, str] = {}

    def upsert(self, resource: dict, identifier: dict | None = None, key: tuple[str, ...] | None = None) -> str:
        """Create or replace `resource`, found by `identifier`, else by the derived id of `key`."""
        res_type = resource["resourceType"]
        if identifier is not None:
            return self._add(resource, "PUT", f"{res_type}?{urlencode({'identifier': token(identifier)})}")
        if key is None:
            raise ValueError(f"A {res_type} needs an identifier or a key to be written idempotently")
        res_id = derived_id(self.namespace, res_type, key)
        return self._add({**resource, "id": res_id}, "PUT", f"{res_type}/{res_id}")

    def ensure(self, resource: dict, identifier: dict) -> str:
        """Create `resource` unless one with `identifier` exists (then refer to that one)."""
        condition = urlencode({"identifier": token(identifier)})
        return self._add(resource, "POST", resource["resourceType"], condition)

    def _add(self, resource: dict, method: str, url: str, if_none_exist: str | None = None) -> str:
        key = f"{resource['resourceType']}|{if_none_exist or url}"
        known = self._urls.get(key)
        if known is not None:
            return known
        full_url = f"urn:uuid:{uuid.uuid5(_NAMESPACE, self.namespace + '|' + key)}"
        request: dict[str, str] = {"method": method, "url": url}
        if if_none_exist:
            request["ifNoneExist"] = if_none_exist
        self._entries.append({"fullUrl": full_url, "resource": resource, "request": request})
        self._urls[key] = full_url
        return full_url

    def resource(self, full_url: str) -> dict | None:
        """The resource of an entry already added, to complete it (e.g. Patient.link)."""
        return next((e["resource"] for e in self._entries if e["fullUrl"] == full_url), None)

    @property
    def entries(self) -> list[dict[str, Any]]:
        return self._entries

    def bundle(self) -> dict:
        return {"resourceType": "Bundle", "type": "transaction", "entry": self._entries}
