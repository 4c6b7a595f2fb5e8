"""`ficus serve` with FICUS_MLLP_PORT also listens for HL7 v2 over MLLP, into the same database."""

from __future__ import annotations

import time

import httpx
import pytest

from conftest import ServerProcess, free_port
from tests.hl7v2.mllp_client import END, START, acknowledgement, send_raw

pytestmark = pytest.mark.e2e

ADT = (
    "MSH|^~\\&|REG|HOSP|FICUS|FICUS|20240101120000+0100||ADT^A04^ADT_A01|SERVE-1|P|2.5.1\r"
    "EVN|A04|20240101120000+0100\r"
    "PID|1||77001^^^HOSP^MR||Serve^Ann||19800101|F\r"
)


def test_serve_starts_the_mllp_listener(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    mllp_port = free_port()
    monkeypatch.setenv("FICUS_MLLP_PORT", str(mllp_port))
    server = ServerProcess(database_url)
    try:
        ack = send_raw(mllp_port, START + ADT.encode() + END).decode()
        code, control, _ = acknowledgement(ack)
        assert (code, control) == ("AA", "SERVE-1")  # stored; mapped to FHIR in the background
        deadline = time.monotonic() + 30
        while (found := httpx.get(f"{server.base_url}/Patient", params={"family": "Serve"}).json())["total"] == 0:
            assert time.monotonic() < deadline, "the message was not mapped"
            time.sleep(0.05)
        assert found["total"] == 1
        assert found["entry"][0]["resource"]["birthDate"] == "1980-01-01"
    finally:
        server.stop()
