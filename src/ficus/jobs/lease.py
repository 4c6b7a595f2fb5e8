"""Named, expiring leases in the database: one process at a time holds each one.

A holder renews its lease while it works; a process that dies simply lets it expire, and
another takes over. Used where work must not run twice at once (e.g. one MLLP connection per
destination).
"""

from __future__ import annotations

import os
import socket
import uuid

from ficus.fhirtime import now_micros
from ficus.store.database import Database


def owner_name() -> str:
    """An owner id unique to this process (host, pid and a random part)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    def __init__(self, database: Database, name: str, owner: str, seconds: float = 60.0) -> None:
        self.database = database
        self.name = name
        self.owner = owner
        self.duration = int(seconds * 1_000_000)

    def acquire(self) -> bool:
        """Take (or renew) the lease; False while another owner holds an unexpired one."""
        now = now_micros()
        with self.database.session(write=True) as tx:
            row = tx.execute(
                "INSERT INTO job_lease (name, owner, expires) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE "
                "SET owner = excluded.owner, expires = excluded.expires "
                "WHERE job_lease.owner = excluded.owner OR job_lease.expires < ? RETURNING owner",
                (self.name, self.owner, now + self.duration, now),
            ).fetchone()
        return row is not None

    def release(self) -> None:
        with self.database.session(write=True) as tx:
            tx.execute("DELETE FROM job_lease WHERE name = ? AND owner = ?", (self.name, self.owner))
