"""Reads by id and by version on the event loop, without a worker thread.

PostgreSQL reads through a psycopg `AsyncConnectionPool`; SQLite runs the point read inline on
one connection of its own (an indexed lookup of one row takes microseconds, less than a hop to a
worker thread and back).
"""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg

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
    """A fixed set of autocommit connections, each kept with one cursor, handed out warmest
    first. Leaner than `psycopg_pool` (whose checkout costs about as much as the query's own
    client work) because a read needs no more: a connection that fails is dropped and the
    idempotent read retried once on a fresh one, so a PostgreSQL restart costs no request."""

    def __init__(self, database: PostgresDatabase, connections: int) -> None:
        self._database = database
        self._size = connections
        self._slots: asyncio.LifoQueue[tuple[Any, Any] | None] = asyncio.LifoQueue()

    async def open(self) -> None:
        for _ in range(self._size - 1):  # empty slots connect when first used
            self._slots.put_nowait(None)
        self._slots.put_nowait(await self._connect())  # on top of the LIFO: fails early on a bad URL

    async def close(self) -> None:
        while not self._slots.empty():
            slot = self._slots.get_nowait()
            if slot is not None:
                await slot[0].close()

    async def _connect(self) -> tuple[Any, Any]:
        connection = await psycopg.AsyncConnection.connect(self._database.url, autocommit=True, application_name="ficus")
        return connection, connection.cursor()

    async def _row(self, sql: str, params: tuple) -> Any:
        statement = self._database.sql(sql)
        try:
            return await self._fetch(statement, params)
        except psycopg.OperationalError:  # the failed connection was dropped: once more on a fresh one
            return await self._fetch(statement, params)

    async def _fetch(self, statement: str, params: tuple) -> Any:
        slot = await self._slots.get()
        try:
            if slot is None or slot[0].closed:
                slot = await self._connect()
            cursor = slot[1]
            # one statement in autocommit: no BEGIN/COMMIT; psycopg prepares it after a few uses
            await cursor.execute(statement, params)
            row = await cursor.fetchone()
        except BaseException:  # failed or cancelled mid-query: the connection's state is unknown
            if slot is not None:
                await slot[0].close()
            self._slots.put_nowait(None)
            raise
        self._slots.put_nowait(slot)
        return row


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
