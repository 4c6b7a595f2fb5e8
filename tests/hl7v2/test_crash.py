"""Killing the listener while messages stream in loses and duplicates nothing.

A real `ficus hl7 listen` process receives ADT messages from several connections; halfway it
is killed with SIGKILL and started again. Each sender, like a real one, resends the message it
had no ACK for and goes on. Afterwards every message is stored exactly once and mapped, every
Encounter, Provenance and Patient exists once, and each patient holds its last message's name
(messages about one patient were applied in order, across the crash). The message count is
`FICUS_TEST_HL7_CRASH_MESSAGES` (10,000 is measured in docs/performance.md).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from starlette.testclient import TestClient

from ficus.hl7v2.store import MessageStore
from ficus.store.database import open_database

from .mllp_client import END, START, acknowledgement, read_ack

MESSAGES = int(os.environ.get("FICUS_TEST_HL7_CRASH_MESSAGES", "300"))
CONNECTIONS = 6
PER_PATIENT = 5
FICUS = Path(sys.executable).parent / "ficus"


def message(number: int) -> tuple[int, str]:
    """Message `number`: an A08 about patient number // PER_PATIENT with its own visit, sent by
    that patient's sender; the family name says which message the patient last got."""
    patient = number // PER_PATIENT
    lane = patient % CONNECTIONS
    text = (
        f"MSH|^~\\&|REG{lane}|HOSP|FICUS|FICUS|20240101120000+0100||ADT^A08^ADT_A01|K{number}|P|2.5.1\r"
        f"EVN|A08|20240101120000+0100\r"
        f"PID|1||P{patient}^^^HOSP^MR||Family{number}^Ann||19800101|F\r"
        f"PV1|1|I|WARD^1^A||||||||||||||||V{number}^^^HOSP^VN"
    )
    return lane, text


class Sender(threading.Thread):
    """One sending system: its messages in order on one connection, each resent until it is
    acknowledged (reconnecting while the listener is down)."""

    def __init__(self, port: int, messages: list[tuple[int, str]]) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.messages = messages
        self.acked: list[int] = []
        self.resent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        deadline = time.monotonic() + 600
        position = 0
        try:
            while position < len(self.messages):
                assert time.monotonic() < deadline, "the listener did not come back"
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=30) as sock:
                        while position < len(self.messages):
                            number, text = self.messages[position]
                            sock.sendall(START + text.encode() + END)
                            code, control_id, errors = acknowledgement(read_ack(sock).decode())
                            assert (code, control_id) == ("AA", f"K{number}"), errors
                            self.acked.append(number)
                            position += 1
                except OSError:  # the listener is gone: resend the unacknowledged message
                    self.resent += 1
                    time.sleep(0.05)
        except BaseException as error:  # noqa: BLE001 - reported by the test
            self.error = error


def start_listener(database_url: str, port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [str(FICUS), "hl7", "listen", "--port", str(port), "--database-url", database_url, "--lease-seconds", "4"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            assert process.poll() is None and time.monotonic() < deadline, "the listener did not start"
            time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def all_of(client: TestClient, query: str) -> list[dict]:
    resources, url = [], query
    while url:
        page = client.get(url).json()
        resources += [entry["resource"] for entry in page.get("entry", [])]
        url = next((link["url"] for link in page.get("link", []) if link["relation"] == "next"), "")
    return resources


def test_a_killed_listener_loses_and_duplicates_no_message(database_url: str, client: TestClient) -> None:
    port = free_port()
    messages = [message(number) for number in range(MESSAGES)]
    senders = [Sender(port, [(n, text) for n, (lane, text) in enumerate(messages) if lane == c]) for c in range(CONNECTIONS)]
    process = start_listener(database_url, port)
    try:
        for sender in senders:
            sender.start()
        while sum(len(sender.acked) for sender in senders) < MESSAGES // 2:
            assert process.poll() is None and all(s.is_alive() or s.error is None for s in senders)
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        acked_before_kill = {number for sender in senders for number in sender.acked}
        process = start_listener(database_url, port)
        for sender in senders:
            sender.join(600)
            assert sender.error is None, sender.error
        store = MessageStore(open_database(database_url))
        try:
            deadline = time.monotonic() + 120 + MESSAGES * 0.2  # mapping is slower than receiving
            while store.counts().get("received", 0) and time.monotonic() < deadline:
                time.sleep(0.1)
            stored = list(store.messages(limit=MESSAGES * 2))
        finally:
            store.database.close()
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)

    assert MESSAGES // 2 <= len(acked_before_kill) < MESSAGES
    assert sum(sender.resent for sender in senders) >= 1  # someone had to resend
    assert sorted(m.control_id for m in stored) == sorted(f"K{n}" for n in range(MESSAGES))  # each exactly once
    assert {m.status for m in stored} == {"mapped"}
    assert all(m.resources for m in stored)

    encounters = all_of(client, "Encounter?_count=1000&_elements=identifier")
    assert sorted(e["identifier"][0]["value"] for e in encounters) == sorted(f"V{n}" for n in range(MESSAGES))
    assert client.get("Provenance", params={"_summary": "count"}).json()["total"] == MESSAGES
    patients = all_of(client, "Patient?_count=1000&_elements=identifier,name")
    last = {f"P{n // PER_PATIENT}": f"Family{n}" for n in range(MESSAGES)}
    assert {p["identifier"][0]["value"]: p["name"][0]["family"] for p in patients} == last
    assert len(patients) == len(last)
    for m in stored[:: max(1, MESSAGES // 25)]:  # what the message store says it produced is there
        for location in m.resources:
            assert client.get(location).status_code == 200, location
