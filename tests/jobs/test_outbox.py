"""The outbox consumer: every committed change once, in commit order, durable, shared safely."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from ficus.jobs.lease import Lease
from ficus.jobs.outbox import OutboxConsumer, OutboxEvent
from ficus.spec import definitions
from ficus.store.database import Database, open_database
from ficus.store.repository import Repository


def reset_jobs(url: str) -> None:
    if url.startswith("postgresql"):
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute("TRUNCATE outbox_consumer, job_lease")


@pytest.fixture
def repository(database_url: str) -> Iterator[Repository]:
    reset_jobs(database_url)
    database = open_database(database_url)
    yield Repository(database, definitions())
    database.close()


@pytest.fixture
def pg_repository(postgres_database: str) -> Iterator[Repository]:
    with psycopg.connect(postgres_database, autocommit=True) as connection:
        connection.execute("TRUNCATE outbox, outbox_consumer, job_lease, resource, resource_version RESTART IDENTITY")
    database = open_database(postgres_database)
    yield Repository(database, definitions())
    database.close()


def create_patient(repository: Repository, res_id: str) -> None:
    with repository.transaction() as writer:
        writer.create({"resourceType": "Patient", "name": [{"family": res_id}]}, res_id)


def drain(consumer: OutboxConsumer) -> list[OutboxEvent]:
    seen: list[OutboxEvent] = []
    while consumer.consume(lambda tx, events: seen.extend(events)):
        pass
    return seen


def drain_until(consumer: OutboxConsumer, count: int, timeout: float = 20.0) -> list[OutboxEvent]:
    seen: list[OutboxEvent] = []
    deadline = time.monotonic() + timeout
    while len(seen) < count and time.monotonic() < deadline:
        seen += drain(consumer)
        time.sleep(0.02)
    return seen


def test_a_new_consumer_starts_at_the_end_and_then_sees_each_change_once_in_order(repository: Repository) -> None:
    create_patient(repository, "before")
    consumer = OutboxConsumer(repository.database, "test")
    consumer.register()
    for name in ("a", "b", "c"):
        create_patient(repository, name)
    with repository.transaction() as writer:
        writer.delete("Patient", "a")
    events = drain(consumer)
    assert [(e.res_id, e.action) for e in events] == [("a", "POST"), ("b", "POST"), ("c", "POST"), ("a", "DELETE")]
    assert [e.seq for e in events] == sorted(e.seq for e in events)
    assert drain(consumer) == []


def test_the_cursor_is_durable_across_consumer_objects(repository: Repository) -> None:
    OutboxConsumer(repository.database, "test").register()
    create_patient(repository, "a")
    assert [e.res_id for e in drain(OutboxConsumer(repository.database, "test"))] == ["a"]
    create_patient(repository, "b")
    assert [e.res_id for e in drain(OutboxConsumer(repository.database, "test"))] == ["b"]
    assert [e.res_id for e in drain(OutboxConsumer(repository.database, "other", batch=1))] == []


def test_a_failing_handler_moves_nothing(repository: Repository) -> None:
    consumer = OutboxConsumer(repository.database, "test")
    consumer.register()
    create_patient(repository, "a")

    def fail(tx, events):
        tx.execute("INSERT INTO job_lease (name, owner, expires) VALUES ('written-by-handler', 'x', 0)")
        raise RuntimeError("handler failed")

    with pytest.raises(RuntimeError):
        consumer.consume(fail)
    with repository.database.session() as tx:
        assert tx.execute("SELECT COUNT(*) FROM job_lease").fetchone()[0] == 0
    assert [e.res_id for e in drain(consumer)] == ["a"]


def test_a_seq_held_by_an_open_transaction_is_not_passed(pg_repository: Repository) -> None:
    """T1 takes a seq and stays open while T2 commits a higher one: the consumer waits for T1."""
    consumer = OutboxConsumer(pg_repository.database, "test")
    consumer.register()
    with pg_repository.transaction() as slow:
        slow.create({"resourceType": "Patient"}, "slow")
        slow.flush()  # the outbox row and its seq exist, uncommitted
        fast = threading.Thread(target=create_patient, args=(pg_repository, "fast"))
        fast.start()
        fast.join()
        assert drain(consumer) == []
        time.sleep(0.2)
        assert drain(consumer) == []
    assert [e.res_id for e in drain_until(consumer, 2)] == ["slow", "fast"]


def test_a_rolled_back_seq_is_skipped_once_its_transaction_ended(pg_repository: Repository) -> None:
    consumer = OutboxConsumer(pg_repository.database, "test")
    consumer.register()
    with pytest.raises(RuntimeError), pg_repository.transaction() as doomed:
        doomed.create({"resourceType": "Patient"}, "doomed")
        doomed.flush()
        fast = threading.Thread(target=create_patient, args=(pg_repository, "fast"))
        fast.start()
        fast.join()
        assert drain(consumer) == []
        raise RuntimeError("roll back")
    # other databases' transactions on the same server can delay the skip a little, never prevent it
    assert [e.res_id for e in drain_until(consumer, 1)] == ["fast"]


def test_consumers_in_many_threads_share_the_work_without_duplicates(pg_repository: Repository) -> None:
    database: Database = pg_repository.database
    OutboxConsumer(database, "shared").register()
    seen: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def consume() -> None:
        consumer = OutboxConsumer(database, "shared", batch=3)
        while not stop.is_set():
            def handle(tx, events):
                with lock:
                    seen.extend(e.res_id for e in events)
            consumer.consume(handle)

    workers = [threading.Thread(target=consume) for _ in range(4)]
    for worker in workers:
        worker.start()
    writers = [threading.Thread(target=lambda n=n: [create_patient(pg_repository, f"p{n}-{i}") for i in range(15)])
               for n in range(3)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with lock:
            if len(seen) >= 45:
                break
        time.sleep(0.05)
    stop.set()
    for worker in workers:
        worker.join()
    assert sorted(seen) == sorted(f"p{n}-{i}" for n in range(3) for i in range(15))
    for n in range(3):  # each writer's own changes arrive in the order it made them
        mine = [name for name in seen if name.startswith(f"p{n}-")]
        assert mine == [f"p{n}-{i}" for i in range(15)]


def test_a_lease_has_one_holder_until_released_or_expired(repository: Repository) -> None:
    first = Lease(repository.database, "work", "one", seconds=60)
    second = Lease(repository.database, "work", "two", seconds=60)
    assert first.acquire()
    assert first.acquire()  # renewal
    assert not second.acquire()
    first.release()
    assert second.acquire()
    expired = Lease(repository.database, "other", "one", seconds=-1)
    assert expired.acquire()
    assert Lease(repository.database, "other", "two").acquire()
