"""Connections to SQLite or PostgreSQL behind one small interface, plus schema migrations.

SQL is written once with `?` placeholders; the PostgreSQL side rewrites them to `%s`. The few
dialect differences (identity columns, blobs, booleans, locking) live here and nowhere else; a
migration named `NNNN_name.<dialect>.sql` runs only on that dialect.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

MIGRATIONS = Path(__file__).parent / "migrations"


class Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list: ...


class Database:
    """A database Ficus stores into; `session()` yields one transaction's connection."""

    dialect: str
    placeholders: dict[str, str]

    def session(self, write: bool = False) -> Any:
        raise NotImplementedError

    def sql(self, statement: str) -> str:
        return statement

    def lock(self, tx: Any, key: str) -> None:
        """Serialise transactions that use the same key until the caller's transaction ends."""

    def allocate_rids(self, tx: Any, count: int) -> list[int]:
        """`count` fresh `resource.rid` values, unique across concurrent transactions."""
        raise NotImplementedError

    def insert_many(self, tx: Any, table: str, columns: Sequence[str], rows: list[tuple]) -> None:
        """Insert rows in bulk (the names come from the code, never from a client)."""
        marks = ", ".join("?" * len(columns))
        tx.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)

    def close(self) -> None:
        pass

    def migrate(self) -> None:
        with self.session(write=True) as tx:
            self.lock(tx, "ficus-schema-migration")
            tx.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied BIGINT NOT NULL)")
            applied = {row[0] for row in tx.execute("SELECT version FROM schema_migrations").fetchall()}
            for script in sorted(MIGRATIONS.glob("*.sql")):
                version = int(script.name.split("_", 1)[0])
                only = script.suffixes[-2][1:] if len(script.suffixes) > 1 else self.dialect
                if version in applied or only != self.dialect:
                    continue
                text = script.read_text().format(**self.placeholders)
                for statement in _statements(text):
                    tx.execute(statement)
                tx.execute("INSERT INTO schema_migrations (version, applied) VALUES (?, ?)", (version, int(time.time())))


def _statements(script: str) -> list[str]:
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


class SQLiteDatabase(Database):
    """Embedded SQLite in WAL mode: a small fixed pool of reader connections and one writer.

    Writers take the writer connection under an in-process lock, so a waiting writer starts
    the moment the previous one commits instead of sleeping in SQLite's busy handler (which
    backs off in growing steps). Other processes on the same file still wait in that handler:
    WAL lets them read concurrently, but their writes serialise.
    """

    dialect = "sqlite"
    placeholders = {"identity": "INTEGER PRIMARY KEY AUTOINCREMENT", "blob": "BLOB", "bool": "INTEGER"}

    def __init__(self, path: str, readers: int = 4) -> None:
        self.path = path
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._readers: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()  # LIFO: the warmest cache first
        self._reader_slots = threading.Semaphore(readers)
        self._writer_lock = threading.Lock()
        self._writer: sqlite3.Connection | None = None
        self._all: list[sqlite3.Connection] = []
        self._guard = threading.Lock()

    def connect(self) -> sqlite3.Connection:
        """A new connection with Ficus's settings (autocommit: transactions are explicit)."""
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=60)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA journal_size_limit=67108864")  # keep the WAL file bounded
        connection.execute("PRAGMA foreign_keys=ON")
        with self._guard:
            self._all.append(connection)
        return connection

    @contextmanager
    def session(self, write: bool = False) -> Iterator[sqlite3.Cursor]:
        if write:
            with self._writer_lock:
                if self._writer is None:
                    self._writer = self.connect()
                yield from self._transaction(self._writer, "BEGIN IMMEDIATE")
            return
        with self._reader_slots:  # at most `readers` connections, each reused while warm
            try:
                connection = self._readers.get_nowait()
            except queue.Empty:
                connection = self.connect()
            try:
                yield from self._transaction(connection, "BEGIN")
            finally:
                self._readers.put(connection)

    @staticmethod
    def _transaction(connection: sqlite3.Connection, begin: str) -> Iterator[sqlite3.Cursor]:
        cursor = connection.cursor()
        cursor.execute(begin)
        try:
            yield cursor
        except BaseException:
            connection.rollback()
            raise
        else:
            connection.commit()
        finally:
            cursor.close()

    def allocate_rids(self, tx: Any, count: int) -> list[int]:
        # the write transaction (BEGIN IMMEDIATE) holds the database lock, so this is race-free
        tx.execute(
            "INSERT INTO sqlite_sequence (name, seq) SELECT 'resource', 0 "
            "WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'resource')"
        )
        last = tx.execute("UPDATE sqlite_sequence SET seq = seq + ? WHERE name = 'resource' RETURNING seq", (count,)).fetchone()[0]
        return list(range(last, last - count, -1))

    def close(self) -> None:
        with self._guard:
            for connection in self._all:
                connection.close()
            self._all.clear()
        self._writer = None
        self._readers = queue.LifoQueue()


class PostgresDatabase(Database):
    """PostgreSQL through a psycopg 3 connection pool; many Ficus processes may share it."""

    dialect = "postgresql"
    placeholders = {
        "identity": "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
        "blob": "BYTEA",
        "bool": "BOOLEAN",
    }

    def __init__(self, url: str, max_connections: int = 16) -> None:
        from psycopg_pool import ConnectionPool

        self.url = url
        self.pool = ConnectionPool(
            url, min_size=1, max_size=max_connections, open=True,
            kwargs={"application_name": "ficus", "autocommit": True},
        )
        self._sql_cache: dict[str, str] = {}
        self._copy_types: dict[tuple[str, tuple[str, ...]], list[int]] = {}

    def sql(self, statement: str) -> str:
        rewritten = self._sql_cache.get(statement)
        if rewritten is None:
            rewritten = statement.replace("%", "%%").replace("?", "%s")
            self._sql_cache[statement] = rewritten
        return rewritten

    @contextmanager
    def session(self, write: bool = False) -> Iterator[Any]:
        """Writes run in one transaction; reads run in autocommit (no BEGIN/COMMIT round trips)."""
        with self.pool.connection() as connection:
            if write:
                with connection.transaction(), connection.cursor() as cursor:
                    yield _PostgresCursor(cursor, self)
            else:
                with connection.cursor() as cursor:
                    yield _PostgresCursor(cursor, self)

    def lock(self, tx: Any, key: str) -> None:
        tx.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", (key,))

    def insert_many(self, tx: Any, table: str, columns: Sequence[str], rows: list[tuple]) -> None:
        """Binary COPY: several times faster than pipelined INSERTs for index rows, and the
        binary format costs about half the client CPU of the text format."""
        if len(rows) < 4:
            super().insert_many(tx, table, columns, rows)
            return
        types = self._column_types(tx, table, tuple(columns))
        with tx.raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row(row)

    def _column_types(self, tx: Any, table: str, columns: tuple[str, ...]) -> list[int]:
        """The type oids of `columns` of `table`, looked up once per process (binary COPY needs them)."""
        key = (table, columns)
        types = self._copy_types.get(key)
        if types is None:
            found = dict(tx.execute(
                "SELECT attname, atttypid::int FROM pg_attribute WHERE attrelid = ?::regclass AND attnum > 0",
                (table,),
            ).fetchall())
            types = self._copy_types[key] = [found[column] for column in columns]
        return types

    def allocate_rids(self, tx: Any, count: int) -> list[int]:
        rows = tx.execute(
            "SELECT nextval(pg_get_serial_sequence('resource', 'rid')) FROM generate_series(1, ?)", (count,)
        ).fetchall()
        return [row[0] for row in rows][::-1]

    def close(self) -> None:
        self.pool.close()


class _PostgresCursor:
    """A psycopg cursor that accepts the `?` placeholders the store writes."""

    def __init__(self, cursor: Any, database: PostgresDatabase) -> None:
        self._cursor = cursor
        self._database = database

    @property
    def raw(self) -> Any:
        """The psycopg cursor itself (for COPY)."""
        return self._cursor

    def execute(self, sql: str, params: Sequence[Any] = (), prepare: bool | None = None) -> _PostgresCursor:
        """Run `sql`; psycopg prepares statements it sees repeated unless `prepare` is False."""
        self._cursor.execute(self._database.sql(sql), params, prepare=prepare)
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> _PostgresCursor:
        self._cursor.executemany(self._database.sql(sql), rows)
        return self

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> list:
        return self._cursor.fetchall()


def open_database(url: str, pool_size: int = 16) -> Database:
    """Open `sqlite:///path/to/file.db` or `postgresql://...` (with at most `pool_size`
    connections) and bring its schema up to date."""
    parsed = urlparse(url)
    database: Database
    if parsed.scheme == "sqlite":
        path = unquote(url[len("sqlite:///"):]) if url.startswith("sqlite:///") else ":memory:"
        database = SQLiteDatabase(path or ":memory:")
    elif parsed.scheme in ("postgresql", "postgres"):
        database = PostgresDatabase(url, pool_size)
    else:
        raise ValueError(f"Unsupported database URL {url!r}: use sqlite:///path or postgresql://...")
    database.migrate()
    return database
