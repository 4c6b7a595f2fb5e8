"""The terminology resources Ficus ships: the R4 core package and HL7 Terminology (THO).

`package_index()` reads every CodeSystem, ValueSet and ConceptMap of both tarballs once, keeps
each resource as compact JSON bytes (narrative dropped) and caches the lot as MessagePack in
`FICUS_CACHE_DIR` (first use ≈ 3 s, later ≈ 0.1 s). Resources are decoded only when asked for.
THO is the newer source: where both packages define a URL, THO ranks first.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tarfile
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec

from ficus.spec.package import R4_CORE_PACKAGE

THO_PACKAGE = Path(__file__).parent / "data" / "hl7.terminology.r4-7.0.1.tgz"
KINDS = ("CodeSystem", "ValueSet", "ConceptMap")
CACHE_FORMAT = 1
DECODED_LIMIT = 1024
# Later packages outrank earlier ones for the same canonical URL.
PACKAGES: tuple[tuple[str, Path], ...] = (("hl7.fhir.r4.core", R4_CORE_PACKAGE), ("hl7.terminology.r4", THO_PACKAGE))


@dataclass(frozen=True)
class PackageEntry:
    kind: str
    url: str
    version: str | None
    rank: int  # position of the package in PACKAGES
    blob: bytes

    @property
    def key(self) -> tuple[str, str, str | None, int]:
        return (self.kind, self.url, self.version, self.rank)

    def resource(self) -> dict:
        return msgspec.json.decode(self.blob)


class PackageIndex:
    """Canonical URL -> the package resources of that URL, per resource type."""

    def __init__(self, entries: list[PackageEntry]) -> None:
        self._by_url: dict[tuple[str, str], list[PackageEntry]] = {}
        for entry in entries:
            self._by_url.setdefault((entry.kind, entry.url), []).append(entry)
        self._decoded: OrderedDict[tuple, dict] = OrderedDict()
        self._lock = threading.Lock()

    def entries(self, kind: str, url: str) -> list[PackageEntry]:
        return self._by_url.get((kind, url), [])

    def resource(self, entry: PackageEntry) -> dict:
        """The decoded resource (shared: callers must not change it)."""
        with self._lock:
            found = self._decoded.get(entry.key)
            if found is not None:
                self._decoded.move_to_end(entry.key)
                return found
        found = entry.resource()
        with self._lock:
            self._decoded[entry.key] = found
            if len(self._decoded) > DECODED_LIMIT:
                self._decoded.popitem(last=False)
        return found

    def urls(self, kind: str) -> list[str]:
        return sorted(url for k, url in self._by_url if k == kind)

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_url.values())


def _cache_dir() -> Path:
    configured = os.environ.get("FICUS_CACHE_DIR")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ficus"


def _digest() -> str:
    digest = hashlib.sha256()
    for _, path in PACKAGES:
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}".encode())
    return digest.hexdigest()[:16]


def read_packages() -> Iterator[PackageEntry]:
    """Every CodeSystem, ValueSet and ConceptMap of the shipped packages."""
    for rank, (_, path) in enumerate(PACKAGES):
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:
                name = member.name
                if not member.isfile() or not name.endswith(".json") or name.count("/") != 1:
                    continue
                if not name.rsplit("/", 1)[1].startswith(KINDS):
                    continue
                data = archive.extractfile(member)
                if data is None:
                    continue
                try:
                    resource = msgspec.json.decode(data.read())
                except msgspec.DecodeError:
                    continue
                if not isinstance(resource, dict) or resource.get("resourceType") not in KINDS or not resource.get("url"):
                    continue
                resource.pop("text", None)
                yield PackageEntry(resource["resourceType"], resource["url"], resource.get("version"), rank, msgspec.json.encode(resource))


def _load() -> list[PackageEntry]:
    cache_file = _cache_dir() / f"terminology-{_digest()}-v{CACHE_FORMAT}.msgpack"
    try:
        rows = msgspec.msgpack.decode(cache_file.read_bytes())
        return [PackageEntry(*row) for row in rows]
    except (OSError, msgspec.DecodeError, TypeError):
        pass
    entries = list(read_packages())
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        rows = [[e.kind, e.url, e.version, e.rank, e.blob] for e in entries]
        with tempfile.NamedTemporaryFile(dir=cache_file.parent, delete=False) as handle:
            handle.write(msgspec.msgpack.encode(rows))
        os.replace(handle.name, cache_file)
    except OSError:
        pass  # a read-only cache directory only costs the compile at each start
    return entries


_LOCK = threading.Lock()


@functools.cache
def _index() -> PackageIndex:
    return PackageIndex(_load())


def package_index() -> PackageIndex:
    """The process-wide index (built on first use, thread-safe)."""
    with _LOCK:
        return _index()
