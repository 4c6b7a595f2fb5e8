"""py-spy profiles of the server under load, summarised as the functions that take the samples.

py-spy runs with `--gil`: only the thread holding the GIL is sampled, so the samples are the
server's Python CPU work; waits (idle worker threads, the event loop's epoll, libpq round trips,
SQLite's engine, which releases the GIL) are left out. Samples over (rate x load seconds) is about
the share of wall time the GIL was busy.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

_LINE = re.compile(r":\d+\)$")
RATE = 200


def py_spy() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def record(pid: int, drive: Callable[[], dict], output: Path, top: int = 15) -> dict[str, Any]:
    """Sample `pid` with py-spy while `drive()` loads it; write collapsed stacks to `output`."""
    binary = py_spy()
    if binary is None:
        return {"error": "py-spy is not installed (pip install py-spy)"}
    output.parent.mkdir(parents=True, exist_ok=True)
    sampler = subprocess.Popen(
        [
            binary,
            "record",
            "--pid",
            str(pid),
            "--gil",
            "--subprocesses",  # the workers of `--workers N`
            "--rate",
            str(RATE),
            "--format",
            "raw",
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(1.0)
    point = drive()
    sampler.send_signal(signal.SIGINT)
    _, error = sampler.communicate(timeout=60)
    if not output.exists():
        return {"error": f"py-spy wrote nothing: {error.decode()[-300:]}"}
    summary = summarise(output.read_text(), top)
    summary.update(
        file=str(output), point=point, gil_busy=summary["samples"] / (RATE * point["seconds"])
    )
    return summary


def summarise(collapsed: str, top: int = 15) -> dict[str, Any]:
    """Sample shares per function from py-spy's raw (collapsed-stack) output.

    `self`: the innermost frame of each sample; `inclusive`: Ficus's own functions (`ficus/`)
    anywhere on the stack.
    """
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_LINE.sub(")", frame) for frame in stack.split(";")]
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            if "(ficus/" in frame:
                inclusive[frame] += count

    def shares(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, count / total) for name, count in counter.most_common(top)] if total else []

    return {"samples": total, "self": shares(own), "inclusive": shares(inclusive)}
