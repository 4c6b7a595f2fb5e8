"""`ficus hl7 convert|send|status|replay` (the sub-app the `ficus` command mounts as `hl7`)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from ficus.hl7v2.cli import hl7_app

from .support import SAMPLES, RunningListener, Stack

runner = CliRunner()


def test_convert_prints_the_bundle_and_stores_nothing() -> None:
    result = runner.invoke(hl7_app, ["convert", str(SAMPLES / "VXU.hl7")])
    assert result.exit_code == 0, result.output
    bundle = json.loads(result.stdout)
    assert bundle["type"] == "transaction"
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds.count("Immunization") == 3 and kinds[-1] == "Provenance"


def test_convert_says_why_a_message_is_not_mapped(tmp_path: Path) -> None:
    result = runner.invoke(hl7_app, ["convert", str(SAMPLES / "MDM-T02-01.hl7")])
    assert result.exit_code == 2 and "MDM^T02 is stored but not mapped" in result.output
    broken = tmp_path / "broken.hl7"
    broken.write_text("MSH|^~\\&|A|B|||1||ADT^A01|1|P|2.5\rPID|1||X^^^H^MR||Doe||19x")
    result = runner.invoke(hl7_app, ["convert", str(broken)])
    assert result.exit_code == 1 and "PID-7" in result.output


def test_send_prints_each_ack(listener: RunningListener) -> None:
    result = runner.invoke(hl7_app, ["send", str(SAMPLES / "ADT-A01-02.hl7"), str(SAMPLES / "ADT-A09-02.hl7"),
                                     "--port", str(listener.port)])
    assert result.exit_code == 0, result.output
    assert result.output.count("MSA|AA|MSG00001") == 1 and "MSA|AA|MSG00009" in result.output


def test_status_lists_and_replay_replays(database_url: str, stack: Stack, listener: RunningListener) -> None:
    runner.invoke(hl7_app, ["send", str(SAMPLES / "ADT-A01-02.hl7"), str(SAMPLES / "MDM-T02-01.hl7"),
                            "--port", str(listener.port)])
    listener.settle()
    listed = runner.invoke(hl7_app, ["status", "--database-url", database_url])
    assert listed.exit_code == 0, listed.output
    assert "mapped: 1" in listed.output and "unsupported: 1" in listed.output
    shown = runner.invoke(hl7_app, ["status", "1", "--database-url", database_url])
    assert '"status": "mapped"' in shown.output and "PID|1|" in shown.output
    replayed = runner.invoke(hl7_app, ["replay", "1", "--database-url", database_url])
    assert replayed.exit_code == 0, replayed.output
    assert "#1: replayed" in replayed.output and "Replayed 1 of 1" in replayed.output
    unsupported = runner.invoke(hl7_app, ["replay", "--status", "unsupported", "--database-url", database_url])
    assert unsupported.exit_code == 1 and "Replayed 0 of 1" in unsupported.output


def test_map_maps_what_a_listener_without_mappers_stored(database_url: str, stack: Stack) -> None:
    running = RunningListener(stack, mappers=0)
    try:
        result = runner.invoke(hl7_app, ["send", str(SAMPLES / "ADT-A01-02.hl7"), "--port", str(running.port)])
        assert result.exit_code == 0, result.output
    finally:
        running.stop()
    assert stack.store.counts() == {"received": 1}
    mapper = subprocess.Popen([str(Path(sys.executable).parent / "ficus"), "hl7", "map", "--database-url", database_url],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while stack.store.counts() != {"mapped": 1}:
            assert time.monotonic() < deadline and mapper.poll() is None, stack.store.counts()
            time.sleep(0.05)
    finally:
        mapper.send_signal(signal.SIGINT)
        mapper.wait(30)
