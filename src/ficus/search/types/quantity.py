"""quantity: `[prefix]number[|system|code]`. With the UCUM system the value is compared in
canonical units (`5|http://unitsofmeasure.org|mg` finds `0.005 g`); with another system the
code must match exactly; `number||code` matches the code or the unit text."""

from __future__ import annotations

from ficus.search.parse import parse_number, split_escaped, split_prefix, unescape
from ficus.search.types.base import Condition, Context, SearchType, invalid, register
from ficus.search.types.number import number_condition
from ficus.spec import SearchParameter
from ficus.store import ucum


@register
class QuantityType(SearchType):
    name = "quantity"
    table = "quantity"

    def match(self, ctx: Context, alias: str, param: SearchParameter, modifier: str | None, value: str, name: str) -> Condition:
        parts = [unescape(p) for p in split_escaped(value, "|")]
        if len(parts) == 2:
            parts = [parts[0], "", parts[1]]
        if len(parts) not in (1, 3):
            raise invalid(name, f"'{value}' is not of the form [prefix]number|system|code")
        prefix, text = split_prefix(parts[0])
        number = parse_number(text)
        if number is None:
            raise invalid(name, f"'{value}' does not start with a valid number for {name}")
        system, code = (parts[1], parts[2]) if len(parts) == 3 else ("", "")
        if system == ucum.UCUM_SYSTEM and code:
            converted = _conversion(code)
            if converted is not None:
                scale, offset, canonical_code = converted
                sql, values = number_condition(f"{alias}.cvalue", f"{alias}.chigh", prefix, number, scale, offset)
                return f"({alias}.ccode = ? AND {sql})", [canonical_code, *values]
        sql, values = number_condition(f"{alias}.value", f"{alias}.high", prefix, number)
        if system and code:
            return f"({alias}.code = ? AND {alias}.system = ? AND {sql})", [code, system, *values]
        if code:
            return f"(({alias}.code = ? OR {alias}.unit = ?) AND {sql})", [code, code, *values]
        if system:
            return f"({alias}.system = ? AND {sql})", [system, *values]
        return sql, values


def _conversion(code: str) -> tuple[float, float, str] | None:
    """(scale, offset, canonical code) turning a value in `code` into canonical units."""
    zero, one = ucum.canonical(0.0, code), ucum.canonical(1.0, code)
    if zero is None or one is None:
        return None
    return one[0] - zero[0], zero[0], one[1]
