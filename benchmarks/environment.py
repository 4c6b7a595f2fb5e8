"""What a run ran on: machine, versions, data set and settings, for the report's header."""

from __future__ import annotations

import datetime
import os
import platform
import sqlite3
import subprocess
from importlib import metadata
from typing import Any

import psycopg

from benchmarks import servers


def describe(options: Any, data: Any) -> dict[str, Any]:
    return {
        "date": datetime.date.today().isoformat(),
        "tier": options.tier,
        "seed": options.seed,
        "source": options.source,
        "backends": options.backends,
        "duration_s": options.duration,
        "workers": options.workers,
        "concurrency": options.concurrency,
        "load_average_start": os.getloadavg()[0],
        "machine": {
            "cores": os.cpu_count(),
            "memory_gib": round(_memory_kib() / 2**20, 1),
            "cpu": _cpu_model(),
            "kernel": platform.release(),
        },
        "versions": {
            "python": platform.python_version(),
            **{
                name: _version(name)
                for name in ("ficus", "uvicorn", "starlette", "psycopg", "msgspec")
            },
            "postgresql": _postgres_version(),
            "sqlite": sqlite3.sqlite_version,
            "wrk": _wrk_version(),
        },
        "dataset": {
            key: data.meta[key]
            for key in ("patients", "resources", "types", "ingest_bundles", "ingest_resources")
        },
    }


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def _memory_kib() -> int:
    with open("/proc/meminfo") as meminfo:
        return int(meminfo.readline().split()[1])


def _cpu_model() -> str:
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.machine()


def _postgres_version() -> str:
    try:
        with psycopg.connect(servers.POSTGRES_ADMIN_URL, connect_timeout=5) as connection:
            return connection.execute("SHOW server_version").fetchone()[0]
    except psycopg.Error:
        return "unreachable"


def _wrk_version() -> str:
    try:
        output = subprocess.run(
            ["wrk", "--version"], capture_output=True, text=True, check=False
        ).stdout
    except OSError:
        return "missing"
    return output.split()[1] if output else "?"
