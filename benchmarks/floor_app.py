"""The floor app: what a bare Starlette endpoint does on this machine, with no FHIR work.

`GET /hello` answers a fixed body; `GET /pg/{id}` and `GET /sqlite/{id}` return one row's
content by primary key from the floor table (`BENCH_FLOOR_POSTGRES`, `BENCH_FLOOR_SQLITE`).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

MEDIA_TYPE = "application/fhir+json"
READ_SQL = "SELECT content FROM bench_floor_text WHERE id = {}"


def create_app() -> Starlette:
    postgres_url = os.environ.get("BENCH_FLOOR_POSTGRES") or None
    sqlite_path = os.environ.get("BENCH_FLOOR_SQLITE") or None
    state: dict = {}

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if postgres_url:
            state["pool"] = AsyncConnectionPool(
                postgres_url, min_size=4, max_size=16, open=False, kwargs={"autocommit": True}
            )
            await state["pool"].open()
        if sqlite_path:
            state["sqlite"] = sqlite3.connect(sqlite_path, check_same_thread=False)
        yield
        if postgres_url:
            await state["pool"].close()

    async def hello(request: Request) -> Response:
        return Response(b'{"resourceType":"OperationOutcome"}', media_type=MEDIA_TYPE)

    async def postgres_read(request: Request) -> Response:
        async with state["pool"].connection() as connection:
            cursor = await connection.execute(
                READ_SQL.format("%s"), (request.path_params["id"],), prepare=True
            )
            row = await cursor.fetchone()
        return _row_response(row)

    async def sqlite_read(request: Request) -> Response:
        row = state["sqlite"].execute(READ_SQL.format("?"), (request.path_params["id"],)).fetchone()
        return _row_response(row)

    routes = [
        Route("/hello", hello),
        Route("/pg/{id}", postgres_read),
        Route("/sqlite/{id}", sqlite_read),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def _row_response(row: tuple | None) -> Response:
    if row is None:
        return Response(status_code=404)
    content = row[0]
    return Response(
        content.encode() if isinstance(content, str) else content, media_type=MEDIA_TYPE
    )
