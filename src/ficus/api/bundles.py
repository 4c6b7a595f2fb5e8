"""Batch and transaction Bundles (hl7.org/fhir/R4/http.html#transaction).

A batch runs each entry on its own; a transaction runs all entries in one database transaction:
ids are assigned first, `urn:uuid:` and conditional references are rewritten everywhere in the
Bundle, entries run in the order DELETE, POST, PUT/PATCH, GET, and any failure undoes it all.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import msgspec

from ficus import fhirjson
from ficus.api.exchange import FhirRequest, FhirResponse, check_id, new_id
from ficus.fhirtime import format_instant
from ficus.outcome import FhirError, Issue, operation_outcome
from ficus.policy import Access, Caller
from ficus.store.repository import Writer

if TYPE_CHECKING:
    from ficus.api.interactions import Interactions

_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}


def process_bundle(interactions: Interactions, request: FhirRequest) -> FhirResponse:
    bundle = request.body if isinstance(request.body, dict) else fhirjson.decode(request.body or b"")
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise FhirError.of(400, "invalid", "POST to the base URL expects a batch or transaction Bundle", "resourceType")
    kind = bundle.get("type")
    if kind not in ("batch", "transaction"):
        raise FhirError.of(400, "invalid", f"Bundle.type must be batch or transaction, not {kind!r}", "Bundle.type")
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise FhirError.of(400, "structure", "Bundle.entry must be an array", "Bundle.entry")
    requests = [_entry_request(interactions, request, entry, index) for index, entry in enumerate(entries)]
    interactions.policy.authorize(request.caller, Access(kind))
    if kind == "batch":
        responses = [_run_batch_entry(interactions, entry_request) for entry_request in requests]
    else:
        responses = _run_transaction(interactions, requests, entries)
    result = {
        "resourceType": "Bundle",
        "type": f"{kind}-response",
        "entry": [_response_entry(interactions, request, response) for response in responses],
    }
    return FhirResponse(200, result)


def _entry_request(interactions: Interactions, outer: FhirRequest, entry: Any, index: int) -> FhirRequest:
    where = f"Bundle.entry[{index}]"
    if not isinstance(entry, dict) or not isinstance(entry.get("request"), dict):
        raise FhirError.of(400, "required", f"{where} has no request", f"{where}.request")
    spec = entry["request"]
    method, url = spec.get("method"), spec.get("url")
    if method not in _ORDER or not isinstance(url, str) or not url:
        raise FhirError.of(400, "invalid", f"{where}.request needs a method (GET, POST, PUT, PATCH, DELETE) and a url", f"{where}.request")
    base = interactions.settings.base_url
    if url.startswith(base):
        url = url[len(base):]
    headers = {k: v for k, v in outer.headers.items() if k in ("prefer",)}
    for field, header in (("ifNoneExist", "if-none-exist"), ("ifMatch", "if-match"), ("ifNoneMatch", "if-none-match")):
        if isinstance(spec.get(field), str):
            headers[header] = spec[field]
    body = entry.get("resource")
    if method == "PATCH" and isinstance(body, dict) and body.get("resourceType") == "Binary":
        body = _binary_patch(body, where)
    entry_request = FhirRequest.from_url(method, url, headers=headers, body=body, caller=outer.caller)
    is_search = entry_request.path.endswith("_search")
    if method in ("POST", "PUT") and not is_search and not isinstance(body, dict):
        raise FhirError.of(400, "required", f"{where} ({method}) has no resource", f"{where}.resource")
    return entry_request


def _binary_patch(binary: dict, where: str) -> Any:
    import base64

    try:
        return fhirjson.decode(base64.b64decode(binary.get("data", "")))
    except (ValueError, TypeError, FhirError):
        raise FhirError.of(400, "invalid", f"{where}.resource is a Binary that holds no JSON Patch", f"{where}.resource") from None


def _run_batch_entry(interactions: Interactions, request: FhirRequest) -> FhirResponse:
    try:
        return interactions.handle(request)
    except FhirError as error:
        return FhirResponse(error.status, operation_outcome(error.issues))
    except RecursionError:
        return FhirResponse(400, operation_outcome(fhirjson.too_deep().issues))


def _run_transaction(interactions: Interactions, requests: list[FhirRequest], entries: list[dict]) -> list[FhirResponse]:
    responses: list[FhirResponse | None] = [None] * len(requests)
    with interactions.repository.transaction() as writer:
        references = _assign_ids(interactions, writer, requests, entries)
        writer.reserve_rids(sum(1 for request in requests if request.method == "POST"))
        for index, request in enumerate(requests):
            if isinstance(request.body, dict):
                with _Blaming(index, request):
                    _rewrite_references(interactions, writer, request.body, references, request.caller)
        for index in sorted(range(len(requests)), key=lambda i: _ORDER[requests[i].method]):
            with _Blaming(index, requests[index]):
                responses[index] = interactions.handle(requests[index], writer)
    return [r for r in responses if r is not None]


class _Blaming:
    """Report a failure inside the block as a failure of Bundle entry `index` (a plain class:
    it runs twice per entry, and a generator-based context manager costs several times more)."""

    __slots__ = ("index", "request")

    def __init__(self, index: int, request: FhirRequest) -> None:
        self.index = index
        self.request = request

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: Any) -> bool:
        if isinstance(error, FhirError):
            raise _at_entry(error, self.index, self.request) from None
        if isinstance(error, RecursionError):
            raise _at_entry(fhirjson.too_deep(), self.index, self.request) from None
        return False


def _assign_ids(interactions: Interactions, writer: Writer, requests: list[FhirRequest], entries: list[dict]) -> dict[str, str]:
    """Map every entry's fullUrl to the `Type/id` it will have, settling conditional creates and updates."""
    references: dict[str, str] = {}
    for index, (request, entry) in enumerate(zip(requests, entries)):
        with _Blaming(index, request):
            target = _target_of(interactions, writer, request)
        full_url = entry.get("fullUrl")
        if target and isinstance(full_url, str):
            references[full_url] = target
    return references


def _target_of(interactions: Interactions, writer: Writer, request: FhirRequest) -> str | None:
    """The `Type/id` a POST or PUT entry writes to; rewrites the request to that id."""
    res_type = request.path.split("/")[0]
    if request.method == "POST" and "/" not in request.path:
        condition = request.headers.pop("if-none-exist", None)
        if condition:
            matches = interactions.matching_ids(writer, res_type, condition.lstrip("?"), request.caller, "c")
            if len(matches) > 1:
                raise FhirError.of(412, "duplicate", f"If-None-Exist '{condition}' matches {len(matches)} resources")
            if matches:
                request.method, request.path, request.body = "GET", f"{res_type}/{matches[0]}", None
                return request.path
        request.assigned_id = new_id()
        return f"{res_type}/{request.assigned_id}"
    if request.method == "PUT":
        if request.query:
            matches = interactions.matching_ids(writer, res_type, urlencode(request.query), request.caller, "u")
            if len(matches) > 1:
                raise FhirError.of(412, "multiple-matches", f"The criteria match {len(matches)} {res_type} resources")
            body_id = request.body.get("id") if isinstance(request.body, dict) else None
            res_id = matches[0] if matches else check_id(body_id) if body_id else new_id()
            request.path, request.query = f"{res_type}/{res_id}", []
            if isinstance(request.body, dict):
                request.body["id"] = res_id
        return request.path if request.path.count("/") == 1 else None
    return None


def _rewrite_references(interactions: Interactions, writer: Writer, node: Any, references: dict[str, str], caller: Caller) -> None:
    """Rewrite `reference` values that name a Bundle entry or a conditional search, in place."""
    if type(node) is dict:
        for key, value in node.items():
            if key == "reference" and type(value) is str:
                if value in references:
                    node[key] = references[value]
                elif "?" in value and not value.startswith(("http://", "https://", "#")):
                    node[key] = interactions.resolve_conditional_reference(writer, value, caller)
                elif value.startswith(("urn:uuid:", "urn:oid:")):
                    raise FhirError.of(400, "not-found", f"Reference {value!r} names no entry of this Bundle")
            elif type(value) is dict or type(value) is list:  # only containers can hold references
                _rewrite_references(interactions, writer, value, references, caller)
    elif type(node) is list:
        for item in node:
            if type(item) is dict or type(item) is list:
                _rewrite_references(interactions, writer, item, references, caller)


def _at_entry(error: FhirError, index: int, request: FhirRequest) -> FhirError:
    where = f"Bundle.entry[{index}]"
    res_type = request.path.split("/")[0]
    issues = []
    for issue in error.issues:
        expression = issue.expression
        if expression and expression.startswith(res_type + "."):
            expression = f"{where}.resource{expression[len(res_type):]}"
        elif not expression or not expression.startswith("Bundle."):
            expression = where
        issues.append(Issue(issue.severity, issue.code, f"{where} ({request.method} {request.path}): {issue.diagnostics}", expression))
    return FhirError(error.status, issues)


def _response_entry(interactions: Interactions, outer: FhirRequest, response: FhirResponse) -> dict:
    status = response.status
    details: dict[str, Any] = {"status": f"{status} {HTTPStatus(status).phrase}"}
    version = response.version
    if version is not None:
        details["etag"] = version.etag
        details["lastModified"] = format_instant(version.last_updated)
        if "Location" in response.headers:
            details["location"] = response.headers["Location"].removeprefix(interactions.settings.base_url + "/")
    entry: dict[str, Any] = {}
    body = response.body
    if status >= 400 and isinstance(body, dict):
        details["outcome"] = body
    elif body is not None:
        entry["resource"] = msgspec.Raw(body) if isinstance(body, bytes) else body
    entry["response"] = details
    return entry
