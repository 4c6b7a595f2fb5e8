"""`ficus hl7 destinations add|list|remove` and `ficus hl7 outbound status|retry`."""

from __future__ import annotations

from typer.testing import CliRunner

from ficus.fhirtime import now_micros
from ficus.hl7v2.cli import hl7_app
from ficus.hl7v2.outbound.store import FAILED, PENDING, SENT, OutboundStore

runner = CliRunner()


def run(database_url: str, *args: str) -> tuple[int, str]:
    result = runner.invoke(hl7_app, [*args, "--database-url", database_url])
    return result.exit_code, result.output


def test_destinations_are_added_listed_and_removed(database_url: str, store: OutboundStore) -> None:
    code, output = run(database_url, "destinations", "add", "lis", "10.1.2.3:2575", "--kinds", "oru",
                       "--receiving-application", "LIS", "--receiving-facility", "LAB")
    assert code == 0 and "Added lis: ORU to 10.1.2.3:2575" in output
    added = store.destination("lis")
    assert (added.host, added.port, added.kinds, added.receiving_application, added.sending_application) == (
        "10.1.2.3", 2575, ("oru",), "LIS", "FICUS")
    assert run(database_url, "destinations", "add", "lis", "10.1.2.3:2575")[0] == 1
    code, output = run(database_url, "destinations", "list")
    assert code == 0 and "lis" in output and "10.1.2.3:2575" in output
    code, output = run(database_url, "destinations", "remove", "lis")
    assert code == 0 and "Removed lis" in output
    assert store.destinations() == []
    assert run(database_url, "destinations", "remove", "lis")[0] == 1


def test_bad_destination_options_are_refused(database_url: str, store: OutboundStore) -> None:
    assert run(database_url, "destinations", "add", "x", "no-port")[0] == 2
    assert run(database_url, "destinations", "add", "x", "host:99999")[0] == 2
    code, output = run(database_url, "destinations", "add", "x", "host:2575", "--kinds", "adt,siu")
    assert code == 2 and "kinds" in output
    assert store.destinations() == []


def test_outbound_status_shows_messages_and_retry_queues_failed_ones(database_url: str, store: OutboundStore) -> None:
    store.add_destination("lis", "127.0.0.1", 1, ("adt",), "FICUS", "HOSP", "LIS", "LAB")
    with store.database.session(write=True) as tx:
        store.enqueue(tx, [("lis", "p1", 7, "Patient/p1/_history/1", "adt", "ADT^A04^ADT_A01", "7",
                            "MSH|^~\\&|FICUS\rPID|1||1001", FAILED, 1, 0, 0, 0, "AR: unknown patient")])
    code, output = run(database_url, "outbound", "status")
    assert code == 0 and "lis: pending: 0  sent: 0  failed: 1" in output and "ADT^A04^ADT_A01" in output
    message_id = store.messages()[0].id
    code, output = run(database_url, "outbound", "status", str(message_id))
    assert code == 0 and "AR: unknown patient" in output and "PID|1||1001" in output
    assert run(database_url, "outbound", "status", "--status", "lost")[0] == 2
    code, output = run(database_url, "outbound", "retry", "--destination", "lis")
    assert code == 0 and "Queued 1 messages again" in output
    assert store.messages()[0].status == "pending"


def test_purge_deletes_old_finished_messages_and_keeps_pending_ones(database_url: str, store: OutboundStore) -> None:
    store.add_destination("lis", "127.0.0.1", 1, ("adt",), "FICUS", "HOSP", "LIS", "LAB")
    now = now_micros()
    rows = [("lis", "p1", seq, f"Patient/p1/_history/{seq}", "adt", "ADT^A08^ADT_A01", str(seq), "MSH|^~\\&|FICUS",
             status, 1, 0, 0, updated, None) for seq, status, updated in ((1, SENT, 0), (2, FAILED, 0), (3, PENDING, 0), (4, SENT, now))]
    with store.database.session(write=True) as tx:
        store.enqueue(tx, rows)
    code, output = run(database_url, "outbound", "purge", "--days", "1")
    assert code == 0 and "Deleted 1 messages" in output
    assert sorted(m.status for m in store.messages()) == [FAILED, PENDING, SENT]  # the recent one stays
    code, output = run(database_url, "outbound", "purge", "--days", "1", "--failed")
    assert code == 0 and "Deleted 1 messages" in output
    assert [m.status for m in store.messages()] == [PENDING, SENT]
