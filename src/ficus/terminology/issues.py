"""OperationOutcome issues of the terminology operations, in the shape terminology clients read.

Each issue has a `details.coding` from the tx-issue-type code system (`not-in-vs`,
`invalid-code`, `invalid-display`, `not-found`, ...), the message text, the FHIRPath of the
element it is about, and the message id as an extension. They are `ficus.outcome.Issue`s, and
an operation that cannot answer raises a `FhirError` of them.
"""

from __future__ import annotations

from ficus.outcome import FhirError, Issue

TX_ISSUE_TYPE = "http://hl7.org/fhir/tools/CodeSystem/tx-issue-type"


def tx_issue(
    severity: str, code: str, tx_type: str | None, text: str, expression: str | None = None, message_id: str | None = None,
) -> Issue:
    """An issue of IssueType `code`, of tx-issue-type `tx_type`, saying `text`."""
    return Issue(severity, code, text, expression, ((TX_ISSUE_TYPE, tx_type),) if tx_type else (), message_id)


def tx_type(issue: Issue) -> str | None:
    return next((code for system, code in issue.details or () if system == TX_ISSUE_TYPE), None)


def tx_error(
    status: int, code: str, tx_type: str | None, text: str, expression: str | None = None, message_id: str | None = None,
) -> FhirError:
    return FhirError(status, [tx_issue("error", code, tx_type, text, expression, message_id)])
