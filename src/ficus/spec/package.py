"""Read conformance resources out of a FHIR NPM package tarball."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

R4_CORE_PACKAGE = Path(__file__).parent / "data" / "hl7.fhir.r4.core-4.0.1.tgz"


def iter_package_resources(path: Path = R4_CORE_PACKAGE) -> Iterator[dict]:
    """Yield every JSON resource in the package's `package/` folder (examples excluded)."""
    with tarfile.open(path, "r:gz") as archive:
        for member in archive:
            name = member.name
            if not member.isfile() or not name.endswith(".json"):
                continue
            if name.count("/") != 1 or name.rsplit("/", 1)[1].startswith((".", "package.json")):
                continue
            data = archive.extractfile(member)
            if data is not None:
                resource = json.loads(data.read())
                if isinstance(resource, dict) and "resourceType" in resource:
                    yield resource
