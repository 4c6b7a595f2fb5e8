"""Paging a search: keyset cursors over (sort keys..., rid), and over snapshot positions.

Why keyset first, and a stored snapshot only for sorted searches
---------------------------------------------------------------
A snapshot table needs the whole ordered result written out before the first page can be
shown, and turns a search into a write. A keyset cursor costs nothing on the first page: it is
the sort-key values and the `rid` of the row at the edge of a page, carried in the
`next`/`previous` links. The next page is "the first `_count` rows strictly after that
position" in the total order (sort keys..., rid), so:

- a resource created, deleted or updated between page fetches never makes another entry
  shift between pages: positions are values, not offsets, and `rid` (unique, never reused)
  breaks every tie. No entry is skipped and none is served twice.
- without `_sort` the order is `rid` alone, which never changes for a resource, so even an
  update of an entry already served cannot bring it back.
- with `_sort`, an entry's own sort value can change between page fetches (e.g.
  `_sort=_lastUpdated` and the resource is updated), so a sorted search of more than one page
  pages over a stored snapshot of its matches in order instead (`ficus.search.snapshot`, stored
  a chunk at a time as pages reach them); the cursor then holds the snapshot and a position in
  it, and the same rules apply to positions.

The cursor is opaque to clients (base64url of a small JSON array) and validated strictly: a
malformed or mismatched cursor is a 400 naming `_cursor`, never a 5xx.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import msgspec

from ficus.outcome import FhirError

CURSOR_PARAMETER = "_cursor"
_VERSION = 1
_SNAPSHOT_VERSION = 2


@dataclass(frozen=True)
class Cursor:
    """A position in a search's total order: rows strictly after (`forward`) or before it."""

    forward: bool
    keys: tuple[Any, ...]
    rid: int  # in a snapshot: the entry's position instead
    snapshot: int | None = None  # the stored snapshot a sorted search pages over

    def encode(self) -> str:
        direction = 1 if self.forward else 0
        if self.snapshot is not None:
            raw = msgspec.json.encode([_SNAPSHOT_VERSION, direction, self.rid, self.snapshot])
        else:
            raw = msgspec.json.encode([_VERSION, direction, self.rid, list(self.keys)])
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str, kinds: list[str]) -> Cursor:
        """Parse a cursor for a search whose sort keys hold values of `kinds` (text, integer,
        number); anything else is a 400."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            version, forward, rid, keys = msgspec.json.decode(raw)
            valid = forward in (0, 1) and _integer(rid) and (
                (version == _VERSION and isinstance(keys, list)) or (version == _SNAPSHOT_VERSION and _integer(keys))
            )
        except (binascii.Error, ValueError, TypeError, msgspec.DecodeError):
            valid = False
        if not valid:
            raise FhirError.of(400, "invalid", "_cursor is not a paging cursor issued by this server", CURSOR_PARAMETER)
        if version == _SNAPSHOT_VERSION:
            return cls(bool(forward), (), rid, keys)
        if len(keys) != len(kinds) or not all(k is None or _CHECKS[kind](k) for k, kind in zip(keys, kinds)):
            raise FhirError.of(400, "invalid", "_cursor does not belong to this search's _sort", CURSOR_PARAMETER)
        keys = [float(k) if kind == "number" and k is not None else k for k, kind in zip(keys, kinds)]
        return cls(bool(forward), tuple(keys), rid)


def _integer(value: Any) -> bool:
    return type(value) is int and -(2**63) < value < 2**63 - 1


_CHECKS = {
    "text": lambda v: type(v) is str,
    "integer": _integer,
    "number": lambda v: type(v) is float or _integer(v),
}


def keyset_condition(columns: list[tuple[str, bool]], cursor: Cursor, rid_column: str) -> tuple[str, list]:
    """SQL for "strictly after" (or before, for a backward cursor) `cursor` in the order
    `columns` (column, descending), then `rid_column` ascending; NULL keys sort last."""
    params: list = []
    alternatives: list[str] = []
    equal_prefix: list[str] = []
    equal_params: list = []
    for (column, descending), value in zip(columns, cursor.keys):
        beyond, beyond_params = _beyond(column, descending, value, cursor.forward)
        if beyond is not None:
            alternatives.append(" AND ".join([*equal_prefix, beyond]))
            params += [*equal_params, *beyond_params]
        if value is None:
            equal_prefix.append(f"{column} IS NULL")
        else:
            equal_prefix.append(f"{column} = ?")
            equal_params.append(value)
    alternatives.append(" AND ".join([*equal_prefix, f"{rid_column} {'>' if cursor.forward else '<'} ?"]))
    params += [*equal_params, cursor.rid]
    return "(" + " OR ".join(f"({a})" for a in alternatives) + ")", params


def _beyond(column: str, descending: bool, value: Any, forward: bool) -> tuple[str | None, list]:
    """Rows strictly beyond `value` in one key (NULLs last in both directions)."""
    if value is None:
        # forward: nothing sorts after NULL; backward: every non-NULL sorts before it
        return (None, []) if forward else (f"{column} IS NOT NULL", [])
    operator = ">" if forward != descending else "<"  # forward+ascending and backward+descending: '>'
    if forward:
        return f"({column} {operator} ? OR {column} IS NULL)", [value]
    return f"{column} {operator} ?", [value]
