"""The blocking calls of a background worker, on threads it can wait for.

Cancelling a task that awaits `asyncio.to_thread` does not stop its thread: the database call
runs on. A worker stopped while one runs would have the database closed under it (on SQLite
that can crash the process), so workers run them here and `close()` returns once none runs.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class WorkerThreads:
    def __init__(self, name: str, size: int = 4) -> None:
        self._executor = ThreadPoolExecutor(size, thread_name_prefix=name)

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(function, *args))

    async def close(self) -> None:
        """Wait for the calls still running (their tasks may have been cancelled) and end the threads."""
        await asyncio.to_thread(self._executor.shutdown, True)
