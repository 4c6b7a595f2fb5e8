"""Reads by id and by version on the event loop, without a worker thread.

PostgreSQL reads through a psycopg `AsyncConnectionPool`; SQLite runs the point read inline on
one connection of its own (an indexed lookup of one row takes microseconds, less than a hop to a
worker thread and back).
"""

from __future__ import annotations

from typing import Any

from ficus.store.database import Database, PostgresDatabase, SQLiteDatabase
# the very statements `Repository.read` and `vread` run, so both paths answer alike
from ficus.store.repository import _GIVEN_VERSION, _LATEST_VERSION, Version, current_version, given_version


class AsyncReads:
    """`read` and `vread` of `Repository`, awaitable; `open()` before use, `close()` after."""

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def _row(self, sql: str, params: tuple) -> Any:
        raise NotImplementedError

    async def read(self, res_type: str, res_id: str) -> Version:
        row = await self._row(_LATEST_VERSION, (res_type, res_id))
        return current_version(Version.from_row(row) if row else None, res_type, res_id)

    async def vread(self, res_type: str, res_id: str, version: int) -> Version:
        row = await self._row(_GIVEN_VERSION, (res_type, res_id, version))
        return given_version(Version.from_row(row) if row else None, res_type, res_id, version)


class _PostgresReads(AsyncReads):
    def __init__(self, database: PostgresDatabase, connections: int) -> None:
        from psycopg_pool import AsyncConnectionPool

        self._database = database
        self._pool = AsyncConnectionPool(
            database.url, min_size=min(4, connections), max_size=connections, open=False,
            kwargs={"application_name": "ficus", "autocommit": True},
        )

    async def open(self) -> None:
        await self._pool.open(wait=True)

    async def close(self) -> None:
        await self._pool.close()

    async def _row(self, sql: str, params: tuple) -> Any:
        # one statement in autocommit: no BEGIN/COMMIT; psycopg prepares it after a few uses
        async with self._pool.connection() as connection:
            cursor = await connection.execute(self._database.sql(sql), params)
            return await cursor.fetchone()


class _SQLiteReads(AsyncReads):
    def __init__(self, database: SQLiteDatabase) -> None:
        self._connection = database.connect()  # used only by the event loop's thread

    async def _row(self, sql: str, params: tuple) -> Any:
        # a single SELECT in autocommit is its own read transaction on a WAL snapshot
        return self._connection.execute(sql, params).fetchone()


def async_reads(database: Database, connections: int = 16) -> AsyncReads:
    """The event-loop reader for `database` (`connections`: the PostgreSQL pool's size)."""
    if isinstance(database, PostgresDatabase):
        return _PostgresReads(database, connections)
    if isinstance(database, SQLiteDatabase):
        return _SQLiteReads(database)
    raise TypeError(f"No event-loop reads for {type(database).__name__}")
