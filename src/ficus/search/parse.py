"""The grammar of search parameter names and values (hl7.org/fhir/R4/search.html).

Names: `code[:modifier]`, chains `ref[:Type].name...`, reverse chains `_has:Type:ref:name`.
Values: `,` separates alternatives, `|` and `$` separate parts, `\\` escapes all three.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
_PREFIX = re.compile(r"^(eq|ne|gt|lt|ge|le|sa|eb|ap)(?=[0-9+\-.])")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


@dataclass(frozen=True)
class Simple:
    """`code[:modifier]` on the resource itself."""

    code: str
    modifier: str | None


@dataclass(frozen=True)
class Chain:
    """`code[:Type].rest`: resources whose reference `code` points at a match of `rest`."""

    code: str
    target_type: str | None
    rest: Key


@dataclass(frozen=True)
class Has:
    """`_has:Type:ref:rest`: resources that a `Type` matching `rest` points at through `ref`."""

    source_type: str
    reference: str
    rest: Key


Key = Simple | Chain | Has


def parse_key(key: str) -> Key:
    """The parsed parameter name; ValueError when it is malformed."""
    if key.startswith("_has:"):
        parts = key.split(":", 3)
        if len(parts) < 4 or not all(parts[1:]):
            raise ValueError(f"'{key}' is not of the form _has:Type:reference:parameter")
        return Has(parts[1], parts[2], parse_key(parts[3]))
    head, dot, rest = key.partition(".")
    if dot:
        code, _, target_type = head.partition(":")
        if not code or not rest:
            raise ValueError(f"'{key}' is not a valid chained parameter")
        return Chain(code, target_type or None, parse_key(rest))
    code, _, modifier = key.partition(":")
    if not code:
        raise ValueError(f"'{key}' has no parameter name")
    return Simple(code, modifier or None)


def split_escaped(text: str, separator: str) -> list[str]:
    """Split on `separator` where it is not escaped; escapes stay in the parts."""
    parts, current, index = [], [], 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            current.append(text[index:index + 2])
            index += 2
            continue
        if char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    parts.append("".join(current))
    return parts


def unescape(text: str) -> str:
    return re.sub(r"\\([\\,|$])", r"\1", text)


def split_values(value: str) -> list[str]:
    """The comma-separated alternatives of a value, still escaped for `|` and `$`."""
    return split_escaped(value, ",")


def split_prefix(value: str) -> tuple[str, str]:
    match = _PREFIX.match(value)
    return (match.group(1), value[2:]) if match else ("eq", value)


@dataclass(frozen=True)
class SearchNumber:
    """A number with the range its precision implies (`100` is [99.5, 100.5))."""

    value: Decimal
    low: Decimal
    high: Decimal


def parse_number(text: str) -> SearchNumber | None:
    text = text.strip()
    if not _NUMBER.match(text):
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    exponent = number.as_tuple().exponent
    if not isinstance(exponent, int):
        return None
    half = Decimal(5).scaleb(exponent - 1)
    return SearchNumber(number, number - half, number + half)


def like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
