"""The FHIR RESTful interactions (hl7.org/fhir/R4/http.html), independent of HTTP plumbing.

`Interactions.handle` routes a `FhirRequest` to read, vread, create, update, patch, delete,
history, search or capabilities. Inside a transaction Bundle it runs on the Bundle's `Writer`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode

import msgspec

from ficus import fhirjson
from ficus.api import search as search_interaction
from ficus.api import shaping
from ficus.api.exchange import FHIR_JSON, JSON_PATCH, FhirRequest, FhirResponse, check_id, new_id, parse_etag
from ficus.config import Settings
from ficus.fhirtime import date_range, format_instant, http_date, now_micros
from ficus.outcome import FhirError, Issue, operation_outcome
from ficus.operations import Invocation, find_operation, invocation_parameters, load_operations
from ficus.patch import apply_fhirpath_patch, apply_json_patch
from ficus.policy import Access, Caller, Policy
from ficus.search import find_ids, visible_condition
from ficus.spec import Definitions
from ficus.store.reads import AsyncReads
from ficus.store.repository import Repository, Version, Writer
from ficus.terminology.inprocess import serving
from ficus.validation.structure import validate_resource

_SNAPSHOT = "_snapshot"


class Interactions:
    """Every FHIR interaction Ficus serves, over one repository and one policy."""

    def __init__(self, settings: Settings, repository: Repository, policy: Policy) -> None:
        self.settings = settings
        self.repository = repository
        self.definitions: Definitions = repository.definitions
        self.policy = policy
        load_operations()

    # -- routing ---------------------------------------------------------------------------

    def handle(self, request: FhirRequest, writer: Writer | None = None) -> FhirResponse:
        with serving(self.repository):  # search modifiers and bindings ask this server's terminology
            return self._handle(request, writer)

    def _handle(self, request: FhirRequest, writer: Writer | None) -> FhirResponse:
        parts = [p for p in request.path.split("/") if p]
        method = request.method
        if not parts:
            return self._root(request, writer)
        head = parts[0]
        if head.startswith("$") and len(parts) == 1:
            return self.invoke(request, None, None, head[1:], writer)
        if head == "metadata" and len(parts) == 1:
            self._require(method, "GET", "HEAD")
            self._authorize(request, "capabilities")
            from ficus.api.capability import capability_statement

            return FhirResponse(200, capability_statement(self))
        if head == "_history" and len(parts) == 1:
            self._require(method, "GET", "HEAD")
            return self.history(request, None, None, writer)
        if head == "_search" and len(parts) == 1:
            self._require(method, "POST")
            return self.system_search(request, writer)
        if not self.definitions.is_resource_type(head):
            raise FhirError.of(404, "not-supported", f"'{head}' is not a FHIR R4 resource type or endpoint")
        return self._type_level(request, head, parts[1:], writer)

    def _root(self, request: FhirRequest, writer: Writer | None) -> FhirResponse:
        if request.method == "POST":
            from ficus.api.bundles import process_bundle

            return process_bundle(self, request)
        if request.method in ("GET", "HEAD") and request.query:
            return self.system_search(request, writer)  # a bare GET of the base stays a 405
        raise FhirError.of(405, "not-supported", f"{request.method} is not supported on the base URL")

    def _type_level(self, request: FhirRequest, res_type: str, rest: list[str], writer: Writer | None) -> FhirResponse:
        method = request.method
        if not rest:
            handlers = {
                "GET": self.search, "HEAD": self.search, "POST": self.create,
                "PUT": self.conditional_update, "DELETE": self.conditional_delete, "PATCH": self.conditional_patch,
            }
            handler = handlers.get(method)
            if handler is None:
                raise FhirError.of(405, "not-supported", f"{method} is not allowed on {res_type}")
            return handler(request, res_type, writer)
        if len(rest) == 1 and rest[0].startswith("$"):
            return self.invoke(request, res_type, None, rest[0][1:], writer)
        if len(rest) == 2 and rest[1].startswith("$"):
            return self.invoke(request, res_type, check_id(rest[0]), rest[1][1:], writer)
        if rest == ["_history"]:
            self._require(method, "GET", "HEAD")
            return self.history(request, res_type, None, writer)
        if rest == ["_search"]:
            self._require(method, "POST")
            return self.search(request, res_type, writer)
        res_id = check_id(rest[0])
        if len(rest) == 1:
            handlers = {
                "GET": self.read, "HEAD": self.read, "PUT": self.update,
                "DELETE": self.delete, "PATCH": self.patch,
            }
            instance_handler = handlers.get(method)
            if instance_handler is None:
                raise FhirError.of(405, "not-supported", f"{method} is not allowed on {res_type}/{res_id}")
            return instance_handler(request, res_type, res_id, writer)
        if rest[1] == "_history" and len(rest) <= 3:
            self._require(method, "GET", "HEAD")
            if len(rest) == 2:
                return self.history(request, res_type, res_id, writer)
            return self.vread(request, res_type, res_id, rest[2], writer)
        if res_type in self.definitions.compartments and (rest[1] == "*" or self.definitions.is_resource_type(rest[1])):
            if len(rest) == 2:
                self._require(method, "GET", "HEAD")
                return self.compartment_search(request, res_type, res_id, rest[1], writer)
            if rest[2:] == ["_search"]:
                self._require(method, "POST")
                return self.compartment_search(request, res_type, res_id, rest[1], writer)
        raise FhirError.of(404, "not-supported", f"Unknown path {request.path}")

    @staticmethod
    def _require(method: str, *allowed: str) -> None:
        if method not in allowed:
            raise FhirError.of(405, "not-supported", f"{method} is not allowed here")

    def _authorize(self, request: FhirRequest, interaction: str, res_type: str | None = None, res_id: str | None = None) -> None:
        self.policy.authorize(request.caller, Access(interaction, res_type, res_id))

    @contextmanager
    def _writing(self, writer: Writer | None) -> Iterator[Writer]:
        if writer is not None:
            yield writer
        else:
            with self.repository.transaction() as opened:
                yield opened

    def invoke(self, request: FhirRequest, res_type: str | None, res_id: str | None, name: str, writer: Writer | None) -> FhirResponse:
        """Run the extended operation `$name` registered in `ficus.operations`."""
        found = find_operation(name, res_type, res_id is not None)
        self._require(request.method, *(("POST",) if found.affects_state else ("GET", "POST")))
        self._authorize(request, f"operation:{name}", res_type, res_id)
        invocation = Invocation(self, request, res_type, res_id, invocation_parameters(request), writer)
        return found.handler(invocation)

    # -- reads -----------------------------------------------------------------------------

    def read(self, request: FhirRequest, res_type: str, res_id: str, writer: Writer | None = None) -> FhirResponse:
        self._authorize(request, "read", res_type, res_id)
        version = self.repository.read(res_type, res_id, writer.tx if writer else None)
        self.policy.check_content(request.caller, res_type, version.content, "r")
        return self._resource_response(request, version)

    def vread(self, request: FhirRequest, res_type: str, res_id: str, version_id: str, writer: Writer | None = None) -> FhirResponse:
        self._authorize(request, "vread", res_type, res_id)
        number = self._version_number(res_type, res_id, version_id)
        version = self.repository.vread(res_type, res_id, number, writer.tx if writer else None)
        self.policy.check_content(request.caller, res_type, version.content, "r")
        return self._resource_response(request, version)

    @staticmethod
    def _version_number(res_type: str, res_id: str, version_id: str) -> int:
        if not version_id.isdigit() or len(version_id) > 9:
            raise FhirError.of(404, "not-found", f"'{version_id}' is not a version of {res_type}/{res_id}")
        return int(version_id)

    # -- read and vread on the event loop (the HTTP layer's path without a worker thread) -----

    def point_read(self, request: FhirRequest) -> tuple[str, str, str | None] | None:
        """(type, id, version or None) when `request` is a read or vread `handle` would route
        to `read`/`vread`; None for anything else, which then goes through `handle`."""
        if request.method not in ("GET", "HEAD"):
            return None
        parts = request.path.split("/")
        if len(parts) == 2:
            version_id = None
        elif len(parts) == 4 and parts[2] == "_history":
            version_id = parts[3]
        else:
            return None
        res_type, res_id = parts[0], parts[1]
        if not res_id or res_id[0] == "$" or res_id in ("_history", "_search") or not self.definitions.is_resource_type(res_type):
            return None
        return res_type, res_id, version_id

    async def read_async(self, request: FhirRequest, target: tuple[str, str, str | None], reads: AsyncReads) -> FhirResponse:
        """`read` or `vread` of `point_read(request)`'s target through `reads`, same checks."""
        res_type, res_id, version_id = target
        check_id(res_id)
        if version_id is None:
            self._authorize(request, "read", res_type, res_id)
            version = await reads.read(res_type, res_id)
        else:
            self._authorize(request, "vread", res_type, res_id)
            version = await reads.vread(res_type, res_id, self._version_number(res_type, res_id, version_id))
        self.policy.check_content(request.caller, res_type, version.content, "r")
        return self._resource_response(request, version)

    # -- responses to reads ----------------------------------------------------------------

    def _resource_response(self, request: FhirRequest, version: Version) -> FhirResponse:
        headers = self._version_headers(version)
        if_none_match = request.headers.get("if-none-match")
        if if_none_match and parse_etag(if_none_match, "If-None-Match") == version.version:
            return FhirResponse(304, None, headers, version)
        summary, elements = request.param("_summary"), request.param("_elements")
        body: bytes | dict | None = version.content
        if shaping.wants_subset(summary, elements):
            body = shaping.subset(fhirjson.decode(version.content or b"{}"), self.definitions, summary, elements)
        return FhirResponse(200, body, headers, version)

    def _version_headers(self, version: Version) -> dict[str, str]:
        return {"ETag": version.etag, "Last-Modified": http_date(version.last_updated)}

    def history(self, request: FhirRequest, res_type: str | None, res_id: str | None, writer: Writer | None = None) -> FhirResponse:
        self._authorize(request, "history-" + ("instance" if res_id else "type" if res_type else "system"), res_type, res_id)
        # a token restricted to a patient or by granular scopes sees the history of the
        # resources it may see now, minus their versions it could not have seen
        confine = None if res_id else self.policy.confinement(request.caller, "s")
        if confine is not None and res_type and confine(res_type) is None:
            confine = None  # the whole type is open to this token
        within = None
        if confine is not None:
            types = [res_type] if res_type else sorted(self.definitions.resource_types)
            within = visible_condition(self.definitions, types, confine)
        since_text = request.param("_since")
        since = None
        if since_text:
            found = date_range(since_text)
            if found is None:
                raise FhirError.of(400, "invalid", f"_since must be a FHIR instant, not {since_text!r}", "_since")
            since = found[0]
        count = self._count(request)
        offset = self._int_param(request, "_offset", 0)
        snapshot = self._int_param(request, _SNAPSHOT, now_micros() + 1)
        versions, total = self.repository.history(
            res_type, res_id, since, snapshot, count, offset, writer.tx if writer else None, within
        )
        if res_id and total == 0:
            raise FhirError.of(404, "not-found", f"{res_type}/{res_id} is not known")
        if res_id:
            versions = [v for v in versions if self.policy.visible_content(request.caller, v.res_type, v.content, "r")]
            if not versions and total:
                raise FhirError.of(403, "forbidden", f"{res_type}/{res_id} is outside what this token may access")
        elif confine is not None:
            versions = [v for v in versions if self.policy.visible_content(request.caller, v.res_type, v.content, "s")]
        entries = [self._history_entry(v) for v in versions]
        path = "/".join(p for p in (res_type, res_id, "_history") if p)
        links = self._page_links(path, request, count, offset, total, {_SNAPSHOT: str(snapshot)})
        # a confined history's total would count versions withheld from its pages: none is given
        return FhirResponse(200, self._bundle("history", entries, None if confine is not None else total, links))

    def _history_entry(self, version: Version) -> dict:
        entry: dict[str, Any] = {"fullUrl": self._full_url(version)}
        if version.content is not None:
            entry["resource"] = msgspec.Raw(version.content)
        url = f"{version.res_type}/{version.res_id}" if version.method != "POST" else version.res_type
        entry["request"] = {"method": version.method, "url": url}
        status = "201 Created" if version.version == 1 and version.method != "DELETE" else "200 OK"
        if version.deleted:
            status = "204 No Content"
        entry["response"] = {"status": status, "etag": version.etag, "lastModified": format_instant(version.last_updated)}
        return entry

    def search(self, request: FhirRequest, res_type: str, writer: Writer | None = None) -> FhirResponse:
        """Type search: `GET /[type]?...` and `POST /[type]/_search` (see `ficus.api.search`)."""
        return search_interaction.search(self, request, search_interaction.Scope([res_type], res_type), writer)

    def system_search(self, request: FhirRequest, writer: Writer | None = None) -> FhirResponse:
        """`GET /?_type=A,B&...` and `POST /_search`: parameters common to the searched types."""
        return search_interaction.search(self, request, search_interaction.Scope(None, "", system=True), writer)

    def compartment_search(
        self, request: FhirRequest, comp_type: str, comp_id: str, res_type: str, writer: Writer | None = None
    ) -> FhirResponse:
        """`GET /Patient/[id]/[type]` and `GET /Patient/[id]/*` over the CompartmentDefinition."""
        everything = res_type == "*"
        types = search_interaction.compartment_types(self.definitions, comp_type) if everything else [res_type]
        scope = search_interaction.Scope(
            types, f"{comp_type}/{comp_id}/{res_type}", compartment=(comp_type, comp_id), all_compartment_types=everything,
        )
        return search_interaction.search(self, request, scope, writer)

    # -- writes ----------------------------------------------------------------------------

    def create(self, request: FhirRequest, res_type: str, writer: Writer | None = None) -> FhirResponse:
        self._authorize(request, "create", res_type)
        resource = self._resource_body(request, res_type)
        self.policy.check_resource(request.caller, resource, "c")
        self._validate(resource)
        condition = request.headers.get("if-none-exist")
        with self._writing(writer) as w:
            if condition:
                existing = self.matching_ids(w, res_type, condition.lstrip("?"), request.caller, "c")
                if len(existing) > 1:
                    raise FhirError.of(412, "duplicate", f"If-None-Exist '{condition}' matches {len(existing)} resources")
                if existing:
                    version = self.repository.read(res_type, existing[0], w.tx)
                    return self._write_response(request, version, 200)
            version = w.create(resource, request.assigned_id or new_id())
        return self._write_response(request, version, 201)

    def update(self, request: FhirRequest, res_type: str, res_id: str, writer: Writer | None = None) -> FhirResponse:
        self._authorize(request, "update", res_type, res_id)
        resource = self._resource_body(request, res_type)
        if resource.get("id") != res_id:
            raise FhirError.of(
                400, "invalid",
                f"The resource id ({resource.get('id')!r}) must equal the id in the URL ({res_id!r})", f"{res_type}.id",
            )
        self._validate(resource)
        self.policy.check_resource(request.caller, resource, "u")
        with self._writing(writer) as w:
            current = w.read_current(res_type, res_id)
            if current is not None:
                self.policy.check_content(request.caller, res_type, current.content, "u")
            version, created = w.update(res_type, res_id, resource, request.if_match())
        return self._write_response(request, version, 201 if created else 200)

    def conditional_update(self, request: FhirRequest, res_type: str, writer: Writer | None = None) -> FhirResponse:
        self._authorize(request, "update", res_type)
        if not request.query:
            raise FhirError.of(400, "invalid", f"PUT on {res_type} needs an id or search criteria")
        resource = self._resource_body(request, res_type)
        self._validate(resource)
        with self._writing(writer) as w:
            matches = self.matching_ids(w, res_type, urlencode(request.query), request.caller, "u")
            if len(matches) > 1:
                raise FhirError.of(412, "multiple-matches", f"The criteria match {len(matches)} {res_type} resources")
            body_id = resource.get("id")
            if matches and body_id and body_id != matches[0]:
                raise FhirError.of(400, "invalid", f"The resource id {body_id!r} differs from the matching {matches[0]!r}", f"{res_type}.id")
            res_id = matches[0] if matches else check_id(body_id) if body_id else new_id()
            self.policy.check_resource(request.caller, resource, "u")
            current = w.read_current(res_type, res_id) if matches else None
            if current is not None:
                self.policy.check_content(request.caller, res_type, current.content, "u")
            version, created = w.update(res_type, res_id, resource, request.if_match())
        return self._write_response(request, version, 201 if created else 200)

    def patch(self, request: FhirRequest, res_type: str, res_id: str, writer: Writer | None = None) -> FhirResponse:
        self._authorize(request, "patch", res_type, res_id)
        with self._writing(writer) as w:
            return self._patch_in(w, request, res_type, res_id)

    def conditional_patch(self, request: FhirRequest, res_type: str, writer: Writer | None = None) -> FhirResponse:
        self._authorize(request, "patch", res_type)
        if not request.query:
            raise FhirError.of(400, "invalid", f"PATCH on {res_type} needs an id or search criteria")
        with self._writing(writer) as w:
            matches = self.matching_ids(w, res_type, urlencode(request.query), request.caller, "u")
            if len(matches) != 1:
                status = 404 if not matches else 412
                raise FhirError.of(status, "not-found" if not matches else "multiple-matches", f"The criteria match {len(matches)} {res_type} resources")
            return self._patch_in(w, request, res_type, matches[0])

    def _patch_in(self, w: Writer, request: FhirRequest, res_type: str, res_id: str) -> FhirResponse:
        head = w.head(res_type, res_id)
        current = w.read_current(res_type, res_id) if head and not head.deleted else None
        if current is None:
            raise FhirError.of(404 if head is None else 410, "not-found", f"{res_type}/{res_id} has no current version to patch")
        if_match = request.if_match()
        if if_match is not None and if_match != current.version:
            raise FhirError.of(412, "conflict", f"If-Match expected version {if_match}, the current one is {current.version}")
        self.policy.check_content(request.caller, res_type, current.content, "u")
        patched = self._apply_patch(request, fhirjson.decode(current.content or b"{}"))
        if patched.get("resourceType") != res_type or patched.get("id") != res_id:
            raise FhirError.of(422, "processing", "A patch may not change the resource's type or id")
        self._validate(patched)
        self.policy.check_resource(request.caller, patched, "u")
        version, _ = w.update(res_type, res_id, patched)
        return self._write_response(request, version, 200)

    def _apply_patch(self, request: FhirRequest, resource: dict) -> dict:
        content_type = request.headers.get("content-type", FHIR_JSON).split(";")[0].strip()
        document = request.body if isinstance(request.body, (dict, list)) else fhirjson.decode(request.body or b"")
        if content_type == JSON_PATCH or isinstance(document, list):
            return apply_json_patch(resource, document)
        if isinstance(document, dict) and document.get("resourceType") == "Parameters":
            return apply_fhirpath_patch(resource, document)
        raise FhirError.of(
            415 if content_type not in (FHIR_JSON, "application/json") else 400, "invalid",
            "A patch must be a JSON Patch (application/json-patch+json) or a FHIRPath Patch Parameters resource",
        )

    def delete(self, request: FhirRequest, res_type: str, res_id: str, writer: Writer | None = None) -> FhirResponse:
        self._authorize(request, "delete", res_type, res_id)
        with self._writing(writer) as w:
            head = w.head(res_type, res_id)
            if head is None:
                raise FhirError.of(404, "not-found", f"{res_type}/{res_id} is not known")
            current = w.read_current(res_type, res_id) if not head.deleted else None
            if current is not None:
                self.policy.check_content(request.caller, res_type, current.content, "d")
            version = w.delete(res_type, res_id, request.if_match())
        if version is None:
            return FhirResponse(204)
        return FhirResponse(204, None, {"ETag": version.etag}, version)

    def conditional_delete(self, request: FhirRequest, res_type: str, writer: Writer | None = None) -> FhirResponse:
        self._authorize(request, "delete", res_type)
        if not request.query:
            raise FhirError.of(400, "invalid", f"DELETE on {res_type} needs an id or search criteria")
        with self._writing(writer) as w:
            matches = self.matching_ids(w, res_type, urlencode(request.query), request.caller, "d")
            if len(matches) > 1:
                raise FhirError.of(412, "multiple-matches", f"The criteria match {len(matches)} {res_type} resources")
            current = w.read_current(res_type, matches[0]) if matches else None
            if current is not None:
                self.policy.check_content(request.caller, res_type, current.content, "d")
            version = w.delete(res_type, matches[0], request.if_match()) if matches else None
        return FhirResponse(204, None, {"ETag": version.etag} if version else {}, version)

    # -- helpers ---------------------------------------------------------------------------

    def matching_ids(self, w: Writer, res_type: str, query: str, caller: Caller, letter: str) -> list[str]:
        """Ids matching conditional criteria among the resources the caller may `letter` (so a
        condition cannot reveal what the caller may not see); serialised per criteria across
        processes."""
        pairs = parse_qsl(query, keep_blank_values=True)
        if not pairs:
            raise FhirError.of(400, "invalid", f"Conditional criteria {query!r} are empty or malformed")
        w.lock(f"{res_type}?{urlencode(sorted(pairs))}")
        return find_ids(w.tx, self.definitions, res_type, pairs, confine=self.policy.confinement(caller, letter))

    def resolve_conditional_reference(self, w: Writer, reference: str, caller: Caller) -> str:
        """`Patient?identifier=sys|1` -> `Patient/<id>`, which must match exactly one resource."""
        res_type, _, query = reference.partition("?")
        if not self.definitions.is_resource_type(res_type):
            raise FhirError.of(400, "invalid", f"Conditional reference {reference!r} names no resource type")
        matches = self.matching_ids(w, res_type, query, caller, "r")
        if len(matches) != 1:
            raise FhirError.of(412 if matches else 404, "not-found", f"Conditional reference {reference!r} matches {len(matches)} resources")
        return f"{res_type}/{matches[0]}"

    def _resource_body(self, request: FhirRequest, res_type: str) -> dict:
        body = request.body
        if isinstance(body, (bytes, str)):
            if not body:
                raise FhirError.of(400, "required", "The request has no body; a resource was expected")
            body = fhirjson.decode(body)
        if not isinstance(body, dict):
            raise FhirError.of(400, "structure", "The body must be a JSON object holding a FHIR resource")
        if body.get("resourceType") != res_type:
            raise FhirError.of(
                400, "invalid",
                f"The body's resourceType ({body.get('resourceType')!r}) does not match the URL ({res_type})",
                "resourceType",
            )
        return body

    def _validate(self, resource: dict) -> None:
        if self.settings.validate_writes:
            try:
                issues = validate_resource(resource)
            except RecursionError:
                raise fhirjson.too_deep() from None
            if any(issue.severity in ("error", "fatal") for issue in issues):
                raise FhirError(400, issues)

    def _write_response(self, request: FhirRequest, version: Version, status: int) -> FhirResponse:
        headers = self._version_headers(version)
        headers["Location"] = f"{self.settings.base_url}/{version.res_type}/{version.res_id}/_history/{version.version}"
        preference = request.prefer("return")
        body: bytes | dict | None = version.content
        if preference == "minimal":
            body = None
        elif preference == "OperationOutcome":
            verb = "Created" if status == 201 else "Stored"
            body = operation_outcome([Issue("information", "informational", f"{verb} {version.res_type}/{version.res_id} version {version.version}")])
        return FhirResponse(status, body, headers, version)

    def _full_url(self, version: Version) -> str:
        return f"{self.settings.base_url}/{version.res_type}/{version.res_id}"

    def _count(self, request: FhirRequest) -> int:
        value = request.param("_count")
        if value is None:
            return self.settings.default_count
        if not value.isdigit():
            raise FhirError.of(400, "invalid", f"_count must be a non-negative integer, not {value!r}", "_count")
        return min(int(value), self.settings.max_count)

    @staticmethod
    def _int_param(request: FhirRequest, name: str, default: int) -> int:
        value = request.param(name)
        if value is None:
            return default
        if not value.isdigit() or len(value) > 18:
            raise FhirError.of(400, "invalid", f"{name} must be a non-negative integer below 10^18", name)
        return int(value)

    def _page_links(
        self, path: str, request: FhirRequest, count: int, offset: int, total: int,
        extra: dict[str, str],
    ) -> list[dict]:
        base = [(k, v) for k, v in request.query if k not in ("_count", "_offset", _SNAPSHOT)]
        base += list(extra.items())

        def link(relation: str, page_offset: int) -> dict:
            query = urlencode([*base, ("_count", str(count)), ("_offset", str(page_offset))])
            return {"relation": relation, "url": f"{self.settings.base_url}/{path}?{query}"}

        links = [link("self", offset)]
        if count and offset + count < total:
            links.append(link("next", offset + count))
        if offset > 0:
            links.append(link("previous", max(0, offset - count)))
        return links

    @staticmethod
    def _bundle(kind: str, entries: list[dict], total: int | None, links: list[dict]) -> dict:
        bundle: dict[str, Any] = {
            "resourceType": "Bundle",
            "id": new_id(),
            "meta": {"lastUpdated": format_instant(now_micros())},
            "type": kind,
        }
        if total is not None:
            bundle["total"] = total
        bundle["link"] = links
        if entries:
            bundle["entry"] = entries
        return bundle
