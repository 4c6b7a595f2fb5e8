"""The single decision point every request passes: may this caller do this interaction?

Authorization (SMART scopes, compartments), Consent and audit attach here; handlers only
call `Policy.authorize` and never check permissions themselves.
"""

from __future__ import annotations

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


class Policy:
    """Open policy: every caller may do everything. Subclasses narrow it."""

    def authorize(self, caller: Caller, access: Access) -> None:
        """Return if allowed; raise `FhirError` (401/403) if not."""
