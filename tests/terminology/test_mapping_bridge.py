"""An accepted mapping changes what the HL7 v2 bridge produces: a lab's local OBX-3 code, seen in
stored messages, suggested, accepted for that sending facility, and from the next message on
mapped to Observation.code with the LOINC coding beside the local one (over real MLLP); a
replayed earlier message gets it too."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from tests.hl7v2.mllp_client import send_all
from tests.hl7v2.support import RunningListener, Stack
from typer.testing import CliRunner

from ficus.hl7v2.mapping.vocabulary import local_code_system
from ficus.store.database import Database
from ficus.terminology.cli import terminology_app
from ficus.terminology.loaders import loinc
from ficus.terminology.loaders.writer import Silent

runner = CliRunner()


def oru(control_id: str, facility: str, patient: str) -> str:
    return "\r".join([
        f"MSH|^~\\&|LIS|{facility}|FICUS|FICUS|20240101120000+0100||ORU^R01|{control_id}|P|2.5.1",
        f"PID|1||{patient}^^^{facility}^MR||Doe^Jane||19800101|F",
        f"OBR|1||F{control_id}^LIS|CHEM^Chemistry^L|||20240101100000+0100||||||||||||||||||F",
        "OBX|1|NM|KSER^POTASSIUM, SERUM^L||4.1|mmol/L|3.5-5.1|N|||F|||20240101100000+0100",
        "OBX|2|ST|COMM^Comment^L||haemolysed||||||F|||20240101100000+0100",
    ])


@pytest.fixture
def listener(database: Database, loinc_release: Path, database_url: str) -> Iterator[RunningListener]:
    loinc.load(database, loinc_release, Silent())
    stack = Stack(database_url)
    running = RunningListener(stack)
    yield running
    running.stop()
    stack.database.close()


def observation_codes(client: TestClient, patient: str) -> list[list[dict]]:
    bundle = client.get("Observation", params={"subject:Patient.identifier": patient, "_sort": "_id"}).json()
    return [entry["resource"]["code"]["coding"] for entry in bundle.get("entry", [])]


def test_an_accepted_mapping_adds_the_loinc_coding_to_the_next_messages_observations(
        listener: RunningListener, client: TestClient, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FICUS_DATABASE_URL", database_url)
    acks = send_all(listener.port, [oru("M1", "LAB1", "P1"), oru("M2", "LAB2", "P2")], connections=1)
    assert all("MSA|AA|" in ack for ack in acks)
    listener.settle()
    before = observation_codes(client, "P1")
    assert sorted(c["code"] for codings in before for c in codings) == ["COMM", "KSER"]

    review = tmp_path / "review.csv"
    result = runner.invoke(terminology_app, ["map", "suggest", "--from-messages", "--facility", "LAB1", "--target", "loinc",
                                             "-o", str(review)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(review.read_text())))
    source = local_code_system("LAB1", "L")
    assert {r["source_system"] for r in rows} == {source} and {r["code"] for r in rows} == {"KSER", "COMM"}
    assert next(r for r in rows if r["code"] == "KSER" and r["rank"] == "1")["unit"] == "mmol/L"
    for row in rows:
        row["accept"] = "x" if (row["code"], row["rank"]) == ("KSER", "1") else ""
    assert next(r for r in rows if r["accept"])["target_code"] == "2823-3"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    review.write_text(out.getvalue())
    result = runner.invoke(terminology_app, ["map", "accept", str(review), "--id", "lab1-loinc"])
    assert result.exit_code == 0, result.output

    acks = send_all(listener.port, [oru("M3", "LAB1", "P3"), oru("M4", "LAB2", "P4")], connections=1)
    assert all("MSA|AA|" in ack for ack in acks)
    listener.settle()
    mapped = observation_codes(client, "P3")
    potassium = next(codings for codings in mapped if codings[0]["code"] == "KSER")
    assert potassium == [
        {"code": "KSER", "display": "POTASSIUM, SERUM"},
        {"system": "http://loinc.org", "code": "2823-3", "display": "Potassium [Moles/volume] in Serum or Plasma"},
    ]
    assert next(codings for codings in mapped if codings[0]["code"] == "COMM") == [{"code": "COMM", "display": "Comment"}]
    # the map is LAB1's: the same code from LAB2 means whatever LAB2 means by it
    assert [len(codings) for codings in observation_codes(client, "P4")] == [1, 1]

    # replaying LAB1's earlier message brings what it produced up to date
    first = next(m for m in listener.stack.store.messages() if m.control_id == "M1")
    assert listener.stack.mapper.replay(first.id).status == "replayed"
    assert any(c.get("code") == "2823-3" for codings in observation_codes(client, "P1") for c in codings)
