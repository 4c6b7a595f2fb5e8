"""UCUM unit expressions reduced to a factor over base units, so quantities in `mg` and `g` compare.

`canonical(value, code)` turns `5.4 mg` into `(0.0054, "g")` and `3 mmol/L` into `(3.0, "mol.m-3")`
(arbitrary units such as `[IU]` count as their own dimension). Offset scales (`Cel`, `[degF]`)
convert only on their own; other special units (pH, decibel, ...) have no canonical form.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from ficus.store.ucum_units import BASE_UNITS, PREFIXES, UNITS

UCUM_SYSTEM = "http://unitsofmeasure.org"
_PREFIXES_LONGEST_FIRST = sorted(PREFIXES, key=len, reverse=True)
_EXPONENT = re.compile(r"^(.*?)([+-]?\d+)$")
_OFFSETS = {"special:Cel": (1.0, 273.15), "special:degF": (5 / 9, 459.67 * 5 / 9), "special:degRe": (5 / 4, 273.15)}


@dataclass(frozen=True)
class Unit:
    """A unit as `factor` times a product of base dimensions."""

    factor: float
    dims: tuple[tuple[str, int], ...]

    def times(self, other: Unit, power: int = 1) -> Unit:
        dims = dict(self.dims)
        for name, exponent in other.dims:
            dims[name] = dims.get(name, 0) + exponent * power
        return Unit(self.factor * other.factor**power, _sorted_dims(dims))

    def power(self, exponent: int) -> Unit:
        return Unit(self.factor**exponent, _sorted_dims({n: e * exponent for n, e in self.dims}))

    @property
    def code(self) -> str:
        """A canonical UCUM-style code of the dimensions, e.g. `g.m-3`; `1` when dimensionless."""
        parts = [name if exponent == 1 else f"{name}{exponent}" for name, exponent in self.dims]
        return ".".join(parts) or "1"


_ONE = Unit(1.0, ())
_BASE_ORDER = {name: index for index, name in enumerate(BASE_UNITS)}


def _sorted_dims(dims: dict[str, int]) -> tuple[tuple[str, int], ...]:
    kept = [(n, e) for n, e in dims.items() if e]
    return tuple(sorted(kept, key=lambda item: (_BASE_ORDER.get(item[0], len(_BASE_ORDER)), item[0])))


def canonical(value: float, code: str) -> tuple[float, str] | None:
    """`value code` in canonical units, or None when `code` is not a UCUM unit we can convert."""
    found = conversion(code)
    if found is None:
        return None
    scale, offset, canonical_code = found
    if offset:
        return float(f"{value * scale + offset:.12g}"), canonical_code
    return float(f"{value * scale:.12g}"), canonical_code


@functools.lru_cache(maxsize=4096)
def conversion(code: str) -> tuple[float, float, str] | None:
    """(scale, offset, canonical code) of a unit, worked out once per code: a data set uses a few
    dozen units over and over."""
    special = UNITS.get(code)
    if special and special[1] in _OFFSETS:
        scale, offset = _OFFSETS[special[1]]
        return scale, offset, "K"
    unit = parse(code)
    if unit is None:
        return None
    return unit.factor, 0.0, unit.code


@functools.lru_cache(maxsize=4096)
def parse(code: str) -> Unit | None:
    """The unit a UCUM expression denotes, or None when it is not valid (or special) UCUM."""
    try:
        parser = _Parser(code)
        unit = parser.main_term()
        return unit if parser.done() else None
    except _Invalid:
        return None


class _Invalid(Exception):
    pass


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def done(self) -> bool:
        return self.pos == len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def main_term(self) -> Unit:
        if self.peek() == "/":
            self.pos += 1
            return _ONE.times(self.term(), -1)
        return self.term()

    def term(self) -> Unit:
        unit = self.component()
        while self.peek() in (".", "/") and not self.done():
            operator = self.text[self.pos]
            self.pos += 1
            unit = unit.times(self.component(), 1 if operator == "." else -1)
        return unit

    def component(self) -> Unit:
        char = self.peek()
        if char == "(":
            self.pos += 1
            unit = self.term()
            if self.peek() != ")":
                raise _Invalid
            self.pos += 1
            return unit
        if char == "{":
            self.annotation()
            return _ONE
        symbol = self.symbol()
        if self.peek() == "{":
            self.annotation()
        return _symbol_unit(symbol)

    def annotation(self) -> None:
        end = self.text.find("}", self.pos)
        if end < 0:
            raise _Invalid
        self.pos = end + 1

    def symbol(self) -> str:
        start, depth = self.pos, 0
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "[":
                depth += 1
            elif char == "]":
                depth -= 1
            elif depth == 0 and char in "./(){":
                break
            self.pos += 1
        if self.pos == start:
            raise _Invalid
        return self.text[start:self.pos]


def _symbol_unit(symbol: str) -> Unit:
    if symbol.isdigit():
        return Unit(float(symbol), ())
    unit = _atom_with_prefix(symbol)
    if unit is not None:
        return unit
    match = _EXPONENT.match(symbol)
    if match and match.group(1):
        unit = _atom_with_prefix(match.group(1))
        if unit is not None:
            return unit.power(int(match.group(2)))
    raise _Invalid


def _atom_with_prefix(symbol: str) -> Unit | None:
    atom = _atom(symbol)
    if atom is not None:
        return atom
    for prefix in _PREFIXES_LONGEST_FIRST:
        if symbol.startswith(prefix) and len(symbol) > len(prefix):
            rest = symbol[len(prefix):]
            entry = UNITS.get(rest)
            metric = rest in BASE_UNITS or (entry is not None and entry[0])
            atom = _atom(rest) if metric else None
            if atom is not None:
                return Unit(float(PREFIXES[prefix]) * atom.factor, atom.dims)
    return None


@functools.lru_cache(maxsize=1024)
def _atom(symbol: str) -> Unit | None:
    if symbol in BASE_UNITS:
        return Unit(1.0, ((symbol, 1),))
    entry = UNITS.get(symbol)
    if entry is None:
        return None
    _, kind, factor, expression = entry
    if kind == "arbitrary":
        return Unit(1.0, ((symbol, 1),))
    if kind:
        return None  # special units have no linear factor
    defined = _ONE if expression == "1" else parse(expression)
    if defined is None:
        return None
    return Unit(float(factor) * defined.factor, defined.dims)
