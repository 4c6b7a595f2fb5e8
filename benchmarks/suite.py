"""One benchmark run: data set, floors, then every operation on each backend; returns the results."""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import msgspec
import psycopg

from benchmarks import datagen, environment, floors, load, operations, profiling, servers
from benchmarks.operations import Operation

LOAD_CONCURRENCY = 2


@dataclass(frozen=True)
class Options:
    tier: str
    seed: int
    source: str
    backends: list[str]
    duration: float
    concurrency: list[int]
    only: list[str]
    profile: list[str]
    results_dir: Path
    stem: str
    keep_work: bool
    workers: int = 1


@dataclass
class Target:
    """A process under load and the database it stores into (for CPU, RSS and disk figures)."""

    server: servers.Server
    postgres_url: str | None = None


def run(options: Options) -> dict[str, Any]:
    load.require_wrk()
    data = datagen.dataset(options.source, options.tier, options.seed)
    work = Path(tempfile.mkdtemp(prefix="ficus-bench-"))
    results: dict[str, Any] = {
        "meta": environment.describe(options, data),
        "backends": {},
        "profiles": {},
    }
    started = time.monotonic()
    try:
        with FloorServices(options, data, work) as floor_services:
            results["floors"] = floor_services.found
            for backend in options.backends:
                results["backends"][backend] = run_backend(
                    backend, options, data, results, floor_services, work
                )
    finally:
        if options.keep_work:
            print(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    results["meta"]["wall_seconds"] = time.monotonic() - started
    results["meta"]["load_average_end"] = os.getloadavg()[0]
    return results


class FloorServices:
    """The floors of this run, and the floor app kept up so reads can be paired with a floor point.

    On entry: COPY / bulk insert of the same resources, then hello-world and raw primary-key reads
    over HTTP at every concurrency (`found`). `raw_read(backend, c)` measures one more raw-read
    point, right before Ficus's own read point at the same concurrency, so that both see the same
    machine.
    """

    def __init__(self, options: Options, data: datagen.DataSet, work: Path) -> None:
        self.options, self.data, self.work = options, data, work
        self.found: dict[str, Any] = {}
        self.postgres_name = f"ficus_bench_{os.getpid()}_floor"
        self.postgres_url: str | None = None
        self.app: servers.Server | None = None
        self.read_files: dict[str, Path] = {}

    def __enter__(self) -> Self:
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.app is not None:
            self.app.stop()
        if self.postgres_url:
            servers.drop_postgres_database(self.postgres_name)

    def raw_read(self, backend: str, concurrency: int) -> dict[str, Any] | None:
        if self.app is None or backend not in self.read_files:
            return None
        target = Target(self.app, self.postgres_url if backend == "postgresql" else None)
        return measure(target, self.read_files[backend], concurrency, self.options.duration, 1.0)

    def _start(self) -> None:
        options, found = self.options, self.found
        rows = floors.floor_rows(_resources(self.data))
        sqlite_path = None
        if "postgresql" in options.backends:
            self.postgres_url = servers.create_postgres_database(self.postgres_name)
            found.update(floors.postgres_copy(self.postgres_url, rows))
            _log(
                f"floor COPY jsonb {found['copy_jsonb']['rows_per_s']:,.0f} rows/s, "
                f"text {found['copy_text']['rows_per_s']:,.0f} rows/s"
            )
        if "sqlite" in options.backends:
            sqlite_path = str(self.work / "floor.db")
            found.update(floors.sqlite_insert(sqlite_path, rows))
            _log(f"floor SQLite insert {found['sqlite_insert']['rows_per_s']:,.0f} rows/s")
        self.app = servers.start_floor_app(self.postgres_url, sqlite_path, self.work, options.workers)
        hello = load.write_requests([("GET", "/hello", None)], self.work)
        found["hello"] = self._sweep("floor hello", Target(self.app, self.postgres_url), hello)
        ids = [str(i) for i in range(0, len(rows), max(1, len(rows) // operations.READ_IDS))]
        for backend, prefix in (("postgresql", "/pg"), ("sqlite", "/sqlite")):
            if backend in options.backends:
                requests = [("GET", f"{prefix}/{i}", None) for i in ids]
                self.read_files[backend] = load.write_requests(requests, self.work)
                found[f"raw_read_{backend}"] = {
                    c: self._logged(f"floor raw read {backend}", self.raw_read(backend, c))
                    for c in options.concurrency
                }

    def _sweep(self, label: str, target: Target, request_file: Path) -> dict[int, Any]:
        return {
            c: self._logged(label, measure(target, request_file, c, self.options.duration, 1.0))
            for c in self.options.concurrency
        }

    @staticmethod
    def _logged(label: str, point: dict[str, Any]) -> dict[str, Any]:
        _log(
            f"{label} c={point['concurrency']}: {point['requests_per_s']:,.0f} req/s, "
            f"p99 {point['p99_ms']:.2f} ms"
        )
        return point


def run_backend(
    backend: str,
    options: Options,
    data: datagen.DataSet,
    results: dict,
    floor_services: FloorServices,
    work: Path,
) -> dict[str, Any]:
    """Start Ficus on a fresh database, load the data set, then drive every operation."""
    postgres_name = f"ficus_bench_{os.getpid()}_{backend}"
    if backend == "postgresql":
        database_url = postgres_url = servers.create_postgres_database(postgres_name)
    else:
        database_url, postgres_url = f"sqlite:///{work / 'ficus.db'}", None
    server = servers.start_ficus(f"ficus-{backend}", database_url, work, options.workers)
    found: dict[str, Any] = {"operations": []}
    try:
        target = Target(server, postgres_url)
        found["load"], ids = load_data(server.port, data)
        loaded = found["load"]
        _log(
            f"{backend}: loaded {loaded['resources']:,} resources in {loaded['seconds']:.1f} s "
            f"({loaded['resources_per_s']:,.0f}/s, {loaded['errors']} failed bundles)"
        )
        if not ids.get("Patient") or not ids.get("Observation"):
            raise RuntimeError(
                f"the initial load stored no Patient or Observation; see {server.log_path}"
            )
        found["disk"] = disk_usage(database_url)
        found["load_peak_rss_mb"] = servers.peak_rss_mb(server.pid)
        if postgres_url:
            analyze(postgres_url)
        for operation in operations.build(data, ids, options.seed):
            if options.only and not operation.name.startswith(tuple(options.only)):
                continue
            found["operations"].append(
                run_operation(backend, operation, target, floor_services, options, work, results)
            )
        points = [p for operation in found["operations"] for p in operation["points"]]
        found["peak_rss_mb"] = max([found["load_peak_rss_mb"]] + [p["peak_rss_mb"] for p in points])
    finally:
        server.stop()
        if postgres_url:
            servers.drop_postgres_database(postgres_name)
    return found


def run_operation(
    backend: str,
    operation: Operation,
    target: Target,
    floor_services: FloorServices,
    options: Options,
    work: Path,
    results: dict,
) -> dict[str, Any]:
    """Probe the operation, then measure it at every concurrency (and profile it if asked)."""
    status, note, units = probe(target.server.port, operation)
    entry: dict[str, Any] = {
        "name": operation.name,
        "unit": operation.unit,
        "probe_status": status,
        "note": note,
        "points": [],
    }
    if note.startswith(("not supported", "server error")):
        _log(f"{backend}: {operation.name}: {note}")
        return entry
    request_file = load.write_requests(operation.requests, work)
    floor = floor_services.found
    for concurrency in options.concurrency:
        try:
            paired = (
                floor_services.raw_read(backend, concurrency)
                if operation.floor == "raw_read"
                else None
            )
            point = measure(target, request_file, concurrency, options.duration, units)
        except (OSError, RuntimeError) as error:
            entry["note"] = f"server error (at c={concurrency}: {error})"
            _log(f"{backend}: {operation.name}: {entry['note']}")
            return entry
        point["ratio_hello"] = _ratio(point["requests_per_s"], floor["hello"].get(concurrency))
        if paired is not None:
            point["paired_floor"] = paired
            point["ratio_floor"] = _ratio(point["requests_per_s"], paired)
        elif operation.floor == "bulk_load":
            bulk = floor.get("copy_jsonb" if backend == "postgresql" else "sqlite_insert")
            point["ratio_floor"] = point["units_per_s"] / bulk["rows_per_s"] if bulk else None
        entry["points"].append(point)
        _log(
            f"{backend}: {operation.name} c={concurrency}: {point['units_per_s']:,.0f} {operation.unit}/s, "
            f"p50 {point['p50_ms']:.2f} ms, p99 {point['p99_ms']:.2f} ms, errors {point['errors']}"
        )
    if operation.name.startswith(tuple(options.profile)) and options.profile:
        slug = "-".join(operation.name.split("(")[0].replace("_", "").replace("=", "-").split())
        stem = options.stem.removesuffix(f"-{backend}")
        results["profiles"][f"{backend}: {operation.name}"] = profiling.record(
            target.server.pid,
            lambda: measure(
                target, request_file, max(options.concurrency), options.duration, units
            ),
            options.results_dir / f"{stem}-{backend}-{slug}.pyspy.txt",
        )
    return entry


def probe(port: int, operation: Operation) -> tuple[int, str, float]:
    """Send the first request once: is the operation supported, and how many units does it carry?"""
    method, path, body = operation.requests[0]
    units = operation.units_per_request
    try:
        status, content = servers.request(method, port, path, body)
    except OSError as error:
        return 0, f"server error (no answer: {error})", units
    if 400 <= status < 500:
        return status, f"not supported yet ({status}: {_diagnostic(content)})", units
    if status >= 500:
        return status, f"server error ({status}: {_diagnostic(content)})", units
    if not operation.check:
        return status, "", units
    bundle = msgspec.json.decode(content)
    entries = bundle.get("entry", [])
    included = sum(1 for e in entries if e.get("search", {}).get("mode") == "include")
    if operation.check == "include" and included == 0:
        note = f"not supported yet ({status} but no included resources: the parameter is ignored)"
        return status, note, units
    if operation.check == "count":
        units = float(bundle.get("total", 0))
        return status, f"total {int(units):,}, {len(entries)} entries", units
    note = f"total {bundle.get('total', '?')}, first page {len(entries)} entries"
    return status, note + (f", {included} included" if included else ""), units


def measure(
    target: Target, request_file: Path, concurrency: int, duration: float, units: float
) -> dict[str, Any]:
    """One point: wrk for `duration` seconds, with CPU and peak RSS figures around it.

    `other_cpu_cores` is the machine's busy CPU not spent by the server, its database backends
    or wrk, in cores: other work sharing the machine (and PostgreSQL's background processes).
    """
    pid = target.server.pid
    _settle(pid)
    servers.reset_peak_rss(pid)
    cpu_before = servers.cpu_seconds(pid)
    db_before = servers.postgres_backend_cpu(target.postgres_url) if target.postgres_url else {}
    machine_before, started = servers.machine_busy_seconds(), time.monotonic()
    result = load.run(target.server.port, request_file, concurrency, duration)
    _settle(pid)
    server_cpu = servers.cpu_seconds(pid) - cpu_before
    db_after = servers.postgres_backend_cpu(target.postgres_url) if target.postgres_url else {}
    db_cpu = sum(cpu - db_before.get(p, 0.0) for p, cpu in db_after.items())
    machine_cpu, elapsed = (
        servers.machine_busy_seconds() - machine_before,
        time.monotonic() - started,
    )
    other_cpu = machine_cpu - server_cpu - db_cpu - result.driver_cpu_s
    work_units = max(result.requests - result.errors, 0) * units
    return {
        "concurrency": concurrency,
        "requests": result.requests,
        "seconds": result.seconds,
        "requests_per_s": result.per_second,
        "units_per_s": work_units / result.seconds if result.seconds else 0.0,
        "p50_ms": result.p50_ms,
        "p95_ms": result.p95_ms,
        "p99_ms": result.p99_ms,
        "mean_ms": result.mean_ms,
        "max_ms": result.max_ms,
        "errors": result.errors,
        "error_detail": result.error_detail,
        "server_cpu_s": server_cpu,
        "server_cpu_per_1k": 1000 * server_cpu / work_units if work_units else None,
        "db_cpu_per_1k": 1000 * db_cpu / work_units if work_units and target.postgres_url else None,
        "driver_cpu_s": result.driver_cpu_s,
        "other_cpu_cores": max(other_cpu, 0.0) / elapsed,
        "peak_rss_mb": servers.peak_rss_mb(pid),
    }


def load_data(port: int, data: datagen.DataSet) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """POST every load Bundle (LOAD_CONCURRENCY at a time); collect the server-assigned ids by type."""
    bundles = data.load_bundles()

    def post(bundle: bytes) -> tuple[int, bytes]:
        return servers.request("POST", port, "/fhir", bundle, timeout=600)

    started = time.perf_counter()
    with ThreadPoolExecutor(LOAD_CONCURRENCY) as pool:
        responses = list(pool.map(post, bundles))
    seconds = time.perf_counter() - started
    ids: dict[str, list[str]] = {}
    failures: list[str] = []
    for index, (status, content) in enumerate(responses):
        if status != 200:
            failures.append(f"Bundle {index}: {status} {_diagnostic(content)}")
            continue
        for entry in msgspec.json.decode(content)["entry"]:
            res_type, res_id = entry["response"]["location"].split("/")[:2]
            ids.setdefault(res_type, []).append(res_id)
    resources = sum(len(found) for found in ids.values())
    summary = {
        "bundles": len(bundles),
        "errors": len(failures),
        "failures": failures[:5],
        "resources": resources,
        "seconds": seconds,
        "resources_per_s": resources / seconds,
        "concurrency": LOAD_CONCURRENCY,
    }
    return summary, ids


def analyze(postgres_url: str) -> None:
    """VACUUM ANALYZE after the load, as autovacuum would in time: plans then do not depend on when it ran."""
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")


def disk_usage(database_url: str) -> dict[str, Any]:
    """Bytes on disk per current resource, with each table's share (indexes and TOAST included).

    SQLite's WAL is checkpointed first, so the figure is the main database file; the WAL's size
    before the checkpoint is reported beside it.
    """
    if database_url.startswith("sqlite:///"):
        path = Path(database_url[len("sqlite:///") :])
        wal = path.with_name(path.name + "-wal")
        extra = {"wal_bytes_before_checkpoint": wal.stat().st_size if wal.exists() else 0}
        with sqlite3.connect(path) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            count = connection.execute("SELECT COUNT(*) FROM resource").fetchone()[0]
            tables = connection.execute(
                "SELECT COALESCE(m.tbl_name, d.name), SUM(d.pgsize) FROM dbstat d "
                "LEFT JOIN sqlite_schema m ON m.name = d.name GROUP BY 1"
            ).fetchall()
        size = path.stat().st_size
    else:
        extra = {}
        with psycopg.connect(database_url, autocommit=True) as connection:
            tables = connection.execute(
                "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind = 'r'"
            ).fetchall()
            count = connection.execute("SELECT COUNT(*) FROM resource").fetchone()[0]
        size = sum(int(table_size) for _, table_size in tables)
    return {
        "bytes": size,
        "resources": count,
        "bytes_per_resource": size / count if count else None,
        "tables": dict(sorted(((name, int(b)) for name, b in tables), key=lambda item: -item[1])),
        **extra,
    }


def _resources(data: datagen.DataSet) -> list[bytes]:
    """Every resource of the data set as compact JSON, as the COPY floor writes it."""
    found = []
    for line in data.load_bundles() + data.ingest_bundles():
        for entry in msgspec.json.decode(line)["entry"]:
            found.append(msgspec.json.encode(entry["resource"]))
    return found


def _ratio(value: float, floor_point: dict | None) -> float | None:
    if not floor_point or not floor_point["requests_per_s"]:
        return None
    return value / floor_point["requests_per_s"]


def _settle(pid: int, timeout: float = 5.0) -> None:
    """Wait until the server has finished the work still in flight (its CPU stops moving)."""
    deadline = time.monotonic() + timeout
    previous = servers.cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(0.1)
        current = servers.cpu_seconds(pid)
        if current - previous < 0.005:
            return
        previous = current


def _diagnostic(content: bytes) -> str:
    try:
        issues = msgspec.json.decode(content).get("issue", [])
        return (issues[0].get("diagnostics") or issues[0].get("code", ""))[:120] if issues else ""
    except (msgspec.DecodeError, AttributeError):
        return content[:120].decode(errors="replace")


def _log(message: str) -> None:
    print(message, flush=True)
