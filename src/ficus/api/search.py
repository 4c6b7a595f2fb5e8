"""The search interaction: a request's parameters -> a `searchset` Bundle.

Serves type search (`GET /[type]?`, `POST /[type]/_search`), system search (`GET /?_type=...`,
`POST /_search`) and compartment search (`GET /Patient/[id]/[type]`, `GET /Patient/[id]/*`).
Parameters come from the query string and, for POST, the form body. Unknown parameters fail
under `Prefer: handling=strict` and are dropped and reported in an `outcome` entry otherwise;
malformed values always fail with a 400 naming the parameter.

`_explain=true` returns the statements the search ran with their parameters, timings and the
database's plans (`_explain=analyze`: EXPLAIN ANALYZE on PostgreSQL), when the server runs with
`Settings.explain` on (`FICUS_EXPLAIN=1`; otherwise `_explain` is an unknown parameter). The
caller must also pass `Policy.authorize(Access("explain", type))`. `Settings.default_total`
(accurate, estimate, none) sets `_total` for requests that do not send it.
"""

from __future__ import annotations

import dataclasses
import json
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

import msgspec

from ficus import fhirjson
from ficus.api import shaping
from ficus.api.exchange import FhirRequest, FhirResponse, new_id
from ficus.fhirtime import format_instant, now_micros
from ficus.outcome import FhirError, Issue, operation_outcome
from ficus.policy import Access
from ficus.search.execute import SearchPlan, SearchResult, Statement, run
from ficus.search.include import parse_includes
from ficus.search.paging import CURSOR_PARAMETER, Cursor
from ficus.search.query import parse_criteria
from ficus.search.sort import parse_sort, sort_keys
from ficus.spec import Definitions
from ficus.store.repository import Version, Writer

if TYPE_CHECKING:
    from ficus.api.interactions import Interactions

_SINGLE = ("_count", "_offset", CURSOR_PARAMETER, "_total", "_summary", "_elements", "_contained", "_containedType", "_explain")
_PASS_THROUGH = ("_format", "_pretty")
_CONTROL = frozenset((*_SINGLE, *_PASS_THROUGH, "_sort", "_include", "_revinclude", "_type"))
_TOTALS = ("none", "estimate", "accurate")
_BUILT_IN = ("_id", "_lastUpdated")


@dataclass(frozen=True)
class Scope:
    """Where a search runs."""

    types: list[str] | None  # None: every resource type (system search without _type)
    path: str  # relative URL path of the search, for the Bundle links
    system: bool = False
    compartment: tuple[str, str] | None = None  # (type, id)
    all_compartment_types: bool = False  # compartment search with '*'


def search(interactions: Interactions, request: FhirRequest, scope: Scope, writer: Writer | None = None) -> FhirResponse:
    definitions = interactions.definitions
    pairs = request_pairs(request)
    strict = request.prefer("handling") == "strict"
    warnings: list[Issue] = []

    def unknown(key: str, message: str) -> None:
        if strict:
            raise FhirError.of(400, "not-supported", message, key)
        warnings.append(Issue("warning", "not-supported", f"{message}; it was ignored", key))

    for key, value in pairs:
        if "\x00" in key or "\x00" in value:
            raise FhirError.of(400, "invalid", "Search parameters may not contain NUL characters", key.replace("\x00", ""))
    control: dict[str, str] = {}
    multi: dict[str, list[tuple[str, str]]] = {"_sort": [], "_include": [], "_type": []}
    criteria_pairs: list[tuple[str, str]] = []
    for key, value in pairs:
        name = key.partition(":")[0]
        if name not in _CONTROL:
            criteria_pairs.append((key, value))
        elif name in ("_include", "_revinclude"):
            multi["_include"].append((key, value))
        elif name in multi:
            multi[name].append((key, value))
        else:
            control.setdefault(name, value)

    if "_explain" in control and not interactions.settings.explain:
        unknown("_explain", "_explain is not enabled on this server")
        control.pop("_explain")

    # -- scope ----------------------------------------------------------------------------------
    types = scope.types
    if multi["_type"]:
        if not scope.system:
            unknown("_type", "_type is only used by system search")
        else:
            named: list[str] = []
            for _, value in multi["_type"]:
                for res_type in (t.strip() for t in value.split(",")):
                    if not definitions.is_resource_type(res_type):
                        raise FhirError.of(400, "invalid", f"_type: '{res_type}' is not a resource type", "_type")
                    if res_type not in named:
                        named.append(res_type)
            types = named
    _authorize(interactions, request, scope, types)
    if "_explain" in control:
        for res_type in types or [None]:
            interactions.policy.authorize(request.caller, Access("explain", res_type))

    # -- criteria -------------------------------------------------------------------------------
    kept: list[tuple[str, str]] = []
    for key, value in criteria_pairs:
        missing = [t for t in (types or ["Resource"]) if not is_known(definitions, t, key)]
        if missing:
            where = missing[0] if len(missing) == 1 else f"{len(missing)} of the searched types"
            unknown(key, f"Unknown search parameter '{key}' for {where}")
        else:
            kept.append((key, value))
    restriction = _restriction(interactions, request, scope, types)
    criteria = parse_criteria(kept + list(restriction.criteria if restriction else ()))

    # -- result parameters ----------------------------------------------------------------------
    settings = interactions.settings
    count = _non_negative(control.get("_count"), "_count", settings.default_count)
    count = min(count, settings.max_count)
    offset = _non_negative(control.get("_offset"), "_offset", 0)
    total_mode = control.get("_total") or interactions.settings.default_total
    if total_mode not in _TOTALS:
        raise FhirError.of(400, "invalid", f"_total must be none, estimate or accurate, not {total_mode!r}", "_total")
    summary, elements = control.get("_summary"), control.get("_elements")
    shaping.wants_subset(summary, elements)  # validates _summary
    if control.get("_contained", "false") != "false":
        unknown("_contained", "_contained is not supported")
    if control.get("_containedType", "container") != "container":
        unknown("_containedType", "_containedType is not supported")

    sort_items = parse_sort(multi["_sort"])
    keys, unknown_sorts = sort_keys(definitions, types, sort_items, interactions.repository.database.dialect)
    for name in unknown_sorts:
        unknown("_sort", f"Unknown search parameter '{name}' in _sort")
    includes, unknown_includes = parse_includes(definitions, multi["_include"])
    for key, value in unknown_includes:
        unknown(key, f"{key}={value} names an unknown search parameter")
    cursor = Cursor.decode(control[CURSOR_PARAMETER], [k.kind for k in keys]) if CURSOR_PARAMETER in control else None

    page = summary != "count" and count > 0
    confine, narrowed = _confinement(interactions, request)
    plan = SearchPlan(
        types=types, criteria=criteria, sort=keys, count=count, offset=offset, cursor=cursor,
        total="accurate" if summary == "count" else total_mode, page=page,
        includes=includes if page else [],
        compartment=_compartment(definitions, scope, types, restriction),
        snapshot=False if "_explain" in control else "ask",
        confine=confine, viewer=(request.caller.patient, *sorted(request.caller.scopes)) if confine else (),
        repeated=frozenset(writer.repeated) if writer else frozenset(),
    )
    repository = interactions.repository
    dialect = repository.database.dialect
    with repository.reading(writer.tx if writer else None) as tx:
        result = run(tx, definitions, dialect, plan)
        if "_explain" in control:
            return FhirResponse(200, explain(tx, dialect, result.statements, control["_explain"]))
    if result.wants_snapshot:
        # a sorted search of several pages: store its matches in order, in a transaction of its own
        with nullcontext(writer.tx) if writer else repository.database.session(write=True) as tx:
            if dialect == "postgresql" and writer is None:
                # a snapshot lost in a crash is only re-run; JIT compiling its large sort costs more than it saves
                tx.execute("SELECT set_config('synchronous_commit', 'off', true), set_config('jit', 'off', true)")
            result = run(tx, definitions, dialect, dataclasses.replace(plan, snapshot="make"))
    result.warnings[:0] = warnings
    _authorize_included(interactions, request, result)
    if restriction is not None and (restriction.criteria or scope.compartment is None):
        limits = [f"Patient/{restriction.patient}'s compartment"] if restriction.patient else []
        limits += [f"{k}={v}" for k, v in restriction.criteria]
        result.warnings.append(Issue("information", "informational", f"Results are limited by the access token to {' and '.join(limits)}"))
    if narrowed:
        result.warnings.append(Issue(
            "information", "informational",
            f"Chained, _has and _list criteria only consider the {', '.join(sorted(narrowed))} resources the access token may see",
        ))

    # -- the Bundle -----------------------------------------------------------------------------
    link_pairs = [*kept, *_canonical_control(control, multi, keys, includes, count, types if scope.system else None)]
    entries = [_entry(interactions, v, "match", summary, elements) for v in result.matches]
    entries += [_entry(interactions, v, "include", summary, elements) for v in result.included]
    if result.warnings:
        entries.append({"resource": operation_outcome(result.warnings), "search": {"mode": "outcome"}})
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": new_id(),
        "meta": {"lastUpdated": format_instant(now_micros())},
        "type": "searchset",
    }
    if result.total is not None:
        bundle["total"] = result.total
    bundle["link"] = _links(interactions, scope.path, link_pairs, cursor, offset, result)
    if entries:
        bundle["entry"] = entries
    return FhirResponse(200, bundle)


def request_pairs(request: FhirRequest) -> list[tuple[str, str]]:
    """Query string parameters plus, for POST `_search`, the form-encoded body."""
    pairs = list(request.query)
    if request.method != "POST" or not request.body:
        return pairs
    content_type = request.headers.get("content-type", "application/x-www-form-urlencoded").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded" or not isinstance(request.body, (bytes, str)):
        raise FhirError.of(415, "not-supported", "POST _search expects an application/x-www-form-urlencoded body")
    body = request.body
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError:
            raise FhirError.of(400, "invalid", "The _search form body is not UTF-8") from None
    return pairs + parse_qsl(body, keep_blank_values=True)


def is_known(definitions: Definitions, res_type: str, key: str) -> bool:
    """Whether `res_type` can be searched with `key` (`code`, `code:modifier`, a chain, `_has:...`)."""
    try:
        from ficus.search.query import is_known_parameter  # understands modifiers, chains and _has
    except ImportError:
        name = key.partition(":")[0].partition(".")[0]
        return name in _BUILT_IN or name in definitions.search_parameters_for(res_type)
    return is_known_parameter(definitions, res_type, key)


def _authorize(interactions: Interactions, request: FhirRequest, scope: Scope, types: list[str] | None) -> None:
    policy = interactions.policy
    if scope.system or scope.all_compartment_types:
        policy.authorize(request.caller, Access("search-system"))
    if scope.all_compartment_types:
        return
    for res_type in types or []:
        policy.authorize(request.caller, Access("search-type", res_type))


def _authorize_included(interactions: Interactions, request: FhirRequest, result: SearchResult) -> None:
    """Included resources are searched-for resources too: drop the types the caller may not see."""
    denied = set()
    for res_type in sorted({v.res_type for v in result.included}):
        try:
            interactions.policy.authorize(request.caller, Access("search-type", res_type))
        except FhirError as error:
            if error.status not in (401, 403):
                raise
            denied.add(res_type)
    policy, caller = interactions.policy, request.caller
    kept = [v for v in result.included if v.res_type not in denied and policy.visible_content(caller, v.res_type, v.content, "s")]
    withheld = len(result.included) - len(kept)
    result.included = kept
    if withheld and not denied:
        result.warnings.append(Issue("warning", "suppressed", f"{withheld} included resource(s) outside what the access token may see were withheld"))
    if denied:
        result.warnings.append(Issue(
            "warning", "suppressed", f"Included resources of type {', '.join(sorted(denied))} were withheld",
        ))


def _restriction(interactions: Interactions, request: FhirRequest, scope: Scope, types: list[str] | None) -> Any:
    """The policy's narrowing of this search: one for all searched types, else 403."""
    policy = interactions.policy
    restrictions = [policy.search_restriction(request.caller, t) for t in (types if types and not scope.all_compartment_types else ["*"])]
    first = restrictions[0] if restrictions else None
    if any(r != first for r in restrictions):
        raise FhirError.of(403, "forbidden", "The access token restricts these types differently; search them one at a time")
    if first is not None and first.patient and scope.compartment and scope.compartment != ("Patient", first.patient):
        raise FhirError.of(403, "forbidden", f"The access token is limited to Patient/{first.patient}")
    return first


def _confinement(interactions: Interactions, request: FhirRequest) -> tuple[Any, set[str]]:
    """The policy's confinement of chains, `_has` and `_list`, and the types it narrowed (to say so)."""
    confine = interactions.policy.confinement(request.caller, "s")
    narrowed: set[str] = set()
    if confine is None:
        return None, narrowed

    def recording(res_type: str) -> tuple | None:
        found = confine(res_type)
        if found is not None:
            narrowed.add(res_type)
        return found

    return recording, narrowed


def _compartment(definitions: Definitions, scope: Scope, types: list[str] | None, restriction: Any = None) -> tuple[str, str, dict[str, list[str]]] | None:
    if scope.compartment is None and restriction is not None and restriction.patient:
        scope = Scope(scope.types, scope.path, scope.system, ("Patient", restriction.patient), scope.all_compartment_types)
    if scope.compartment is None:
        return None
    comp_type, comp_id = scope.compartment
    members = definitions.compartments[comp_type]
    chosen = members.keys() if types is None else types
    return comp_type, comp_id, {t: list(members.get(t, ())) for t in chosen}


def compartment_types(definitions: Definitions, comp_type: str) -> list[str]:
    """The resource types that can be in a compartment (its own type included)."""
    members = definitions.compartments[comp_type]
    return sorted({t for t, params in members.items() if params} | {comp_type})


def _non_negative(value: str | None, name: str, default: int) -> int:
    if value is None:
        return default
    if not value.isdigit() or len(value) > 12:
        raise FhirError.of(400, "invalid", f"{name} must be a non-negative integer, not {value!r}", name)
    return int(value)


def _canonical_control(
    control: dict[str, str], multi: dict[str, list[tuple[str, str]]], keys: list, includes: list,
    count: int, system_types: list[str] | None,
) -> list[tuple[str, str]]:
    """The result parameters this search actually used, for the Bundle links."""
    pairs: list[tuple[str, str]] = []
    if system_types:
        pairs.append(("_type", ",".join(system_types)))
    if keys:
        pairs.append(("_sort", ",".join(("-" if k.descending else "") + k.name for k in keys)))
    for spec in includes:
        if spec.source_type is None:
            value = "*"
        else:
            value = ":".join(p for p in (spec.source_type, spec.param or "*", spec.target_type) if p)
        pairs.append((spec.key, value))
    for name in ("_total", "_summary", "_elements", "_contained", "_containedType", *_PASS_THROUGH):
        if name in control:
            pairs.append((name, control[name]))
    pairs.append(("_count", str(count)))
    return pairs


def _links(
    interactions: Interactions, path: str, pairs: list[tuple[str, str]], cursor: Cursor | None, offset: int,
    result: SearchResult,
) -> list[dict]:
    base = interactions.settings.base_url + ("/" + path if path else "")

    def url(extra: list[tuple[str, str]]) -> str:
        return f"{base}?{urlencode([*pairs, *extra])}"

    here: list[tuple[str, str]] = []
    if cursor is not None:
        here.append((CURSOR_PARAMETER, cursor.encode()))
    if offset:
        here.append(("_offset", str(offset)))
    links = [{"relation": "self", "url": url(here)}, {"relation": "first", "url": url([])}]
    if result.previous is not None:
        links.append({"relation": "previous", "url": url([(CURSOR_PARAMETER, result.previous.encode())])})
    if result.next is not None:
        links.append({"relation": "next", "url": url([(CURSOR_PARAMETER, result.next.encode())])})
    return links


def _entry(interactions: Interactions, version: Version, mode: str, summary: str | None, elements: str | None) -> dict:
    resource: Any = msgspec.Raw(version.content or b"{}")
    chosen = _elements_for(version.res_type, elements)
    if chosen or summary in ("true", "text", "data"):
        resource = shaping.subset(fhirjson.decode(version.content or b"{}"), interactions.definitions, summary, chosen)
    full_url = f"{interactions.settings.base_url}/{version.res_type}/{version.res_id}"
    return {"fullUrl": full_url, "resource": resource, "search": {"mode": mode}}


def _elements_for(res_type: str, elements: str | None) -> str | None:
    """`_elements` for one type: bare names apply to every type, `Type.name` to that type."""
    if not elements:
        return None
    names = []
    for item in (e.strip() for e in elements.split(",")):
        head, dot, rest = item.partition(".")
        if not dot:
            names.append(item)
        elif head == res_type and rest:
            names.append(rest.partition(".")[0])
    return ",".join(n for n in names if n) or None


def explain(tx: Any, dialect: str, statements: list[Statement], mode: str) -> dict:
    """A Parameters resource with each statement's SQL, parameters, timing and plan."""
    parameters: list[dict] = [{"name": "database", "valueString": dialect}]
    analyze = mode == "analyze" and dialect == "postgresql"
    for statement in statements:
        prefix = "EXPLAIN QUERY PLAN " if dialect == "sqlite" else "EXPLAIN (ANALYZE, BUFFERS) " if analyze else "EXPLAIN "
        if statement.sql.startswith("EXPLAIN"):  # the estimate of a total reads a plan itself
            plan = "(the statement is a plan)"
        else:
            try:
                rows = tx.execute(prefix + statement.sql, statement.params).fetchall()
                plan = "\n".join(_plan_line(row, dialect) for row in rows)
            except Exception as error:  # noqa: BLE001 - a plan that cannot be shown is reported, not fatal
                plan = f"(no plan: {error})"
        parameters.append({"name": "statement", "part": [
            {"name": "purpose", "valueString": statement.purpose},
            {"name": "sql", "valueString": statement.sql},
            {"name": "parameters", "valueString": json.dumps(statement.params, default=str)},
            {"name": "rows", "valueInteger": statement.rows},
            {"name": "milliseconds", "valueDecimal": round(statement.seconds * 1000, 3)},
            {"name": "plan", "valueString": plan},
        ]})
    parameters.append({"name": "statementCount", "valueInteger": len(statements)})
    return {"resourceType": "Parameters", "parameter": parameters}


def _plan_line(row: Any, dialect: str) -> str:
    if dialect == "sqlite":  # (id, parent, notused, detail)
        return f"{row[0]}|{row[1]}| {row[-1]}"
    return str(row[0])
