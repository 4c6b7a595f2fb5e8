"""Transport-neutral request and response of one FHIR interaction.

The HTTP layer and the Bundle processor both build `FhirRequest`s, so batch and transaction
entries go through exactly the same code as single requests.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from ficus.outcome import FhirError
from ficus.policy import ANONYMOUS, Caller
from ficus.store.repository import Version

FHIR_JSON = "application/fhir+json"
JSON_PATCH = "application/json-patch+json"
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_ETAG = re.compile(r'^\s*(?:W/)?"?([0-9]+)"?\s*$')


@dataclass
class FhirRequest:
    method: str
    path: str
    query: list[tuple[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | dict | None = None
    caller: Caller = ANONYMOUS
    assigned_id: str | None = None  # the id a transaction reserved for this create

    @classmethod
    def from_url(cls, method: str, url: str, **kwargs: Any) -> FhirRequest:
        path, _, query = url.partition("?")
        return cls(method, path.strip("/"), parse_qsl(query, keep_blank_values=True), **kwargs)

    def param(self, name: str) -> str | None:
        for key, value in self.query:
            if key == name:
                return value
        return None

    def prefer(self, token: str) -> str | None:
        """The value of one `Prefer` header token, e.g. `return` or `handling`."""
        for part in self.headers.get("prefer", "").split(";"):
            for piece in part.split(","):
                key, _, value = piece.strip().partition("=")
                if key.strip() == token:
                    return value.strip().strip('"')
        return None

    def if_match(self) -> int | None:
        return parse_etag(self.headers.get("if-match"), "If-Match")


@dataclass
class FhirResponse:
    status: int
    body: bytes | dict | None = None
    headers: dict[str, str] = field(default_factory=dict)
    version: Version | None = None


def parse_etag(value: str | None, header: str) -> int | None:
    if value is None:
        return None
    match = _ETAG.match(value)
    if not match:
        raise FhirError.of(400, "invalid", f"{header} must be a version ETag such as W/\"3\", not {value!r}")
    return int(match.group(1))


def check_id(res_id: object) -> str:
    if not isinstance(res_id, str) or not _ID.fullmatch(res_id):
        raise FhirError.of(400, "invalid", f"{res_id!r} is not a valid resource id")
    return res_id


def new_id() -> str:
    return str(uuid.uuid4())
