"""`python -m benchmarks`: run the suite; write benchmarks/results/<date>-<tier>[-source][-backend].md and .json."""

from __future__ import annotations

import argparse
import datetime
from pathlib import Path

from benchmarks import report, suite
from benchmarks.datagen import TIERS

DEFAULT_DURATION = {"S": 3.0, "M": 10.0, "L": 10.0}
RESULTS = Path(__file__).with_name("results")


def parse(argv: list[str] | None = None) -> suite.Options:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--tier", choices=sorted(TIERS), default="S", help="S: 100 patients, M: 1,000, L: 10,000"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--backend", choices=("postgresql", "sqlite", "both"), default="both")
    parser.add_argument(
        "--duration", type=float, help="whole seconds per point (default: S 3, M and L 10)"
    )
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated client counts")
    parser.add_argument(
        "--source",
        choices=("builtin", "synthea"),
        default="builtin",
        help="data generator (synthea needs the bench-synthea extra)",
    )
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated operation name prefixes to run (e.g. read,ingest)",
    )
    parser.add_argument(
        "--profile",
        default="",
        help="comma-separated operation name prefixes to profile with py-spy",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="server processes (ficus serve --workers, the floor app alike)"
    )
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    parser.add_argument(
        "--keep-work", action="store_true", help="keep the temporary directory (logs, SQLite files)"
    )
    args = parser.parse_args(argv)
    backends = ["postgresql", "sqlite"] if args.backend == "both" else [args.backend]
    parts = [datetime.date.today().isoformat(), args.tier]
    parts += [] if args.source == "builtin" else [args.source]
    parts += [] if args.backend == "both" else [args.backend]
    parts += [] if args.workers == 1 else [f"w{args.workers}"]
    return suite.Options(
        tier=args.tier,
        seed=args.seed,
        source=args.source,
        backends=backends,
        duration=args.duration or DEFAULT_DURATION[args.tier],
        concurrency=[int(c) for c in args.concurrency.split(",") if c.strip()],
        only=_names(args.only),
        profile=_names(args.profile),
        results_dir=args.results_dir,
        stem="-".join(parts),
        keep_work=args.keep_work,
        workers=args.workers,
    )


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def main(argv: list[str] | None = None) -> None:
    options = parse(argv)
    results = suite.run(options)
    markdown_path, json_path = report.write(results, options.results_dir, options.stem)
    print()
    print(report.markdown(results))
    print(f"written: {markdown_path} and {json_path}")


if __name__ == "__main__":
    main()
