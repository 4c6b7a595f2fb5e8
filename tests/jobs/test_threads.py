"""WorkerThreads: a worker's stop waits for the blocking calls its cancelled tasks left running."""

from __future__ import annotations

import asyncio
import threading
import time

from ficus.jobs.threads import WorkerThreads


def test_close_returns_only_after_the_calls_of_cancelled_tasks_have_finished() -> None:
    started, finished = threading.Event(), threading.Event()

    def database_call() -> None:
        started.set()
        time.sleep(0.3)
        finished.set()

    async def scenario() -> None:
        threads = WorkerThreads("test")
        task = asyncio.create_task(threads.run(database_call))
        while not started.is_set():
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert not finished.is_set()  # the task is gone, its call is not
        await threads.close()
        assert finished.is_set()

    asyncio.run(scenario())
