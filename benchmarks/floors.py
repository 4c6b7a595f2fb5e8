"""Database floors measured in the same run: bulk load rates of the same resources with no FHIR work.

The tables written here (`bench_floor_text`) are also what the floor app reads by primary key.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

FLOOR_ROWS = 100_000


def floor_rows(resources: list[bytes], rows: int = FLOOR_ROWS) -> list[tuple[str, str]]:
    """`rows` (id, JSON text) pairs cycling over the data set's resources; ids are "0", "1", ..."""
    texts = [resource.decode() for resource in resources]
    return [(str(i), texts[i % len(texts)]) for i in range(max(rows, len(texts)))]


def postgres_copy(database_url: str, rows: list[tuple[str, str]]) -> dict[str, Any]:
    """psycopg binary COPY into (id text primary key, content jsonb) and (..., content text): rows/s."""
    result = {}
    with psycopg.connect(database_url, autocommit=True) as connection:
        for kind in ("jsonb", "text"):
            table = f"bench_floor_{kind}"
            connection.execute(f"DROP TABLE IF EXISTS {table}")
            connection.execute(
                f"CREATE TABLE {table} (id text PRIMARY KEY, content {kind} NOT NULL)"
            )
            started = time.perf_counter()
            statement = f"COPY {table} (id, content) FROM STDIN (FORMAT BINARY)"
            with (
                connection.transaction(),
                connection.cursor() as cursor,
                cursor.copy(statement) as copy,
            ):
                copy.set_types(["text", kind])
                if kind == "jsonb":
                    for res_id, text in rows:
                        copy.write_row((res_id, Jsonb(text, dumps=_as_is)))
                else:
                    for row in rows:
                        copy.write_row(row)
            elapsed = time.perf_counter() - started
            size = connection.execute("SELECT pg_total_relation_size(%s)", (table,)).fetchone()[0]
            result[f"copy_{kind}"] = {
                "rows": len(rows),
                "seconds": elapsed,
                "rows_per_s": len(rows) / elapsed,
                "bytes_per_row": size / len(rows),
            }
        connection.execute("VACUUM ANALYZE bench_floor_text")
    return result


def sqlite_insert(path: str, rows: list[tuple[str, str]]) -> dict[str, Any]:
    """executemany INSERT in one transaction into (id TEXT PRIMARY KEY, content TEXT), WAL mode: rows/s."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("DROP TABLE IF EXISTS bench_floor_text")
        connection.execute(
            "CREATE TABLE bench_floor_text (id TEXT PRIMARY KEY, content TEXT NOT NULL)"
        )
        started = time.perf_counter()
        connection.execute("BEGIN")
        connection.executemany("INSERT INTO bench_floor_text (id, content) VALUES (?, ?)", rows)
        connection.execute("COMMIT")
        elapsed = time.perf_counter() - started
    finally:
        connection.close()
    return {
        "sqlite_insert": {"rows": len(rows), "seconds": elapsed, "rows_per_s": len(rows) / elapsed}
    }


def _as_is(text: str) -> str:
    return text
