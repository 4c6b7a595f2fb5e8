"""Every R4 spec example can be stored with its id (PUT) and read back unchanged apart from meta.

Examples that break the spec's own rules are listed, with the reason, in
`tests/fixtures/known-invalid-examples.json`; those must be rejected with an OperationOutcome.
"""

from __future__ import annotations

import json
from pathlib import Path

from starlette.testclient import TestClient

from ficus import fhirjson

EXAMPLES = Path(__file__).parents[1] / "fixtures" / "fhir-r4-examples"
KNOWN_INVALID = json.loads((Path(__file__).parents[1] / "fixtures" / "known-invalid-examples.json").read_text())


def _without_meta(resource: dict) -> dict:
    return {k: v for k, v in resource.items() if k != "meta"}


def test_every_spec_example_round_trips(client: TestClient) -> None:
    files = sorted(EXAMPLES.glob("*.json"))
    assert len(files) == 714
    mismatched, unexpected_rejections, accepted_invalid = [], [], []
    for path in files:
        raw = path.read_bytes()
        example = fhirjson.decode(raw)
        url = f"{example['resourceType']}/{example['id']}"
        response = client.put(url, content=raw, headers={"Content-Type": "application/fhir+json"})
        if path.name in KNOWN_INVALID:
            if response.status_code != 400 or response.json()["resourceType"] != "OperationOutcome":
                accepted_invalid.append(path.name)
            continue
        if response.status_code not in (200, 201):
            unexpected_rejections.append((path.name, response.text[:300]))
            continue
        stored = fhirjson.decode(client.get(url).content)
        if _without_meta(stored) != _without_meta(example):
            mismatched.append(path.name)
    assert unexpected_rejections == []
    assert accepted_invalid == []
    assert mismatched == []
