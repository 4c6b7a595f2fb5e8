"""FHIR writes over HTTP reach a real MLLP consumer as ADT and ORU: in order per patient, once
each, through a consumer outage, with the AE (retry) and AR (dead letter) rules."""

from __future__ import annotations

import time

from starlette.testclient import TestClient

from ficus.hl7v2.outbound.store import OutboundStore

from .consumer import Consumer, control_id
from .support import create, field, settle, update, wait_until

MRN_SYSTEM = "urn:ficus:hl7v2:HOSP"


def patient(family: str, mrn: str) -> dict:
    return {"resourceType": "Patient", "identifier": [{"system": MRN_SYSTEM, "value": mrn}],
            "name": [{"family": family, "given": ["Ann"]}], "birthDate": "1980-01-02", "gender": "female"}


def family(message: str) -> str:
    return field(message, "PID", 5).split("^")[0]


def trigger(message: str) -> str:
    return field(message, "MSH", 9)


def test_every_message_reaches_a_consumer_that_was_down_in_order_and_once(
        fhir: TestClient, consumer: Consumer, store: OutboundStore) -> None:
    consumer.stop()
    ann = create(fhir, patient("Ann-0", "1001"))
    bob = create(fhir, patient("Bob-0", "1002"))
    for n in range(1, 4):
        ann = update(fhir, {**ann, "name": [{"family": f"Ann-{n}"}]})
        bob = update(fhir, {**bob, "name": [{"family": f"Bob-{n}"}]})
    create(fhir, {"resourceType": "Observation", "status": "final", "subject": {"reference": f"Patient/{ann['id']}"},
                  "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                  "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}})
    # all queued, and it kept trying while the consumer was down
    wait_until(lambda: store.counts() == {"lis": {"pending": 9}} and store.destination("lis").failures >= 3)
    assert "Cannot connect" in (store.destination("lis").last_error or "")

    consumer.start()  # back, on the same port
    consumer.wait_for(9)
    received = settle(consumer)
    assert len(received) == 9
    ids = [int(control_id(m)) for m in received]
    assert ids == sorted(set(ids))  # each once, in the order the changes were committed
    assert [family(m) for m in received if "1001" in field(m, "PID", 3)] == ["Ann-0", "Ann-1", "Ann-2", "Ann-3", "Ann-3"]
    assert [family(m) for m in received if "1002" in field(m, "PID", 3)] == ["Bob-0", "Bob-1", "Bob-2", "Bob-3"]
    assert [trigger(m) for m in received][-1] == "ORU^R01^ORU_R01"
    assert store.counts() == {"lis": {"sent": 9}}
    assert store.destination("lis").failures == 0


def test_an_error_ack_is_retried_and_holds_back_only_that_patient(
        database_url: str, store: OutboundStore, fast_outbound: None) -> None:
    answers: dict[str, int] = {}

    def answer(message: str) -> str:
        key = control_id(message)
        answers[key] = answers.get(key, 0) + 1
        return "AE" if family(message) == "Flaky" and trigger(message).startswith("ADT^A04") and answers[key] <= 2 else "AA"

    consumer = Consumer(answer=answer).start()
    try:
        store.add_destination("lis", "127.0.0.1", consumer.port, ("adt",), "FICUS", "HOSP", "LIS", "LAB")
        from ficus.app import create_app
        from ficus.config import Settings

        app = create_app(Settings(database_url=database_url, base_url="http://testserver/fhir", auth="off"))
        with TestClient(app, base_url="http://testserver/fhir/") as client:
            flaky = create(client, patient("Flaky", "2001"))
            create(client, patient("Steady", "2002"))
            update(client, {**flaky, "birthDate": "1980-01-03"})
            consumer.wait_for(5)
            received = settle(consumer)
    finally:
        consumer.shutdown()
    flaky_a04 = [i for i, m in enumerate(received) if family(m) == "Flaky" and trigger(m).startswith("ADT^A04")]
    flaky_a08 = [i for i, m in enumerate(received) if family(m) == "Flaky" and trigger(m).startswith("ADT^A08")]
    steady = [i for i, m in enumerate(received) if family(m) == "Steady"]
    assert len(flaky_a04) == 3 and len(flaky_a08) == 1 and len(steady) == 1
    assert flaky_a08[0] > flaky_a04[-1]  # the later message waited for the accepted retry
    assert steady[0] < flaky_a04[-1]  # another patient's message did not wait
    first = store.messages("lis")[0]
    assert (first.status, first.attempts, first.ack_code) == ("sent", 3, "AA")


def test_a_reject_ack_dead_letters_the_message_and_its_patient_moves_on(
        database_url: str, store: OutboundStore, fast_outbound: None) -> None:
    rejecting = {"on": True}

    def answer(message: str) -> str:
        return "AR" if rejecting["on"] and trigger(message).startswith("ADT^A04") else "AA"

    consumer = Consumer(answer=answer).start()
    try:
        store.add_destination("lis", "127.0.0.1", consumer.port, ("adt",), "FICUS", "HOSP", "LIS", "LAB")
        from ficus.app import create_app
        from ficus.config import Settings

        app = create_app(Settings(database_url=database_url, base_url="http://testserver/fhir", auth="off"))
        with TestClient(app, base_url="http://testserver/fhir/") as client:
            rejected = create(client, patient("Rejected", "3001"))
            update(client, {**rejected, "birthDate": "1980-01-03"})
            consumer.wait_for(2)
            assert [trigger(m) for m in settle(consumer)] == ["ADT^A04^ADT_A01", "ADT^A08^ADT_A01"]
            failed, sent = store.messages("lis")
            assert (failed.status, failed.attempts, failed.ack_code) == ("failed", 1, "AR")
            assert "Refused by the test consumer (AR)" in (failed.error or "")
            assert sent.status == "sent"

            rejecting["on"] = False
            assert store.requeue(destination="lis") == 1
            consumer.wait_for(3)
            assert trigger(settle(consumer)[2]) == "ADT^A04^ADT_A01"
            assert store.counts() == {"lis": {"sent": 2}}
    finally:
        consumer.shutdown()


def test_a_destination_receives_only_the_kinds_it_takes(
        fhir: TestClient, consumer: Consumer, store: OutboundStore) -> None:
    results_only = Consumer().start()
    try:
        store.add_destination("lab", "127.0.0.1", results_only.port, ("oru",), "FICUS", "HOSP", "LAB", "LAB")
        time.sleep(0.2)  # the worker sees the new destination
        ann = create(fhir, patient("Kinds", "4001"))
        create(fhir, {"resourceType": "Observation", "status": "final", "subject": {"reference": f"Patient/{ann['id']}"},
                      "code": {"text": "Mood"}, "valueString": "cheerful"})
        consumer.wait_for(2)
        results_only.wait_for(1)
        assert [trigger(m) for m in settle(results_only)] == ["ORU^R01^ORU_R01"]
        assert [trigger(m) for m in settle(consumer)] == ["ADT^A04^ADT_A01", "ORU^R01^ORU_R01"]
        assert field(results_only.messages()[0], "MSH", 5) == "LAB"
    finally:
        results_only.shutdown()


def test_changes_before_a_destination_was_added_are_not_sent(
        database_url: str, store: OutboundStore, consumer: Consumer, fast_outbound: None) -> None:
    from ficus.app import create_app
    from ficus.config import Settings

    app = create_app(Settings(database_url=database_url, base_url="http://testserver/fhir", auth="off"))
    with TestClient(app, base_url="http://testserver/fhir/") as client:
        create(client, patient("Before", "5001"))
        store.add_destination("lis", "127.0.0.1", consumer.port, ("adt",), "FICUS", "HOSP", "LIS", "LAB")
        create(client, patient("After", "5002"))
        consumer.wait_for(1)
        assert [family(m) for m in settle(consumer)] == ["After"]


def test_changes_made_before_any_worker_ran_reach_a_destination_added_before_them(
        database_url: str, store: OutboundStore, consumer: Consumer, fast_outbound: None) -> None:
    from ficus.app import create_app
    from ficus.config import Settings
    from ficus.spec import definitions
    from ficus.store.repository import Repository

    store.add_destination("lis", "127.0.0.1", consumer.port, ("adt",), "FICUS", "HOSP", "LIS", "LAB")
    with Repository(store.database, definitions()).transaction() as writer:  # no server is running yet
        writer.create(patient("Early", "6001"), "early")
    app = create_app(Settings(database_url=database_url, base_url="http://testserver/fhir", auth="off"))
    with TestClient(app, base_url="http://testserver/fhir/"):
        consumer.wait_for(1)
        assert [family(m) for m in settle(consumer)] == ["Early"]
