"""Print the tx-ecosystem pass rate and each failure's first difference:
`python -m tests.terminology.report [filter]` (SQLite in a temporary directory)."""

from __future__ import annotations

import sys
import tempfile
import time

from starlette.testclient import TestClient
from tests.terminology.test_tx_ecosystem import run_suite

import ficus.terminology.operations  # noqa: F401
from ficus.app import create_app
from ficus.config import Settings


def main() -> None:
    wanted = sys.argv[1] if len(sys.argv) > 1 else ""
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(database_url=f"sqlite:///{folder}/ficus.db", base_url="http://testserver/fhir", auth="off")
        with TestClient(create_app(settings), base_url="http://testserver/fhir/") as client:
            started = time.perf_counter()
            total, failures = run_suite(client)
            elapsed = time.perf_counter() - started
    for key, difference in sorted(failures.items()):
        if wanted in key:
            print(f"{key}: {difference}")
    passed = total - len(failures)
    print(f"{passed}/{total} passed ({100 * passed / total:.1f}%) in {elapsed:.1f} s")


if __name__ == "__main__":
    main()
