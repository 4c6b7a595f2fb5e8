"""Errors as FHIR sees them: issues that become an OperationOutcome with an HTTP status.

An issue may carry a coded `details` (the terminology operations use the tx-issue-type code
system there, with the message in `details.text`) and the id of the message it was made from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MESSAGE_ID = "http://hl7.org/fhir/StructureDefinition/operationoutcome-message-id"


@dataclass(frozen=True)
class Issue:
    """One OperationOutcome.issue: `code` is from the IssueType value set."""

    severity: str
    code: str
    diagnostics: str
    expression: str | None = None
    details: tuple[tuple[str, str], ...] | None = None  # (system, code)s: the message goes in details.text
    message_id: str | None = None

    def to_json(self) -> dict:
        issue: dict = {}
        if self.message_id:
            issue["extension"] = [{"url": MESSAGE_ID, "valueString": self.message_id}]
        issue["severity"] = self.severity
        issue["code"] = self.code
        if self.details is not None:
            codings = [{"system": system, "code": code} for system, code in self.details]
            issue["details"] = {"coding": codings, "text": self.diagnostics} if codings else {"text": self.diagnostics}
        else:
            issue["diagnostics"] = self.diagnostics
        if self.expression:
            issue["expression"] = [self.expression]
        return issue


@dataclass
class FhirError(Exception):
    """A failure to report to the client as an OperationOutcome with `status`."""

    status: int
    issues: list[Issue] = field(default_factory=list)

    @classmethod
    def of(cls, status: int, code: str, diagnostics: str, expression: str | None = None) -> FhirError:
        return cls(status, [Issue("error", code, diagnostics, expression)])

    def __str__(self) -> str:
        return "; ".join(issue.diagnostics for issue in self.issues)


def operation_outcome(issues: list[Issue]) -> dict:
    return {"resourceType": "OperationOutcome", "issue": [issue.to_json() for issue in issues]}
