"""The listener on a real socket: ACK once stored, background mapping, duplicates, replay,
recovery, the dead letter, bad frames and bad messages."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from ficus.fhirtime import now_micros
from ficus.hl7v2 import store as s
from ficus.hl7v2.listener import listener_from_environment
from ficus.hl7v2.mapping import messages as message_maps
from ficus.hl7v2.message import V2Message

from .mllp_client import END, START, acknowledgement, read_ack, send_all, send_raw
from .support import RunningListener, Stack, sample

ADT = (
    "MSH|^~\\&|REG|HOSP|FICUS|FICUS|20240101120000+0100||ADT^A08^ADT_A01|{control}|P|2.5.1\r"
    "EVN|A08|20240101120000+0100\r"
    "PID|1||{mrn}^^^HOSP^MR||{family}^Ann||{birth}|F\r"
    "PV1|1|I|WARD^1^A||||||||||||||||V{mrn}^^^HOSP^VN|||||||||||||||||||||||||20240101100000+0100"
)


def adt(control: str, mrn: str = "1001", family: str = "Smith", birth: str = "19800101") -> str:
    return ADT.format(control=control, mrn=mrn, family=family, birth=birth)


def unversioned(location: str) -> str:
    return location.split("/_history/")[0]


def history_total(client: TestClient) -> int:
    return client.get("_history", params={"_count": "0"}).json()["total"]


def test_a_resent_message_is_acknowledged_but_not_applied_twice(stack: Stack, listener: RunningListener,
                                                                 client: TestClient) -> None:
    first = send_all(listener.port, [adt("C1")], connections=1)[0]
    listener.settle()
    versions = history_total(client)
    again = send_all(listener.port, [adt("C1")], connections=1)[0]
    assert acknowledgement(first)[:2] == ("AA", "C1")
    code, control_id, errors = acknowledgement(again)
    assert (code, control_id) == ("AA", "C1")
    assert any("Duplicate of message #1" in error for error in errors)
    listener.settle()
    assert history_total(client) == versions
    assert [m.status for m in stack.store.messages()] == ["mapped"]


def test_a_resend_that_only_restamps_msh7_is_a_duplicate(stack: Stack, listener: RunningListener) -> None:
    send_all(listener.port, [adt("C1"), adt("C1").replace("20240101120000+0100||ADT", "20240101120500+0100||ADT")])
    assert len(stack.store.messages()) == 1


def test_a_reused_control_id_with_new_content_is_a_new_message(stack: Stack, listener: RunningListener,
                                                                client: TestClient) -> None:
    send_all(listener.port, [adt("C1"), adt("C1", family="Jones")], connections=1)
    listener.settle()
    assert [m.status for m in stack.store.messages()] == ["mapped", "mapped"]
    patient = client.get("Patient", params={"identifier": "urn:ficus:hl7v2:HOSP|1001"}).json()["entry"][0]["resource"]
    assert patient["name"][0]["family"] == "Jones"
    assert patient["meta"]["versionId"] == "2"


def test_the_same_facts_twice_write_no_new_versions(stack: Stack, listener: RunningListener, client: TestClient) -> None:
    send_all(listener.port, [adt("C1")], connections=1)
    listener.settle()
    versions = history_total(client)
    ack = send_all(listener.port, [adt("C2")], connections=1)[0]
    assert acknowledgement(ack)[0] == "AA"
    listener.settle()
    assert history_total(client) == versions + 1  # only the new message's Provenance


def test_replay_changes_nothing(stack: Stack, listener: RunningListener, client: TestClient) -> None:
    names = ["ADT-A01-01.hl7", "LRI_2.0-NG_CBC_Typ_Message.hl7", "VXU.hl7", "SIU-S12-01.hl7", "ADT-A40-02.hl7",
             "ORU-R01-RMGEAD.hl7", "ADT04-23.hl7"]
    send_all(listener.port, [sample(name) for name in names])
    listener.settle()
    before = history_total(client)
    produced = {m.id: m.resources for m in stack.store.messages()}
    for message_id, resources in produced.items():
        outcome = stack.mapper.replay(message_id)
        assert outcome.status == "replayed"
        assert "(0 written)" in outcome.text
        assert sorted(map(unversioned, outcome.resources)) == sorted(map(unversioned, resources))
    assert history_total(client) == before
    assert {m.status for m in stack.store.messages()} == {"replayed"}


def test_replay_after_a_mapping_is_added_maps_a_stored_message(stack: Stack, listener: RunningListener,
                                                               client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    ack = send_all(listener.port, [sample("ADT-A09-01.hl7")], connections=1)[0]
    assert acknowledgement(ack)[0] == "AA"
    listener.settle()
    [stored] = stack.store.messages()
    assert stored.status == "unsupported" and "ADT^A09 is stored but not mapped" in (stored.error or "")
    monkeypatch.setitem(message_maps.MESSAGE_MAPS, "ADT^A09", message_maps.MessageMap("ADT^A09", message_maps.admission))
    outcome = stack.mapper.replay(stored.id)
    assert outcome.status == "replayed"
    assert client.get("Patient", params={"identifier": "urn:ficus:hl7v2:ADT1|PATID1234"}).json()["total"] == 1


def test_a_message_that_cannot_be_mapped_goes_to_the_dead_letter_and_a_resend_is_answered_ae(
        stack: Stack, listener: RunningListener) -> None:
    bad_birth = adt("C9", birth="1980-01-01")
    no_patient = "MSH|^~\\&|REG|HOSP|||20240101||ADT^A01|C10|P|2.5\rEVN|A01|20240101"
    stored = send_all(listener.port, [bad_birth, no_patient], connections=1)
    assert [acknowledgement(ack)[0] for ack in stored] == ["AA", "AA"]  # acknowledged once stored
    listener.settle()
    acks = send_all(listener.port, [bad_birth, no_patient], connections=1)
    code, control_id, errors = acknowledgement(acks[0])
    assert (code, control_id) == ("AE", "C9")
    assert "PID-7" in errors[0] and "'1980-01-01' is not a v2 date/time" in errors[0]
    assert "|207^Application internal error^HL70357|E|" in acks[0]
    assert acknowledgement(acks[1])[0] == "AE" and "has no PID segment" in acknowledgement(acks[1])[2][0]
    failed = stack.store.messages(status="failed")
    assert [m.control_id for m in failed] == ["C9", "C10"]
    assert failed[0].raw == bad_birth and "PID-7" in (failed[0].error or "")
    assert len(stack.store.messages()) == 2


@pytest.mark.parametrize(
    ("payload", "code", "reason"),
    [
        (b"MSH|^~\\&|A|B|||20240101||ADT^A01|X1|P|2.5" + END, "AR", "no start block"),
        (START + b"hello" + END, "AR", "does not start with an MSH segment"),
        (START + b"MSH|^~\\&|A|B|||20240101||ADT^A01||P|2.5\rPID|1" + END, "AR", "MSH-10"),
        (START + b"MSH|^~\\&|A|B|||20240101|||X2|P|2.5" + END, "AR", "MSH-9"),
        (START + b"MSH|^~\\&|A|B|||20240101||ADT^A01|X3|P|2.5\rPID|1||1||M\xe9ller" + END, "AR", "not valid utf-8"),
        (START + b"MSH|^~\\&|A|B|||20240101||ADT^A01|X4|P|2.5\rpid|1" + END, "AR", "invalid name"),
    ],
)
def test_malformed_frames_and_messages_are_rejected_with_err(sqlite_listener: RunningListener,
                                                            payload: bytes, code: str, reason: str) -> None:
    ack = send_raw(sqlite_listener.port, payload).decode("utf-8")
    got, _, errors = acknowledgement(ack)
    assert got == code
    assert any(reason in error for error in errors), errors
    assert sqlite_listener.stack.store.messages()[0].status == "rejected"
    assert acknowledgement(send_all(sqlite_listener.port, [adt("OK")], connections=1)[0])[0] == "AA"


def test_rejected_frames_are_kept(stack: Stack, listener: RunningListener) -> None:
    acks = [send_raw(listener.port, START + b"hello" + END), send_raw(listener.port, b"no start" + END)]
    assert [acknowledgement(ack.decode())[0] for ack in acks] == ["AR", "AR"]
    rejected = stack.store.messages(status="rejected")
    assert [m.raw for m in rejected] == ["hello", "no start"]
    assert "does not start with an MSH segment" in (rejected[0].error or "")


def test_a_rejected_message_is_answered_with_its_control_id(sqlite_listener: RunningListener) -> None:
    ack = send_raw(sqlite_listener.port, START + b"MSH|^~\\&|A|B|||20240101||ADT|X5|P|2.5" + END).decode()
    assert acknowledgement(ack)[:2] == ("AR", "X5")


def test_the_encoding_declared_in_msh18_is_used(stack: Stack, listener: RunningListener, client: TestClient) -> None:
    text = adt("L1", family="Müller").replace("|P|2.5.1", "|P|2.5.1||||||8859/1")
    ack = send_raw(listener.port, START + text.encode("latin-1") + END)
    assert acknowledgement(ack.decode("latin-1"))[0] == "AA"
    listener.settle()
    patient = client.get("Patient", params={"identifier": "urn:ficus:hl7v2:HOSP|1001"}).json()["entry"][0]["resource"]
    assert patient["name"][0]["family"] == "Müller"


def test_frames_split_across_packets_and_separated_by_newlines_are_read(sqlite_listener: RunningListener) -> None:
    one, two = adt("S1").encode(), adt("S2", mrn="2002").encode()
    with socket.create_connection(("127.0.0.1", sqlite_listener.port), timeout=30) as sock:
        sock.sendall(START + one[:50])
        time.sleep(0.05)
        sock.sendall(one[50:] + END + b"\n")
        assert acknowledgement(read_ack(sock).decode())[:2] == ("AA", "S1")
        sock.sendall(START + two + END)
        assert acknowledgement(read_ack(sock).decode())[:2] == ("AA", "S2")


def test_an_oversized_frame_is_refused_and_the_connection_goes_on(tmp_path: Path) -> None:
    stack = Stack(f"sqlite:///{tmp_path / 'ficus.db'}")
    running = RunningListener(stack, max_message_bytes=2048)
    try:
        big = adt("BIG") + "\rNTE|1||" + "x" * 10_000
        with socket.create_connection(("127.0.0.1", running.port), timeout=30) as sock:
            sock.sendall(START + big.encode() + END)
            code, control_id, errors = acknowledgement(read_ack(sock).decode())
            assert (code, control_id) == ("AR", "BIG") and "larger than the 2048 bytes" in errors[0]
            sock.sendall(START + adt("SMALL").encode() + END)
            assert acknowledgement(read_ack(sock).decode())[:2] == ("AA", "SMALL")
    finally:
        running.stop()
        stack.database.close()


def test_a_peer_that_hangs_up_mid_frame_does_not_disturb_the_listener(sqlite_listener: RunningListener) -> None:
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", sqlite_listener.port), timeout=30) as sock:
            sock.sendall(START + adt("CUT").encode()[:40])
    assert acknowledgement(send_all(sqlite_listener.port, [adt("AFTER")], connections=1)[0])[0] == "AA"


def test_many_connections_updating_the_same_patients_create_each_once(stack: Stack, listener: RunningListener,
                                                                     client: TestClient) -> None:
    messages = [adt(f"M{n}", mrn=str(3000 + n % 5), family=f"Family{n % 5}") for n in range(40)]
    acks = send_all(listener.port, [m.replace("|REG|", f"|REG{n % 8}|") for n, m in enumerate(messages)], connections=8)
    assert [acknowledgement(ack)[0] for ack in acks] == ["AA"] * 40
    listener.settle()
    assert {m.status for m in stack.store.messages()} == {"mapped"}
    for n in range(5):
        found = client.get("Patient", params={"identifier": f"urn:ficus:hl7v2:HOSP|{3000 + n}"}).json()
        assert found["total"] == 1
        encounters = client.get("Encounter", params={"identifier": f"urn:ficus:hl7v2:HOSP|V{3000 + n}"}).json()
        assert encounters["total"] == 1


def stored_unmapped(stack: Stack, control: str, lease_until: int) -> int:
    """A message as a mapper that crashed (holding it until `lease_until`) left it."""
    text = adt(control)
    message = V2Message(text)
    envelope = s.Envelope(message.header.sender, control, message.digest, message.header.message_type, "2.5.1",
                          text, "HOSP|1001")
    receipt = stack.store.record(envelope)
    with stack.database.session(write=True) as tx:
        tx.execute("UPDATE hl7_message SET lease_until = ? WHERE id = ?", (lease_until, receipt.id))
    return receipt.id


def test_messages_left_unfinished_are_mapped_when_the_listener_starts(stack: Stack, client: TestClient) -> None:
    message_id = stored_unmapped(stack, "R1", lease_until=1)
    running = RunningListener(stack)
    running.settle()
    running.stop()
    assert stack.store.get(message_id).status == "mapped"  # type: ignore[union-attr]
    assert client.get("Patient", params={"identifier": "urn:ficus:hl7v2:HOSP|1001"}).json()["total"] == 1


def test_a_message_leased_by_a_crashed_mapper_waits_for_the_lease_and_holds_back_its_patient(
        stack: Stack, listener: RunningListener, client: TestClient) -> None:
    held = stored_unmapped(stack, "R2", lease_until=now_micros() + 600_000_000)
    later = send_all(listener.port, [adt("R3", family="Later")], connections=1)[0]
    other = send_all(listener.port, [adt("R4", mrn="4004")], connections=1)[0]
    assert [acknowledgement(ack)[0] for ack in (later, other)] == ["AA", "AA"]
    deadline = time.monotonic() + 30
    while stack.store.messages(status="mapped") == [] and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)  # time for R3 to be mapped, were it not held back
    statuses = {m.control_id: m.status for m in stack.store.messages()}
    assert statuses == {"R2": "received", "R3": "received", "R4": "mapped"}  # R3 waits for R2 (same patient)
    with stack.database.session(write=True) as tx:  # the lease runs out
        tx.execute("UPDATE hl7_message SET lease_until = ? WHERE id = ?", (now_micros() - 1, held))
    listener.settle()
    assert stack.store.get(held).status == "mapped"  # type: ignore[union-attr]
    patient = client.get("Patient", params={"identifier": "urn:ficus:hl7v2:HOSP|1001"}).json()["entry"][0]["resource"]
    assert patient["name"][0]["family"] == "Later"  # R3 applied after R2


def test_the_same_message_on_several_connections_at_once_is_applied_once(stack: Stack, listener: RunningListener,
                                                                          client: TestClient) -> None:
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(send_raw(listener.port, START + adt("SAME").encode() + END)
                                                              .decode())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(acknowledgement(ack)[:2] for ack in results) == [("AA", "SAME")] * 4
    listener.settle()
    assert len(stack.store.messages()) == 1
    patient = client.get("Patient", params={"identifier": "urn:ficus:hl7v2:HOSP|1001"}).json()["entry"][0]["resource"]
    assert patient["meta"]["versionId"] == "1"


def test_the_server_starts_a_listener_only_when_configured(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FICUS_MLLP_PORT", raising=False)
    assert listener_from_environment(stack.interactions, stack.database) is None
    monkeypatch.setenv("FICUS_MLLP_PORT", "0")
    monkeypatch.setenv("FICUS_HL7_TIMEZONE", "Europe/Berlin")
    configured = listener_from_environment(stack.interactions, stack.database)
    assert configured is not None and configured.mapper.options.timezone == "Europe/Berlin"


def test_no_ack_is_sent_for_a_message_that_could_not_be_stored_and_the_resend_is_stored_once(
        sqlite_listener: RunningListener) -> None:
    store = sqlite_listener.stack.store
    with store.database.session(write=True) as tx:  # the store becomes unwritable
        tx.execute("ALTER TABLE hl7_message RENAME TO hl7_message_away")
    with pytest.raises(ConnectionError):
        send_raw(sqlite_listener.port, START + adt("LOST").encode() + END)
    with store.database.session(write=True) as tx:
        tx.execute("ALTER TABLE hl7_message_away RENAME TO hl7_message")
    ack = send_raw(sqlite_listener.port, START + adt("LOST").encode() + END).decode()
    assert acknowledgement(ack)[:2] == ("AA", "LOST")
    sqlite_listener.settle()
    assert [(m.control_id, m.status) for m in store.messages()] == [("LOST", "mapped")]


def test_a_database_failure_while_mapping_is_retried_not_dead_lettered(sqlite_listener: RunningListener) -> None:
    store = sqlite_listener.stack.store
    with store.database.session(write=True) as tx:  # FHIR writes fail (sqlite3.OperationalError)
        tx.execute("ALTER TABLE resource_version RENAME TO resource_version_away")
    try:
        ack = send_raw(sqlite_listener.port, START + adt("RETRY").encode() + END).decode()
        assert acknowledgement(ack)[0] == "AA"
        deadline = time.monotonic() + 30
        while store.messages()[0].attempts < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert store.messages()[0].status == "received"
    finally:
        with store.database.session(write=True) as tx:
            tx.execute("ALTER TABLE resource_version_away RENAME TO resource_version")
    sqlite_listener.settle()
    assert store.messages()[0].status == "mapped"
