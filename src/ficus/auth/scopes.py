"""SMART scopes (App Launch 1.0 and 2.x): parsing, narrowing and coverage.

A resource scope is `level/Type.permissions[?query]`: level `patient`, `user` or `system`;
type a resource type or `*`; permissions the v2 letters `cruds` (in that order) or the v1
words `read` (= `rs`), `write` (= `cud`) and `*` (= `cruds`); an optional v2 query restricts it
to resources matching search parameters (`patient/Observation.rs?category=...|laboratory`).
Every other scope (`openid`, `fhirUser`, `launch`, `launch/patient`, `offline_access`, ...) is
a plain name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

LEVELS = ("patient", "user", "system")
LETTERS = "cruds"
V1_ACTIONS = {"read": "rs", "write": "cud", "*": "cruds"}
_V1_NAMES = {frozenset(v): k for k, v in V1_ACTIONS.items()}
_RESOURCE_SCOPE = re.compile(r"^(patient|user|system)/([A-Z][A-Za-z]*|\*)\.([a-z*]+)(?:\?(.*))?$")
_V2_LETTERS = re.compile(r"^c?r?u?d?s?$")

LAUNCH_SCOPES = frozenset({"launch", "launch/patient", "launch/encounter"})
IDENTITY_SCOPES = frozenset({"openid", "fhirUser", "profile"})
REFRESH_SCOPES = frozenset({"offline_access", "online_access"})
CONTEXT_SCOPES = LAUNCH_SCOPES | IDENTITY_SCOPES | REFRESH_SCOPES
_LEVEL_PREFIXES = tuple(f"{level}/" for level in LEVELS)


@dataclass(frozen=True)
class ResourceScope:
    """One parsed resource scope."""

    level: str
    res_type: str  # a resource type or "*"
    permissions: frozenset[str]  # letters of "cruds"
    query: tuple[tuple[str, str], ...] = ()  # sorted (parameter, value) pairs; () = no restriction
    v1: bool = False

    def render(self) -> str:
        """The scope text, in v1 syntax when it was requested that way and still fits it."""
        if self.v1 and not self.query and self.permissions in _V1_NAMES:
            action = _V1_NAMES[self.permissions]
        else:
            action = "".join(letter for letter in LETTERS if letter in self.permissions)
        text = f"{self.level}/{self.res_type}.{action}"
        return f"{text}?{urlencode(self.query)}" if self.query else text

    def applies_to(self, level: str, res_type: str) -> bool:
        return self.level == level and self.res_type in ("*", res_type)

    def less_restricted_than(self, other: ResourceScope) -> bool:
        """Whether every resource `other`'s query admits is admitted by this scope's query."""
        return set(self.query) <= set(other.query)


def parse_resource_scope(text: str) -> ResourceScope | None:
    """The resource scope `text`, or None when it is not one (or is malformed)."""
    match = _RESOURCE_SCOPE.match(text)
    if not match:
        return None
    level, res_type, action, query = match.groups()
    if action in V1_ACTIONS:
        if query is not None:
            return None  # v1 scopes have no query
        return ResourceScope(level, res_type, frozenset(V1_ACTIONS[action]), (), v1=True)
    if not action or not _V2_LETTERS.match(action):
        return None
    pairs: tuple[tuple[str, str], ...] = ()
    if query is not None:
        pairs = tuple(sorted(parse_qsl(query, keep_blank_values=True)))
        if not pairs or any(not key or not value for key, value in pairs):
            return None
    return ResourceScope(level, res_type, frozenset(action), pairs)


def split_scope(scope: str | Iterable[str] | None) -> list[str]:
    """Scope text (space separated) or a collection of names -> names, in order, without repeats."""
    names = scope.split() if isinstance(scope, str) else list(scope or [])
    return list(dict.fromkeys(names))


def join_scope(names: Iterable[str]) -> str:
    return " ".join(dict.fromkeys(names))


def resource_scopes(scope: str | Iterable[str] | None) -> list[ResourceScope]:
    return [parsed for name in split_scope(scope) if (parsed := parse_resource_scope(name)) is not None]


def narrow(requested: str | Iterable[str] | None, allowed: str | Iterable[str] | None, levels: Iterable[str] = LEVELS) -> list[str]:
    """The requested scopes cut down to what `allowed` permits (names kept in request order).

    A resource scope keeps the permissions that allowed scopes of its level, for its type (or
    `*`) and with the same or a looser query grant; it disappears when none remain. Other
    scopes are kept only when allowed verbatim. Scopes of other `levels` are dropped.
    """
    allowed_names = split_scope(allowed)
    allowed_set = set(allowed_names)
    allowed_resources = resource_scopes(allowed_names)
    levels = set(levels)
    granted: list[str] = []
    for name in split_scope(requested):
        parsed = parse_resource_scope(name)
        if parsed is None:
            if name in allowed_set and not name.startswith(_LEVEL_PREFIXES):
                granted.append(name)
            continue
        if parsed.level not in levels:
            continue
        permitted: set[str] = set()
        for candidate in allowed_resources:
            if candidate.applies_to(parsed.level, parsed.res_type) and candidate.less_restricted_than(parsed):
                permitted |= candidate.permissions
        kept = parsed.permissions & permitted
        if kept:
            granted.append(ResourceScope(parsed.level, parsed.res_type, frozenset(kept), parsed.query, parsed.v1).render())
    return list(dict.fromkeys(granted))


def covered(requested: str | Iterable[str] | None, granted: str | Iterable[str] | None) -> bool:
    """Whether every requested scope is within `granted` (no escalation, e.g. on refresh)."""
    for name in split_scope(requested):
        kept = narrow([name], granted)
        if not kept or not _same(name, kept[0]):
            return False
    return True


def _same(a: str, b: str) -> bool:
    parsed_a, parsed_b = parse_resource_scope(a), parse_resource_scope(b)
    if parsed_a is None or parsed_b is None:
        return a == b
    return (parsed_a.level, parsed_a.res_type, parsed_a.permissions, parsed_a.query) == (
        parsed_b.level, parsed_b.res_type, parsed_b.permissions, parsed_b.query
    )


def wants_refresh(scope: str | Iterable[str] | None) -> str | None:
    """`offline_access` or `online_access` when the scope asks for a refresh token."""
    names = set(split_scope(scope))
    if "offline_access" in names:
        return "offline_access"
    if "online_access" in names:
        return "online_access"
    return None
