"""The report: a Markdown summary (printed and written) and the full JSON, in benchmarks/results/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TARGET_NOTE = (
    "Targets are set for tier M on PostgreSQL with 2 cores; other tiers show them for orientation."
)


def write(results: dict[str, Any], directory: Path, stem: str) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    markdown_path, json_path = directory / f"{stem}.md", directory / f"{stem}.json"
    markdown_path.write_text(markdown(results))
    json_path.write_text(json.dumps(results, indent=1, default=str) + "\n")
    return markdown_path, json_path


def markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = [f"# Ficus benchmark: tier {meta['tier']}, {meta['date']}", ""]
    lines += _header(meta) + [""]
    lines += _floors(results["floors"], meta["concurrency"]) + [""]
    for backend, found in results["backends"].items():
        lines += _backend(backend, found) + [""]
    if "postgresql" in results["backends"]:
        lines += targets(results["backends"]["postgresql"]) + [""]
    for name, profile in results.get("profiles", {}).items():
        lines += _profile(name, profile) + [""]
    return "\n".join(lines).rstrip() + "\n"


def _header(meta: dict[str, Any]) -> list[str]:
    machine, versions, data = meta["machine"], meta["versions"], meta["dataset"]
    types = ", ".join(f"{count:,} {name}" for name, count in data["types"].items())
    return [
        f"- machine: {machine['cores']} cores ({machine['cpu']}), {machine['memory_gib']} GiB, Linux {machine['kernel']}",
        "- versions: " + ", ".join(f"{name} {version}" for name, version in versions.items()),
        (
            f"- data: `{meta['source']}` generator, seed {meta['seed']}, {data['patients']:,} patients = "
            f"{data['resources']:,} resources ({types}); ingest set {data['ingest_bundles']} Bundles / "
            f"{data['ingest_resources']:,} resources"
        ),
        (
            f"- driver: wrk, 1 thread, {meta['duration_s']:g} s per point, concurrency {', '.join(map(str, meta['concurrency']))}; "
            f"server processes (`--workers`) {meta.get('workers', 1)}; "
            f"whole run {meta.get('wall_seconds', 0) / 60:.1f} min; 1-min load average {meta['load_average_start']:.1f} "
            f"at start, {meta.get('load_average_end', 0):.1f} at end (anything else running shares the 2 cores)"
        ),
    ]


def _floors(floors: dict[str, Any], concurrency: list[int]) -> list[str]:
    lines = [
        "## Floors (same run)",
        "",
        "| floor | " + " | ".join(f"c={c}" for c in concurrency) + " |",
        "|---|" + "---:|" * len(concurrency),
    ]
    for key, label in (
        ("hello", "hello-world Starlette endpoint"),
        ("raw_read_postgresql", "raw psycopg read by id"),
        ("raw_read_sqlite", "raw sqlite3 read by id"),
    ):
        if key in floors:
            cells = [_rate_cell(_point(floors[key], c)) for c in concurrency]
            lines.append(f"| {label} (req/s (p99)) | " + " | ".join(cells) + " |")
    busiest = _point(floors.get("hello", {}), max(concurrency))
    if busiest:
        lines.append(
            f"\nAt hello-world c={max(concurrency)} wrk used {busiest['driver_cpu_s'] / busiest['seconds']:.0%} of a core "
            f"and the server process {busiest['server_cpu_s'] / busiest['seconds']:.0%} (of its one-core ceiling)."
        )
    lines.append("")
    for key, label in (
        ("copy_jsonb", "PostgreSQL binary COPY, jsonb + primary key"),
        ("copy_text", "PostgreSQL binary COPY, text + primary key"),
        ("sqlite_insert", "SQLite executemany INSERT in one transaction"),
    ):
        if key in floors:
            found = floors[key]
            lines.append(
                f"- {label}: **{found['rows_per_s']:,.0f} rows/s** ({found['rows']:,} rows)"
            )
    return lines


def _backend(backend: str, found: dict[str, Any]) -> list[str]:
    load, disk = found["load"], found["disk"]
    lines = [
        f"## Ficus on {backend}",
        "",
        f"- initial load: {load['resources']:,} resources in {load['bundles']} transaction Bundles, "
        f"{load['seconds']:.1f} s = **{load['resources_per_s']:,.0f} resources/s** at {load['concurrency']} clients"
        + (f", {load['errors']} Bundles failed" + _failures(load) if load["errors"] else ""),
        f"- on disk after the load: {disk['bytes'] / 2**20:,.1f} MiB = **{disk['bytes_per_resource']:,.0f} bytes/resource**"
        + _largest_tables(disk)
        if disk["bytes_per_resource"]
        else "- on disk: no resources",
        (
            f"- server peak RSS: {found.get('load_peak_rss_mb', 0):,.0f} MiB after the load, "
            f"{found.get('peak_rss_mb', 0):,.0f} MiB over the whole run"
        ),
        "",
        (
            "| operation | c | req/s | units/s | p50 ms | p95 ms | p99 ms | errors | server CPU-s/1k | db CPU-s/1k "
            "| peak RSS MiB | other CPU | × hello | × floor |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    notes = []
    for operation in found["operations"]:
        if not operation["points"]:
            lines.append(f"| {operation['name']} | | | | | | | | | | | | | {operation['note']} |")
            continue
        if operation["note"]:
            notes.append(f"- {operation['name']}: {operation['note']}")
        for point in operation["points"]:
            units = (
                f"{point['units_per_s']:,.0f} {operation['unit'][:3]}"
                if operation["unit"] != "requests"
                else ""
            )
            lines.append(
                f"| {operation['name']} | {point['concurrency']} | {point['requests_per_s']:,.0f} | {units} "
                f"| {point['p50_ms']:.2f} | {point['p95_ms']:.2f} | {point['p99_ms']:.2f} | {point['errors']} "
                f"| {_number(point['server_cpu_per_1k'])} | {_number(point['db_cpu_per_1k'])} "
                f"| {point['peak_rss_mb']:,.0f} | {_cores(point.get('other_cpu_cores'))} "
                f"| {_times(point.get('ratio_hello'))} | {_times(point.get('ratio_floor'))} |"
            )
    lines += [
        "",
        (
            "units/s: resources for ingest (Bundle entries) and `_summary=count` (matches counted); CPU-s per "
            "1,000 units. × hello: req/s over hello-world req/s at the same concurrency; × floor: read over "
            "the raw read measured just before it at the same concurrency, ingest resources/s over the "
            "bulk-load floor (COPY jsonb / SQLite INSERT). other CPU: cores "
            "busy with anything but the server, its database backends and wrk during the point (other "
            "work on the machine, PostgreSQL background processes); above ~0.3 the point is disturbed."
        ),
    ]
    if notes:
        lines += ["", "Probe answers (first request of each operation):", *notes]
    return lines


def targets(found: dict[str, Any]) -> list[str]:
    """The issue's PostgreSQL targets against what this run measured."""
    by_name = {op["name"].split(" (")[0]: op for op in found["operations"]}

    def points(prefix: str) -> list[dict]:
        return [p for name, op in by_name.items() if name.startswith(prefix) for p in op["points"]]

    rows = []
    ingest = points("ingest")
    if ingest:
        best = max(p["units_per_s"] for p in ingest)
        rows.append(
            ("ingest ≥ 5,000 resources/s", f"{best:,.0f} resources/s (best c)", best / 5000)
        )
    read32 = [p for p in points("read") if p["concurrency"] == 32]
    if read32:
        ratio = read32[0].get("ratio_floor")
        if ratio is not None:
            rows.append(
                (
                    "read by id ≥ 0.8 × raw-driver floor at 32 clients",
                    f"{ratio:.2f} × floor",
                    ratio / 0.8,
                )
            )
        rows.append(
            (
                "read by id p99 ≤ 12 ms at 32 clients",
                f"{read32[0]['p99_ms']:.1f} ms",
                12 / read32[0]["p99_ms"],
            )
        )
    token1 = [p for kind in ("frequent", "medium", "rare") for p in points(f"search token {kind}") if p["concurrency"] == 1]
    if token1:
        worst = max(p["p50_ms"] for p in token1)
        rows.append(
            (
                "token search first page p50 ≤ 5 ms (worst of frequent/medium/rare, c=1)",
                f"{worst:.1f} ms",
                5 / worst,
            )
        )
    counted = points("_summary=count")
    if counted:
        best = max(p["units_per_s"] for p in counted)
        rows.append(("`_summary=count` ≥ 3 M resources/s", f"{best:,.0f} resources/s", best / 3e6))
    if not rows:
        return []
    lines = [
        "## Targets (PostgreSQL)",
        "",
        TARGET_NOTE,
        "",
        "| target | measured | status |",
        "|---|---|---|",
    ]
    for label, measured, fraction in rows:
        status = (
            "met"
            if fraction >= 1
            else f"short: {fraction:.2f} of the target ({1 / fraction:.2f}× to go)"
        )
        lines.append(f"| {label} | {measured} | {status} |")
    return lines


def _profile(name: str, profile: dict[str, Any]) -> list[str]:
    lines = [f"## Profile: {name}", ""]
    if "error" in profile:
        return lines + [profile["error"]]
    point = profile["point"]
    lines += [
        (
            f"py-spy `--gil`, {profile['samples']:,} samples at c={point['concurrency']} "
            f"({point['requests_per_s']:,.0f} req/s while sampled, GIL busy ≈ {profile['gil_busy']:.0%} of the time); "
            f"stacks: `{Path(profile['file']).name}`"
        ),
        "",
        "| self % | innermost function | | inclusive % | Ficus function on the stack |",
        "|---:|---|---|---:|---|",
    ]
    for index in range(max(len(profile["self"]), len(profile["inclusive"]))):
        cells = [_share(profile["self"], index), _share(profile["inclusive"], index)]
        lines.append(f"| {cells[0]} | | {cells[1]} |")
    return lines


def _failures(load: dict[str, Any]) -> str:
    failures = load.get("failures")
    return f" ({'; '.join(failures)})" if failures else ""


def _largest_tables(disk: dict[str, Any]) -> str:
    tables = list(disk.get("tables", {}).items())[:4]
    text = ", ".join(f"{name} {size / disk['resources']:,.0f}" for name, size in tables)
    wal = disk.get("wal_bytes_before_checkpoint")
    return f" ({text}, ...)" + (f"; WAL before checkpoint {wal / 2**20:,.1f} MiB" if wal else "")


def _share(shares: list, index: int) -> str:
    if index >= len(shares):
        return " | "
    name, share = shares[index]
    return f"{share * 100:.1f} | `{name}`"


def _point(points: dict, concurrency: int) -> dict | None:
    return points.get(concurrency) or points.get(str(concurrency))


def _rate_cell(point: dict | None) -> str:
    if not point:
        return ""
    other = point.get("other_cpu_cores")
    return f"{point['requests_per_s']:,.0f} ({point['p99_ms']:.1f} ms" + (
        f"; other CPU {other:.1f})" if other is not None else ")"
    )


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.3g}"


def _cores(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _times(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}×"
