"""OperationOutcome issues of the terminology operations, in the shape terminology clients read.

Each issue has a `details.coding` from the tx-issue-type code system (`not-in-vs`,
`invalid-code`, `invalid-display`, `not-found`, ...), the message text, the FHIRPath of the
element it is about, and the message id as an extension.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TX_ISSUE_TYPE = "http://hl7.org/fhir/tools/CodeSystem/tx-issue-type"
MESSAGE_ID = "http://hl7.org/fhir/StructureDefinition/operationoutcome-message-id"


@dataclass
class TxIssue:
    severity: str
    code: str  # IssueType
    tx_type: str | None
    text: str
    expression: str | None = None
    message_id: str | None = None

    def to_json(self) -> dict:
        issue: dict = {}
        if self.message_id:
            issue["extension"] = [{"url": MESSAGE_ID, "valueString": self.message_id}]
        issue["severity"] = self.severity
        issue["code"] = self.code
        details: dict = {}
        if self.tx_type:
            details["coding"] = [{"system": TX_ISSUE_TYPE, "code": self.tx_type}]
        details["text"] = self.text
        issue["details"] = details
        if self.expression:
            issue["location"] = [self.expression]
            issue["expression"] = [self.expression]
        return issue


@dataclass
class TerminologyError(Exception):
    """An operation that cannot answer: reported as an OperationOutcome with `status`."""

    status: int
    issues: list[TxIssue] = field(default_factory=list)

    @classmethod
    def of(cls, status: int, code: str, tx_type: str | None, text: str, expression: str | None = None, message_id: str | None = None) -> TerminologyError:
        return cls(status, [TxIssue("error", code, tx_type, text, expression, message_id)])

    def __str__(self) -> str:
        return "; ".join(issue.text for issue in self.issues)


def outcome(issues: list[TxIssue]) -> dict:
    return {"resourceType": "OperationOutcome", "issue": [issue.to_json() for issue in issues]}
