"""`python -m benchmarks.terminology`: the terminology service on a synthetic 350,000-concept code
system: load, `$validate-code` (in-process and over HTTP with wrk), `$expand` pages of an `is-a`
ValueSet (latency, and correctness of every page asked for against the generator's own list).

The code system is deterministic (seeded): an 8-ary is-a tree of `--concepts` codes `B000000`,
`B000001`, ... (the parent of concept i is (i - 1) // 8; depth 7), each with an English display
and, one in ten, a German designation. In-process figures call `Interactions.handle` as the HTTP
layer does (routing, parameters, the engine, the response resource; no JSON encoding); CPU is the
process time per 1,000 calls.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from benchmarks import load, servers

URL = "http://example.org/fhir/CodeSystem/bench"
VALUE_SET = "http://example.org/fhir/ValueSet/bench-is-a"
BRANCHING = 8
WORDS = ("acute", "chronic", "left", "right", "upper", "lower", "primary", "secondary", "partial", "complete")
NOUNS = ("finding", "disorder", "procedure", "lesion", "fracture", "infection", "deficiency", "reaction")
RESULTS = Path(__file__).with_name("results")


def code(index: int) -> str:
    return f"B{index:06d}"


def parent(index: int) -> int | None:
    return (index - 1) // BRANCHING if index else None


def display(rng: random.Random, index: int) -> str:
    return f"{rng.choice(WORDS).capitalize()} {rng.choice(WORDS)} {rng.choice(NOUNS)} {index}"


def subtree(root: int, concepts: int) -> list[int]:
    """`root` and every index below it (the generator's own view, not the server's)."""
    found, level = [], [root]
    while level:
        found.extend(level)
        level = [child for i in level for child in range(i * BRANCHING + 1, i * BRANCHING + BRANCHING + 1) if child < concepts]
    return found


def synthesise(database: Any, concepts: int, seed: int) -> tuple[float, list[str]]:
    """Load the code system through the loaders' bulk writer; (seconds, displays by index)."""
    from ficus.terminology.loaders.writer import BulkWriter, Release

    rng = random.Random(seed)
    displays = []
    release = Release(URL, "1.0.0", "Bench", f"Synthetic code system of {concepts:,} concepts", {"hierarchyMeaning": "is-a"})
    started = time.perf_counter()
    with BulkWriter(database, release) as writer:
        for index in range(concepts):
            shown = display(rng, index)
            displays.append(shown)
            writer.concept(code(index), shown)
            if index % 10 == 0:
                writer.designation(code(index), f"Befund {index}", "de")
            above = parent(index)
            if above is not None:
                writer.parent(code(index), code(above))
    return time.perf_counter() - started, displays


class InProcess:
    """Ficus's interactions over one database, called as the HTTP layer calls them."""

    def __init__(self, database_url: str) -> None:
        from ficus.api.interactions import Interactions
        from ficus.config import Settings
        from ficus.policy import Policy
        from ficus.spec import definitions
        from ficus.store.database import open_database
        from ficus.store.repository import Repository

        self.database = open_database(database_url)
        settings = Settings(database_url=database_url, base_url="http://bench/fhir")
        self.interactions = Interactions(settings, Repository(self.database, definitions(), settings.base_url), Policy())

    def call(self, method: str, url: str, body: dict | None = None) -> tuple[int, Any]:
        from ficus.api.exchange import FhirRequest

        headers = {"content-type": "application/fhir+json"} if body is not None else {}
        response = self.interactions.handle(FhirRequest.from_url(method, url, headers=headers, body=json.dumps(body).encode() if body else None))
        return response.status, response.body

    def close(self) -> None:
        self.database.close()


def timed(calls: list[Callable[[], Any]], repeat: int = 3) -> dict[str, float]:
    """Per-call wall latencies (best of `repeat` passes for the rate) and CPU per 1,000 calls."""
    best_rate, cpu_per_1k, latencies = 0.0, 0.0, []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        pass_latencies = []
        for call in calls:
            started = time.perf_counter()
            call()
            pass_latencies.append(time.perf_counter() - started)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if len(calls) / wall > best_rate:
            best_rate, cpu_per_1k, latencies = len(calls) / wall, cpu / len(calls) * 1000, pass_latencies
    latencies.sort()
    return {
        "per_second": best_rate, "cpu_s_per_1k": cpu_per_1k,
        "p50_ms": latencies[len(latencies) // 2] * 1000, "p95_ms": latencies[int(len(latencies) * 0.95)] * 1000,
    }


def validate_calls(server: InProcess, codes: list[str], displays: dict[str, str]) -> list[Callable[[], Any]]:
    def one(chosen: str) -> Callable[[], Any]:
        url = f"CodeSystem/$validate-code?url={quote(URL)}&code={chosen}&display={quote(displays[chosen])}"

        def call() -> None:
            status, body = server.call("GET", url)
            assert status == 200 and {"name": "result", "valueBoolean": True} in body["parameter"], body

        return call

    return [one(c) for c in codes]


def zipf_codes(rng: random.Random, concepts: int, count: int) -> list[str]:
    """Codes drawn with Zipf weights over a shuffled order (a few codes are most of the traffic)."""
    order = list(range(concepts))
    rng.shuffle(order)
    weights = [1 / (rank + 1) for rank in range(concepts)]
    return [code(i) for i in rng.choices(order, weights, k=count)]


def run_backend(database_url: str, concepts: int, seed: int, work: Path, http_seconds: float) -> dict[str, Any]:
    from ficus.store.database import open_database

    database = open_database(database_url)
    load_seconds, by_index = synthesise(database, concepts, seed)
    database.close()
    displays = {code(i): shown for i, shown in enumerate(by_index)}
    result: dict[str, Any] = {"load_seconds": load_seconds, "load_concepts_per_second": concepts / load_seconds}
    server = InProcess(database_url)
    rng = random.Random(f"{seed}:calls")
    value_set = {"resourceType": "ValueSet", "url": VALUE_SET, "status": "active",
                 "compose": {"include": [{"system": URL, "filter": [{"property": "concept", "op": "is-a", "value": code(0)}]}]}}
    status, _ = server.call("POST", "ValueSet", value_set)
    assert status == 201
    try:
        uniform = [code(i) for i in rng.sample(range(concepts), 5_000)]  # each read once: concept cache misses
        zipf = zipf_codes(rng, concepts, 5_000)
        result["validate_code_uniform"] = timed(validate_calls(server, uniform, displays), repeat=1)
        result["validate_code_zipf"] = timed(validate_calls(server, zipf, displays))
        vs_url = f"ValueSet/$validate-code?url={quote(VALUE_SET)}&system={quote(URL)}&code="
        result["vs_validate_code_zipf"] = timed([lambda c=c: server.call("GET", vs_url + c) for c in zipf[:2_000]])
        result["expand"] = expand_figures(server, concepts)
    finally:
        server.close()
    result["http"] = http_figures(database_url, work, zipf, displays, http_seconds)
    return result


def expand_figures(server: InProcess, concepts: int) -> dict[str, Any]:
    """First-page latency of the whole-tree and a mid-level `is-a`, and pages checked code by code."""
    expected_all = sorted(code(i) for i in range(concepts))
    mid = 9  # a concept at depth 2: about 1/64 of the tree under it
    expected_mid = sorted(code(i) for i in subtree(mid, concepts))
    figures: dict[str, Any] = {}

    def page(value_set_url: str, offset: int, count: int) -> tuple[int, list[str]]:
        status, body = server.call("GET", f"ValueSet/$expand?url={quote(value_set_url)}&offset={offset}&count={count}")
        assert status == 200, body
        return body["expansion"]["total"], [c["code"] for c in body["expansion"].get("contains", [])]

    inline = {"resourceType": "ValueSet", "url": "http://example.org/fhir/ValueSet/bench-mid", "status": "active",
              "compose": {"include": [{"system": URL, "filter": [{"property": "concept", "op": "is-a", "value": code(mid)}]}]}}
    status, _ = server.call("POST", "ValueSet", inline)
    assert status == 201
    for name, url, expected in (("whole tree", VALUE_SET, expected_all), ("depth-2 subtree", inline["url"], expected_mid)):
        started = time.perf_counter()
        page(url, 0, 100)
        cold_ms = (time.perf_counter() - started) * 1000
        checked = 0
        for offset in sorted({0, 1, 100, 4095, 4096, 4097, 8193, len(expected) // 2, max(len(expected) - 40, 0), len(expected) - 1, len(expected)}):
            total, codes = page(url, offset, 100)
            assert total == len(expected), (name, total, len(expected))
            assert codes == expected[offset:offset + 100], (name, offset)
            checked += 1
        first = timed([lambda u=url: page(u, 0, 100) for _ in range(200)])
        deep = timed([lambda u=url, n=len(expected): page(u, n // 2, 100) for _ in range(100)])
        figures[name] = {"total": len(expected), "pages_checked": checked, "cold_first_page_ms": cold_ms, "first_page": first, "middle_page": deep}
    return figures


def http_figures(database_url: str, work: Path, codes: list[str], displays: dict[str, str], seconds: float) -> dict[str, Any]:
    """wrk against `ficus serve` on the same database: `$validate-code` with Zipf-drawn codes."""
    if seconds <= 0 or not shutil.which("wrk"):
        return {}
    server = servers.start_ficus("ficus-terminology", database_url, work)
    try:
        requests = [("GET", f"/fhir/CodeSystem/$validate-code?url={quote(URL)}&code={c}&display={quote(displays[c])}", None) for c in codes]
        request_file = load.write_requests(requests, work)
        figures = {}
        for concurrency in (1, 8):
            cpu = servers.cpu_seconds(server.pid)
            measured = load.run(server.port, request_file, concurrency, seconds)
            cpu = servers.cpu_seconds(server.pid) - cpu
            figures[f"c={concurrency}"] = {
                "per_second": measured.per_second, "p50_ms": measured.p50_ms, "p99_ms": measured.p99_ms,
                "errors": measured.errors, "server_cpu_s_per_1k": cpu / max(measured.requests, 1) * 1000,
            }
        return figures
    finally:
        server.stop()


def markdown(results: dict[str, Any]) -> str:
    lines = [f"Synthetic code system: {results['concepts']:,} concepts, seed {results['seed']}, {results['date']}; "
             f"load average {results['load_average'][0]:.1f} at the start, {results['load_average'][1]:.1f} at the end "
             "(2 cores: above 2 the wall-clock rates are those of a shared machine, the CPU figures are not).", ""]
    lines += ["| measure | " + " | ".join(results["backends"]) + " |", "|---|" + "---:|" * len(results["backends"])]
    rows: dict[str, list[str]] = {}

    def add(name: str, backend_values: list[str]) -> None:
        rows[name] = backend_values

    backends = list(results["backends"].values())
    add("load (concepts/s)", [f"{b['load_concepts_per_second']:,.0f} ({b['load_seconds']:.1f} s)" for b in backends])
    for key, label in (("validate_code_uniform", "CodeSystem $validate-code, distinct uniform codes (each read from the database)"),
                       ("validate_code_zipf", "CodeSystem $validate-code, Zipf-drawn codes"),
                       ("vs_validate_code_zipf", "ValueSet (is-a of the root) $validate-code, Zipf-drawn codes")):
        add(f"{label}: calls/s · p50 ms · CPU-s/1k", [
            f"{b[key]['per_second']:,.0f} · {b[key]['p50_ms']:.3f} · {b[key]['cpu_s_per_1k']:.3f}" for b in backends])
    for name in backends[0]["expand"]:
        add(f"$expand {name}, first page of 100, first call (cold caches): ms", [
            f"{b['expand'][name]['cold_first_page_ms']:.1f}" for b in backends])
        for which in ("first_page", "middle_page"):
            add(f"$expand {name} ({backends[0]['expand'][name]['total']:,}), {which.replace('_', ' ')} of 100: p50 / p95 ms", [
                f"{b['expand'][name][which]['p50_ms']:.2f} / {b['expand'][name][which]['p95_ms']:.2f}" for b in backends])
    for concurrency in ("c=1", "c=8"):
        if all(concurrency in b["http"] for b in backends):
            add(f"HTTP $validate-code (wrk, {concurrency}): req/s · p50 / p99 ms · server CPU-s/1k", [
                f"{b['http'][concurrency]['per_second']:,.0f} · {b['http'][concurrency]['p50_ms']:.2f} / {b['http'][concurrency]['p99_ms']:.2f}"
                f" · {b['http'][concurrency]['server_cpu_s_per_1k']:.3f}" for b in backends])
    lines += [f"| {name} | " + " | ".join(values) + " |" for name, values in rows.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.terminology", description=__doc__.split("\n\n")[0])
    parser.add_argument("--concepts", type=int, default=350_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--backend", choices=("postgresql", "sqlite", "both"), default="both")
    parser.add_argument("--http-seconds", type=float, default=5.0, help="seconds per wrk point (0: no HTTP points)")
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="ficus-bench-tx-"))
    database_name = f"ficus_bench_{os.getpid()}_terminology"
    results: dict[str, Any] = {"concepts": args.concepts, "seed": args.seed, "date": datetime.date.today().isoformat(), "backends": {},
                               "load_average": [os.getloadavg()[0]]}
    try:
        for backend in ["postgresql", "sqlite"] if args.backend == "both" else [args.backend]:
            if backend == "sqlite":
                url = f"sqlite:///{work / 'terminology.db'}"
            else:
                url = servers.create_postgres_database(database_name)
            try:
                results["backends"][backend] = run_backend(url, args.concepts, args.seed, work, args.http_seconds)
            finally:
                if backend == "postgresql":
                    servers.drop_postgres_database(database_name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["load_average"].append(os.getloadavg()[0])
    text = markdown(results)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stem = args.results_dir / f"{results['date']}-terminology"
    stem.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    stem.with_suffix(".md").write_text("# Terminology benchmark\n\n" + text)
    print(text)
    print(f"written: {stem}.md and {stem}.json")


if __name__ == "__main__":
    main()
