"""Business versions of code systems and value sets: ordering and wildcard patterns (`1.0.x`)."""

from __future__ import annotations

import re
from collections.abc import Iterable

_PIECES = re.compile(r"\d+|[^\d.\-+]+")


def version_key(version: str | None) -> tuple:
    """A sort key: numeric pieces compare as numbers, others as text; None sorts first."""
    if version is None:
        return ()
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in _PIECES.findall(version))


def latest(versions: Iterable[str | None]) -> str | None:
    found = list(versions)
    return max(found, key=version_key) if found else None


def is_wildcard(pattern: str | None) -> bool:
    return bool(pattern) and any(piece in ("x", "X", "*") for piece in pattern.split("."))  # type: ignore[union-attr]


def matches(pattern: str | None, version: str | None) -> bool:
    """Whether `version` satisfies `pattern` (exact, or `x`/`*` standing for one piece)."""
    if pattern is None or pattern == "":
        return True
    if version is None:
        return False
    if not is_wildcard(pattern):
        return pattern == version
    wanted = pattern.split(".")
    found = version.split(".")
    if wanted[-1] in ("x", "X", "*") and len(found) >= len(wanted):
        found = found[: len(wanted)]
    if len(wanted) != len(found):
        return False
    return all(w in ("x", "X", "*") or w == f for w, f in zip(wanted, found))


def best_match(pattern: str | None, versions: Iterable[str | None]) -> str | None:
    """The latest version satisfying `pattern` (any version when there is none)."""
    return latest(v for v in versions if matches(pattern, v))
