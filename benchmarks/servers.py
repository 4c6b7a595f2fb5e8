"""Server processes on real sockets (Ficus, the floor app), their databases and their /proc figures."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

POSTGRES_ADMIN_URL = os.environ.get(
    "FICUS_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (the worker processes of `--workers N`), from /proc."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(child) for child in (task / "children").read_text().split())
        except OSError:
            pass
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its descendants, from /proc/<pid>/stat."""
    total = 0
    for member in process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / _CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent busy since boot, from /proc/stat."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / _CLOCK_TICKS


def peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident set) of a process in MiB, summed over it and its descendants."""
    total = 0
    for member in process_tree(pid):
        try:
            lines = Path(f"/proc/{member}/status").read_text().splitlines()
        except OSError:
            continue
        total += sum(int(line.split()[1]) for line in lines if line.startswith("VmHWM:"))
    return total / 1024


def reset_peak_rss(pid: int) -> None:
    """Restart VmHWM from the current RSS (Linux clear_refs 5); ignored where not permitted."""
    for member in process_tree(pid):
        try:
            Path(f"/proc/{member}/clear_refs").write_text("5")
        except OSError:
            pass


@dataclass
class Server:
    """A child process serving HTTP on 127.0.0.1:port."""

    name: str
    process: subprocess.Popen
    port: int
    log_path: Path
    extra: dict = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, path: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}; see {self.log_path}"
                )
            try:
                status, _ = request("GET", self.port, path)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} did not answer on port {self.port}; see {self.log_path}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def request(
    method: str, port: int, path: str, body: bytes | None = None, timeout: float = 120
) -> tuple[int, bytes]:
    """One HTTP request to 127.0.0.1:port; returns (status, body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Accept": "application/fhir+json"}
        if body is not None:
            headers["Content-Type"] = "application/fhir+json"
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _spawn(name: str, command: list[str], env: dict[str, str], log_dir: Path, port: int) -> Server:
    log_path = log_dir / f"{name}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, cwd=_REPO_ROOT
        )
    return Server(name, process, port, log_path)


def start_ficus(name: str, database_url: str, log_dir: Path, workers: int = 1) -> Server:
    """`python -m ficus.cli serve --workers N` on a free port, ready to answer /fhir/metadata."""
    port = free_port()
    env = {
        "FICUS_DATABASE_URL": database_url,
        "FICUS_BASE_URL": f"http://127.0.0.1:{port}/fhir",
        "FICUS_AUTH": os.environ.get("FICUS_AUTH", "off"),  # the suite measures the FHIR API, not tokens
    }
    command = [sys.executable, "-m", "ficus.cli", "serve", "--port", str(port), "--workers", str(workers)]
    server = _spawn(name, command, env, log_dir, port)
    server.wait_ready("/fhir/metadata")
    return server


def start_floor_app(
    postgres_url: str | None, sqlite_path: str | None, log_dir: Path, workers: int = 1
) -> Server:
    """The bare Starlette app of `benchmarks.floor_app` under uvicorn, as Ficus runs it
    (`workers` processes)."""
    port = free_port()
    env = {"BENCH_FLOOR_POSTGRES": postgres_url or "", "BENCH_FLOOR_SQLITE": sqlite_path or ""}
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "benchmarks.floor_app:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
        "--workers",
        str(workers),
    ]
    server = _spawn("floor-app", command, env, log_dir, port)
    server.wait_ready("/hello")
    return server


def create_postgres_database(name: str) -> str:
    """A fresh database on the benchmark PostgreSQL server; returns its URL."""
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_postgres_database(name: str) -> None:
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_backend_cpu(database_url: str) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend process connected to the database, by pid."""
    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(database_url, autocommit=True) as connection:
        pids = [
            row[0]
            for row in connection.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
        ]
    found = {}
    for pid in pids:
        try:
            found[pid] = cpu_seconds(pid)
        except OSError:
            pass
    return found
