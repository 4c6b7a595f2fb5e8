"""`python -m benchmarks.hl7v2`: HL7 v2 over MLLP, ACKed-and-stored and mapped-to-FHIR rates.

A real `ficus hl7 listen` process on a fresh database; senders are asyncio connections in this
process that, like sending systems, wait for each ACK before the next message. Three phases:
intake alone (`--mappers 0`: ACK once stored), mapping the stored backlog (the same listener
with mappers), and both at once. Each reports wall-clock rates and the CPU seconds per 1,000
messages of the listener and of its PostgreSQL backends (the machine may be shared: judge by
CPU). Writes benchmarks/results/<date>-hl7v2-<backend>.md and .json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg

from benchmarks import profiling, servers

RESULTS = Path(__file__).with_name("results")
START, END = b"\x0b", b"\x1c\x0d"
EVENTS = ("A01", "A08", "A08", "A03")  # admit, two updates, discharge: one visit per patient


def adt(number: int, patients: int, sender_count: int) -> tuple[int, bytes]:
    """Message `number` of the stream and the sender (connection) it goes on: the visit of
    patient number % patients, its event by position; one patient's messages share a sender."""
    patient = number % patients
    visit = number // (patients * len(EVENTS))
    event = EVENTS[(number // patients) % len(EVENTS)]
    rng = random.Random(patient)
    family = rng.choice(("Smith", "Jones", "Garcia", "Müller", "Nguyen", "Okafor", "Rossi", "Kowalski"))
    given = rng.choice(("Ann", "Ben", "Chloe", "David", "Eva", "Farid", "Grace", "Hugo"))
    sex = rng.choice("FM")
    birth = f"{rng.randint(1930, 2020)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    lane = patient % sender_count
    discharge = "|||||||||20240102093000+0100" if event == "A03" else ""
    text = "\r".join((
        f"MSH|^~\\&|ADT{lane}|GENHOSP|FICUS|FICUS|20240101120000+0100||ADT^{event}^ADT_A01|B{number}|P|2.5.1|||AL|NE",
        f"EVN|{event}|20240101120000+0100|||OP{rng.randint(1, 99)}^Clerk^Kim",
        f"PID|1||MRN{patient:07d}^^^GENHOSP^MR~{rng.randint(100000000, 999999999)}^^^USSSA^SS||{family}^{given}^Q^^^^L"
        f"||{birth}|{sex}|||{rng.randint(1, 999)} Main St^^Springfield^IL^627{rng.randint(10, 99)}^USA^H"
        f"||^PRN^PH^^1^217^{rng.randint(2000000, 9999999)}|||M||ACCT{patient:07d}",
        f"NK1|1|{family}^Sam|SPO^Spouse^HL70063|||^PRN^PH^^1^217^5550100",
        f"PV1|1|I|WARD{patient % 12}^{patient % 40}^{patient % 2 + 1}^GENHOSP||||1234^Attending^Ava^^^Dr|||MED"
        f"||||1|||1234^Attending^Ava^^^Dr||V{patient:07d}-{visit}^^^GENHOSP^VN|||||||||||||||||||||||||"
        f"20240101100000+0100{discharge}",
        f"AL1|1|DA|{rng.choice(('PEN^Penicillin', 'ASA^Aspirin', 'SULF^Sulfa'))}^L|MO",
    ))
    return lane, text.encode("utf-8")


@dataclass
class Phase:
    name: str
    messages: int
    seconds: float
    listener_cpu_s: float
    postgres_cpu_s: float
    machine_busy_s: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0

    def per_thousand(self, cpu: float) -> float:
        return cpu / self.messages * 1000 if self.messages else 0.0

    def row(self) -> dict:
        return {**asdict(self), "rate_per_s": round(self.rate, 1),
                "listener_cpu_s_per_1000": round(self.per_thousand(self.listener_cpu_s), 3),
                "postgres_cpu_s_per_1000": round(self.per_thousand(self.postgres_cpu_s), 3),
                "capacity_2_cores_per_s": round(self.capacity(), 1)}

    def capacity(self) -> float:
        """Messages per second two cores sustain at this CPU cost (listener + PostgreSQL)."""
        cpu = self.listener_cpu_s + self.postgres_cpu_s
        return 2 * self.messages / cpu if cpu else 0.0


async def send(port: int, stream: list[tuple[int, bytes]], connections: int) -> int:
    """Send the stream on `connections` connections (each its own senders' messages, in order),
    waiting for each ACK; returns how many were answered AA."""
    async def sender(lane: int) -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        accepted = 0
        buffer = b""
        try:
            for assigned, message in stream:
                if assigned % connections != lane:
                    continue
                writer.write(START + message + END)
                while END not in buffer:
                    chunk = await reader.read(65536)
                    if not chunk:
                        raise ConnectionError("the listener closed the connection")
                    buffer += chunk
                ack, _, buffer = buffer.partition(END)
                accepted += b"MSA|AA|" in ack
        finally:
            writer.close()
        return accepted

    return sum(await asyncio.gather(*(sender(lane) for lane in range(connections))))


class Listener:
    """`ficus hl7 listen` as a child process, with its CPU and its database's backends' CPU."""

    def __init__(self, database_url: str, mappers: int, log: Path) -> None:
        self.database_url = database_url
        self.port = servers.free_port()
        command = [sys.executable, "-m", "ficus.cli", "hl7", "listen", "--port", str(self.port),
                   "--mappers", str(mappers), "--database-url", database_url]
        with open(log, "ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the listener did not start; see {log}") from None
                time.sleep(0.1)

    def cpu(self) -> tuple[float, float, float]:
        postgres = (sum(servers.postgres_backend_cpu(self.database_url).values())
                    if self.database_url.startswith("postgresql") else 0.0)
        return servers.cpu_seconds(self.process.pid), postgres, servers.machine_busy_seconds()

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def counts(database_url: str) -> dict[str, int]:
    query = "SELECT status, COUNT(*) FROM hl7_message GROUP BY status"
    if database_url.startswith("postgresql"):
        with psycopg.connect(database_url, autocommit=True) as connection:
            return dict(connection.execute(query).fetchall())
    with sqlite3.connect(database_url.removeprefix("sqlite:///")) as connection:
        return dict(connection.execute(query).fetchall())


def measure(name: str, listener: Listener, work, messages: int) -> Phase:  # noqa: ANN001 - a callable
    before, started = listener.cpu(), time.monotonic()
    work()
    seconds, after = time.monotonic() - started, listener.cpu()
    return Phase(name, messages, seconds, *(round(b - a, 3) for a, b in zip(before, after, strict=True)))


def wait_mapped(database_url: str, timeout: float = 3600) -> None:
    deadline = time.monotonic() + timeout
    while counts(database_url).get("received", 0):
        if time.monotonic() > deadline:
            raise TimeoutError("messages were left unmapped")
        time.sleep(0.2)


def run(backend: str, messages: int, connections: int, mappers: int, patients: int, work: Path,
        intake_only: bool = False, profile: Path | None = None) -> dict:
    name = f"ficus_bench_hl7v2_{os.getpid()}"
    database_url = (servers.create_postgres_database(name) if backend == "postgresql"
                    else f"sqlite:///{work / 'ficus.db'}")
    log = work / "listener.log"
    first = [adt(n, patients, connections) for n in range(messages)]
    second = [adt(n, patients, connections) for n in range(messages, 2 * messages)]
    phases: list[Phase] = []
    profiles: dict[str, dict] = {}
    try:
        listener = Listener(database_url, 0, log)
        try:
            profiles["intake"] = _phase(phases, profile and profile.with_name(profile.name + "-intake.pyspy.txt"), lambda: measure(
                "ACK once stored (no mappers)", listener, lambda: _all_accepted(listener.port, first, connections),
                messages), listener)
        finally:
            listener.stop()
        if not intake_only:
            listener = Listener(database_url, mappers, log)
            try:
                profiles["mapping"] = _phase(phases, profile and profile.with_name(profile.name + "-mapping.pyspy.txt"),
                                             lambda: measure(f"map the stored backlog ({mappers} mappers)", listener,
                                                             lambda: wait_mapped(database_url), messages), listener)
                phases.append(measure(f"ACK while mapping ({mappers} mappers)", listener,
                                      lambda: _all_accepted(listener.port, second, connections), messages))
                phases.append(measure("... and mapping what is left", listener, lambda: wait_mapped(database_url),
                                      counts(database_url).get("received", 0)))
            finally:
                listener.stop()
        final = counts(database_url)
    finally:
        if backend == "postgresql":
            servers.drop_postgres_database(name)
    return {
        "date": datetime.date.today().isoformat(), "backend": backend, "messages": messages,
        "connections": connections, "mappers": mappers, "patients": patients,
        "message_bytes": sum(len(m) for _, m in first) // len(first), "cores": os.cpu_count(),
        "load_average_start": os.getloadavg()[0], "statuses": final, "phases": [p.row() for p in phases],
        "profiles": {name: found for name, found in profiles.items() if found},
    }


def _phase(phases: list[Phase], profile: Path | None, work, listener: Listener) -> dict:  # noqa: ANN001
    """Run one measured phase, under py-spy when `profile` names a file for its stacks."""
    def drive() -> dict:
        phase = work()
        phases.append(phase)
        return {"seconds": phase.seconds}

    if profile is None:
        drive()
        return {}
    summary = profiling.record(listener.process.pid, drive, profile)
    if "file" in summary:
        summary["file"] = profile.name  # beside the report
    return summary


def _all_accepted(port: int, stream: list[tuple[int, bytes]], connections: int) -> None:
    accepted = asyncio.run(send(port, stream, connections))
    if accepted != len(stream):
        raise RuntimeError(f"only {accepted} of {len(stream)} messages were answered AA")


def markdown(result: dict) -> str:
    lines = [
        f"HL7 v2 over MLLP, {result['backend']}, {result['messages']:,} ADT messages per phase "
        f"(~{result['message_bytes']} bytes, {result['patients']:,} patients), {result['connections']} connections, "
        f"{result['cores']} cores, load average at start {result['load_average_start']:.1f}",
        "",
        "| phase | messages | wall s | msg/s (wall) | listener CPU-s / 1,000 | PostgreSQL CPU-s / 1,000 "
        "| msg/s 2 cores sustain (by CPU) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for phase in result["phases"]:
        lines.append(
            f"| {phase['name']} | {phase['messages']:,} | {phase['seconds']:.1f} | {phase['rate_per_s']:,.0f} "
            f"| {phase['listener_cpu_s_per_1000']:.2f} | {phase['postgres_cpu_s_per_1000']:.2f} "
            f"| {phase['capacity_2_cores_per_s']:,.0f} |")
    lines.append("")
    lines.append(f"Final statuses: {result['statuses']}")
    for name, found in result.get("profiles", {}).items():
        if "inclusive" not in found:
            lines += ["", f"Profile of {name}: {found.get('error')}"]
            continue
        lines += ["", f"Profile of {name} (py-spy --gil, {found['samples']} samples; GIL busy "
                  f"{found['gil_busy']:.0%} of the phase): inclusive share of Ficus functions", ""]
        lines += [f"- {share:.0%} `{frame}`" for frame, share in found["inclusive"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hl7v2", description=__doc__)
    parser.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--messages", type=int, default=20_000, help="messages per phase")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--mappers", type=int, default=2)
    parser.add_argument("--patients", type=int, default=2_000)
    parser.add_argument("--intake-only", action="store_true", help="only the first phase (no mapping)")
    parser.add_argument("--profile", action="store_true",
                        help="sample the listener with py-spy in the intake and mapping phases")
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    date = datetime.date.today().isoformat()
    stem = args.results_dir / f"{date}-hl7v2-{args.backend}{'-intake' if args.intake_only else ''}"
    with tempfile.TemporaryDirectory(prefix="ficus-bench-hl7v2-") as work:
        result = run(args.backend, args.messages, args.connections, args.mappers, args.patients, Path(work),
                     args.intake_only, stem if args.profile else None)
    text = markdown(result)
    stem.with_suffix(".md").write_text(text + "\n")
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    print(text)
    print(f"written: {stem}.md and {stem}.json")


if __name__ == "__main__":
    main()
