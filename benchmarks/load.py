"""The load generator: wrk (Debian package `wrk`) with a Lua script that cycles through requests.

wrk is C with one event-loop thread here; its own CPU time is recorded with every point so the
report shows it was not the limit.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

LUA_SCRIPT = Path(__file__).with_name("wrk_requests.lua")

Request = tuple[str, str, bytes | None]  # method, path, body


@dataclass(frozen=True)
class LoadResult:
    """What wrk measured for one operation at one concurrency."""

    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    errors: int
    error_detail: dict
    driver_cpu_s: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def require_wrk() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    return found


def write_requests(requests: list[Request], directory: Path) -> Path:
    """The request file the Lua script reads; one line per request (JSON bodies have no tabs or newlines)."""
    lines = []
    for method, path, body in requests:
        text = body.decode() if body else ""
        if "\n" in text or "\t" in text:
            raise ValueError("request bodies must be compact JSON")
        lines.append(f"{method}\t{path}\t{text}")
    content = ("\n".join(lines) + "\n").encode()
    path = directory / f"requests-{hashlib.sha1(content).hexdigest()[:12]}.txt"
    if not path.exists():
        path.write_bytes(content)
    return path


def run(port: int, request_file: Path, concurrency: int, duration: float) -> LoadResult:
    """Drive 127.0.0.1:port with `concurrency` keep-alive connections for `duration` seconds."""
    command = [
        require_wrk(),
        "-t1",
        f"-c{concurrency}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "60s",
        "-s",
        str(LUA_SCRIPT),
        f"http://127.0.0.1:{port}/",
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    process = subprocess.run(
        command,
        capture_output=True,
        check=False,
        env={**os.environ, "BENCH_REQUESTS": str(request_file)},
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    stdout, stderr = process.stdout, process.stderr
    summary_line = next(
        (line for line in reversed(stdout.decode().splitlines()) if line.startswith("{")), None
    )
    if process.returncode or summary_line is None:
        raise RuntimeError(f"wrk failed ({process.returncode}): {stderr.decode()[-500:]}")
    data = json.loads(summary_line)
    errors = {key: data[key] for key in ("connect", "read", "write", "status", "timeout")}
    return LoadResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p95_ms=data["p95_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        mean_ms=data["mean_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        errors=sum(errors.values()),
        error_detail=errors,
        driver_cpu_s=(after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
    )
