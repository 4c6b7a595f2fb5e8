"""The HL7 terminology-server test suite (mode `general`) against Ficus, over HTTP.

Every case runs; the test asserts that exactly the cases listed in
`tests/fixtures/terminology/tx-ecosystem-known-failures.json` fail (each with its reason), so a
fix shows up as an unexpected pass to remove from the list, and a regression as a new failure.
Run `python -m tests.terminology.report` for the pass rate and every difference.
"""

from __future__ import annotations

import json
from pathlib import Path

from starlette.testclient import TestClient
from tests.terminology.txsuite import MODES, Suite, run_case

KNOWN_FAILURES = Path(__file__).parent.parent / "fixtures" / "terminology" / "tx-ecosystem-known-failures.json"


def run_suite(client: TestClient) -> tuple[int, dict[str, str]]:
    def post(path: str, body: dict, headers: dict[str, str]) -> tuple[int, object]:
        response = client.post(path, json=body, headers={"Content-Type": "application/fhir+json", **headers})
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, None

    failures: dict[str, str] = {}
    total = 0
    for case in Suite(MODES).cases():
        total += 1
        difference = run_case(case, post, MODES)
        if difference:
            failures[case.key] = difference
    return total, failures


def test_known_failures_are_exactly_the_failures(client: TestClient) -> None:
    total, failures = run_suite(client)
    known = json.loads(KNOWN_FAILURES.read_text())
    passed = total - len(failures)
    print(f"tx-ecosystem: {passed}/{total} passed ({100 * passed / total:.1f}%)")
    unexpected = {key: failures[key] for key in sorted(set(failures) - set(known))}
    fixed = sorted(set(known) - set(failures))
    assert not unexpected, f"new failures: {json.dumps(unexpected, indent=1)}"
    assert not fixed, f"now passing, remove from the known failures: {fixed}"
