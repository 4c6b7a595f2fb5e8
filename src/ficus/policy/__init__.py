"""The single decision point every request passes: may this caller do this interaction?

Authorization (SMART scopes, compartments), Consent and audit attach here; handlers only
call `Policy.authorize` and never check permissions themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Caller:
    """Who is asking: an anonymous caller until an authorization server says otherwise."""

    subject: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    patient: str | None = None
    client_id: str | None = None


ANONYMOUS = Caller()


@dataclass(frozen=True)
class Access:
    """One interaction a caller attempts (FHIR interaction codes: read, vread, create, ...)."""

    interaction: str
    res_type: str | None = None
    res_id: str | None = None


@dataclass(frozen=True)
class SearchRestriction:
    """How a search must be narrowed for a caller: to `Patient/patient`'s compartment, by `criteria`."""

    patient: str | None
    criteria: tuple[tuple[str, str], ...] = ()


class Policy:
    """Open policy: every caller may do everything. Subclasses narrow it."""

    def authorize(self, caller: Caller, access: Access) -> None:
        """Return if allowed; raise `FhirError` (401/403) if not."""

    def check_resource(self, caller: Caller, resource: dict, letter: str = "r") -> None:
        """Raise 403 unless the caller may `letter` (c r u d s) this resource."""

    def check_content(self, caller: Caller, res_type: str, content: bytes | None, letter: str = "r") -> None:
        """`check_resource` for stored JSON bytes (parsed only when the policy needs to look)."""

    def visible_content(self, caller: Caller, res_type: str, content: bytes | None, letter: str = "s") -> bool:
        return True

    def search_restriction(self, caller: Caller, res_type: str) -> SearchRestriction | None:
        """The compartment and criteria a search of `res_type` (`*`: all types) must add; None: none."""
        return None

    def confinement(self, caller: Caller, letter: str = "s") -> Callable[[str], tuple | None] | None:
        """What the caller may `letter` of each type, for the resources a search looks at
        without returning them (chains, `_has`, `_list`, conditional matches): a
        `ficus.search.confine.Confinement`, or None when the caller may see everything."""
        return None
