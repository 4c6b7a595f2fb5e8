"""`SmartPolicy`: SMART scopes and the patient context decide every interaction.

`authorize(caller, access)` is the type-level decision the REST layer already asks for each
interaction: which scope letter (`c r u d s`) the interaction needs on which type, and whether
any of the caller's scopes grants it. A grant can be restricted - to the Patient compartment of
the token's patient (`patient/` scopes, or `user/` scopes of a user who is a Patient), and to
resources matching a granular scope's query. Those restrictions concern resources, not types,
so the read, search and write paths apply them with the building blocks below:

- `visible(caller, resource, letter)`: may this caller see (`r`/`s`) or write (`c`/`u`/`d`)
  this resource? `check_resource` raises the 403.
- `search_restriction(caller, res_type)`: the compartment and extra criteria a search of
  `res_type` must be run with (None: unrestricted).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from ficus import fhirjson
from ficus.auth.compartment import PatientCompartment, QueryMatcher
from ficus.auth.errors import insufficient_scope, unauthenticated
from ficus.auth.scopes import ResourceScope, resource_scopes
from ficus.outcome import FhirError
from ficus.policy import Access, Caller, Policy, SearchRestriction
from ficus.spec import Definitions
from ficus.spec import definitions as r4_definitions

# Resources outside any Patient compartment that patient-context tokens may still read: the
# practitioners, organisations and medications a patient's record points to, and definitions
# (terminology, profiles, questionnaires). None of them holds a patient's data.
SHARED_TYPES = frozenset({
    "Medication", "Organization", "Practitioner", "PractitionerRole", "Location", "Substance",
    "HealthcareService", "Endpoint",
    "CodeSystem", "ValueSet", "ConceptMap", "NamingSystem", "StructureDefinition", "Questionnaire",
    "SearchParameter", "OperationDefinition", "CapabilityStatement",
})
# Operations that change the server itself: only unrestricted `*.cruds` (user or system) may run them.
ADMIN_OPERATIONS = frozenset({"reindex"})

_LETTER = {
    "read": "r", "vread": "r", "history-instance": "r",
    "search-type": "s", "history-type": "s", "search-system": "s", "history-system": "s", "explain": "s",
    "create": "c", "update": "u", "patch": "u", "delete": "d",
}
_SYSTEM_WIDE = frozenset({"search-system", "history-system"})


@dataclass(frozen=True)
class Alternative:
    """One way a caller is allowed something: within a patient's compartment and/or a query."""

    patient: str | None  # None: any patient's data
    query: tuple[tuple[str, str], ...] = ()  # (): no query restriction

    def within(self, other: Alternative) -> bool:
        """Whether everything this alternative admits is also admitted by `other`."""
        return other.patient in (None, self.patient) and set(other.query) <= set(self.query)


@dataclass(frozen=True)
class Grant:
    """What a caller may do with one permission letter on one type: any of the alternatives."""

    alternatives: tuple[Alternative, ...]

    @property
    def unrestricted(self) -> bool:
        return any(a.patient is None and not a.query for a in self.alternatives)


class SmartPolicy(Policy):
    """Enforces SMART App Launch scopes (v1 and v2) and the patient context."""

    def __init__(
        self, definitions: Definitions | None = None, base_url: str | None = None,
        shared_types: frozenset[str] = SHARED_TYPES, admin_operations: frozenset[str] = ADMIN_OPERATIONS,
    ) -> None:
        self.definitions = definitions or r4_definitions()
        self.compartment = PatientCompartment(self.definitions, base_url)
        self.matcher = QueryMatcher(self.definitions)
        self.shared_types = shared_types
        self.admin_operations = admin_operations

    # -- the type-level decision ------------------------------------------------------------

    def authorize(self, caller: Caller, access: Access) -> None:
        interaction = access.interaction
        if interaction == "capabilities":
            return
        if is_anonymous(caller):
            raise unauthenticated()
        if interaction in ("transaction", "batch"):
            return  # each entry is authorized on its own
        if interaction.startswith("operation:"):
            self._authorize_operation(caller, interaction.partition(":")[2], access)
            return
        letter = _LETTER.get(interaction)
        if letter is None:
            raise insufficient_scope(f"The interaction {interaction!r} is not open to SMART tokens")
        res_type = "*" if interaction in _SYSTEM_WIDE or access.res_type is None else access.res_type
        self.require(caller, res_type, letter, interaction)

    def require(self, caller: Caller, res_type: str, letter: str, what: str | None = None) -> Grant:
        grant = self.grant(caller, res_type, letter)
        if grant is None:
            needed = f"{'patient' if caller.patient else 'user'}/{res_type}.{letter}"
            label = what or letter
            target = "every resource type" if res_type == "*" else res_type
            raise insufficient_scope(f"The token's scopes do not permit {label} on {target} (needs e.g. {needed})", needed)
        return grant

    def require_administrator(self, caller: Caller, what: str) -> None:
        """Administration (`$reindex`, the admin API) needs unrestricted `*.cruds`: 401/403 else."""
        if is_anonymous(caller):
            raise unauthenticated()
        for letter in "cruds":
            grant = self.grant(caller, "*", letter)
            if grant is None or not grant.unrestricted:
                raise insufficient_scope(f"{what} needs unrestricted user/*.cruds or system/*.cruds scopes", "system/*.cruds")

    def _authorize_operation(self, caller: Caller, name: str, access: Access) -> None:
        if name in self.admin_operations:
            self.require_administrator(caller, f"${name}")
            return
        if access.res_id is not None and access.res_type is not None:
            self.require(caller, access.res_type, "r", f"${name}")
        else:
            self.require(caller, access.res_type or "*", "s", f"${name}")

    def grant(self, caller: Caller, res_type: str, letter: str) -> Grant | None:
        """The caller's ways of doing `letter` on `res_type` (`*`: all types), or None."""
        patient_user = _patient_user(caller)
        found: list[Alternative] = []
        for scope in _parsed(caller.scopes):
            if letter not in scope.permissions or scope.res_type not in ("*", res_type):
                continue
            if scope.level == "patient":
                if caller.patient is None:
                    continue  # a patient scope without a patient context grants nothing
                patient: str | None = caller.patient
            elif scope.level == "user":
                patient = patient_user
            else:
                patient = None
            if patient is not None and res_type != "*" and not self.compartment.can_contain(res_type):
                if res_type not in self.shared_types or letter not in "rs":
                    continue
                patient = None
            found.append(Alternative(patient, scope.query))
        if not found:
            return None
        kept = [a for i, a in enumerate(found) if not any(
            a.within(b) and (not b.within(a) or j < i) for j, b in enumerate(found) if j != i
        )]
        return Grant(tuple(kept))

    # -- building blocks for the read, search and write paths --------------------------------

    def visible(self, caller: Caller, resource: dict, letter: str = "r") -> bool:
        """Whether the caller may `letter` (`r`, `s`, `c`, `u`, `d`) this resource."""
        res_type = resource.get("resourceType")
        if not isinstance(res_type, str):
            return False
        grant = self.grant(caller, res_type, letter)
        if grant is None:
            return False
        return any(self._admits(alternative, resource) for alternative in grant.alternatives)

    def needs_resource_check(self, caller: Caller, res_type: str, letter: str = "r") -> bool:
        """Whether resources of `res_type` must be looked at (False: the grant is unrestricted,
        so the read path can keep serving stored bytes without parsing them)."""
        grant = self.grant(caller, res_type, letter)
        return grant is None or not grant.unrestricted

    def visible_content(self, caller: Caller, res_type: str, content: bytes | None, letter: str = "r") -> bool:
        """`visible` for stored JSON bytes, parsed only when the grant is restricted."""
        if content is None or not self.needs_resource_check(caller, res_type, letter):
            return self.grant(caller, res_type, letter) is not None
        return self.visible(caller, fhirjson.decode(content), letter)

    def check_content(self, caller: Caller, res_type: str, content: bytes | None, letter: str = "r") -> None:
        """`check_resource` for stored JSON bytes (a deleted version, None, passes)."""
        if content is None or not self.needs_resource_check(caller, res_type, letter):
            return
        self.check_resource(caller, fhirjson.decode(content), letter)

    def check_resource(self, caller: Caller, resource: dict, letter: str = "r") -> None:
        """Raise 403 unless `visible`; call it on the current (and, for writes, the new) content."""
        if not self.visible(caller, resource, letter):
            label = f"{resource.get('resourceType')}/{resource.get('id')}" if resource.get("id") else str(resource.get("resourceType"))
            context = f" of Patient/{caller.patient}" if caller.patient else ""
            raise insufficient_scope(f"{label} is outside what this token may access{context}")

    def search_restriction(self, caller: Caller, res_type: str = "*") -> SearchRestriction | None:
        """The compartment and criteria a search of `res_type` (`*`: a system search) must add.

        None: no restriction. Raises 403 when the caller may not search the type, or when its
        granular scopes combine in a way one FHIR query cannot express.
        """
        grant = self.require(caller, res_type, "s")
        if grant.unrestricted:
            return None
        alternatives = grant.alternatives
        patients = {a.patient for a in alternatives}
        if len(patients) != 1:
            raise FhirError.of(
                403, "forbidden",
                f"The token's scopes for {res_type} mix patient contexts and queries in a way one search cannot "
                "express; search with fewer scopes",
            )
        patient = patients.pop()
        if len(alternatives) == 1:
            return SearchRestriction(patient, alternatives[0].query)
        names = {name for a in alternatives for name, _ in a.query}
        if len(names) == 1 and all(len(a.query) == 1 for a in alternatives):
            values = ",".join(a.query[0][1] for a in alternatives)
            return SearchRestriction(patient, ((names.pop(), values),))
        raise FhirError.of(
            403, "forbidden",
            f"The token's granular scopes for {res_type} use different search parameters; one search cannot "
            "combine them. Search with the criteria of one scope.",
        )

    def confinement(self, caller: Caller, letter: str = "s") -> Callable[[str], tuple | None] | None:
        """Per type, the compartments and granular-scope criteria of the caller's grant for
        `letter` (an empty tuple: the type is not granted at all); None when every type is open."""
        everything = self.grant(caller, "*", letter)
        if everything is not None and everything.unrestricted:
            return None

        @functools.lru_cache(maxsize=64)
        def visible(res_type: str) -> tuple | None:
            grant = self.grant(caller, res_type, letter)
            if grant is None:
                return ()
            if grant.unrestricted:
                return None
            return tuple((("Patient", a.patient) if a.patient else None, a.query) for a in grant.alternatives)

        return visible

    def _admits(self, alternative: Alternative, resource: dict) -> bool:
        if alternative.patient is not None and not self.compartment.contains(resource, alternative.patient):
            return False
        return not alternative.query or self.matcher.matches(resource, alternative.query)


@functools.lru_cache(maxsize=1024)
def _parsed(names: frozenset[str]) -> tuple[ResourceScope, ...]:
    return tuple(resource_scopes(sorted(names)))


def is_anonymous(caller: Caller) -> bool:
    return caller.subject is None and caller.client_id is None and not caller.scopes


def _patient_user(caller: Caller) -> str | None:
    """The id of the Patient the user is (fhirUser `Patient/x`): their `user/` scopes stop at it."""
    subject = caller.subject or ""
    return subject[len("Patient/"):] if subject.startswith("Patient/") else None
