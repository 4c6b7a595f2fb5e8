"""special: `near` on Location.position, `latitude|longitude|distance|units`.

Latitude and longitude are number rows `near$0`/`near$1` of one group; the match is the
bounding box of the circle (both databases lack portable trigonometry in SQL).
"""

from __future__ import annotations

import math

from ficus.search.parse import parse_number, split_escaped, split_values, unescape
from ficus.search.types.base import (
    Condition,
    Context,
    SearchType,
    Target,
    invalid,
    missing,
    register,
)
from ficus.spec import SearchParameter
from ficus.store.indexing import component_code, param_key

_KM_PER_DEGREE = 111.32
_UNITS_IN_KM = {"km": 1.0, "m": 0.001, "[mi_i]": 1.609344, "mi": 1.609344, "[mi_us]": 1.609347}
DEFAULT_DISTANCE_KM = 1.0


@register
class SpecialType(SearchType):
    name = "special"
    table = "number"

    def supports(self, param: SearchParameter, modifier: str | None) -> bool:
        return param.code == "near" and (modifier is None or modifier == "missing")

    def condition(self, ctx: Context, target: Target, param: SearchParameter, modifier: str | None, value: str, name: str) -> Condition:
        self.check(param, modifier, name)
        latitude_key = param_key(target.res_type, component_code(param.code, 0))
        longitude_key = param_key(target.res_type, component_code(param.code, 1))
        if modifier == "missing":
            return missing(ctx, target, "number", latitude_key, value, name)
        lat, lon = ctx.alias("c"), ctx.alias("c")
        alternatives, params = [], []
        for alternative in split_values(value):
            south, north, west, east = _box(alternative, name)
            alternatives.append(f"({lat}.value >= ? AND {lat}.value <= ? AND {lon}.value >= ? AND {lon}.value <= ?)")
            params += [south, north, west, east]
        sql = (
            f"{target.alias}.rid IN (SELECT {lat}.rid FROM idx_number {lat} JOIN idx_number {lon} "
            f"ON {lon}.rid = {lat}.rid AND {lon}.grp = {lat}.grp AND {lon}.pkey = ? "
            f"WHERE {lat}.pkey = ? AND ({' OR '.join(alternatives)}))"
        )
        return sql, [longitude_key, latitude_key, *params]


def _box(value: str, name: str) -> tuple[float, float, float, float]:
    parts = [unescape(p) for p in split_escaped(value, "|")]
    numbers = [parse_number(p) for p in parts[:3]]
    if len(parts) < 2 or any(n is None for n in numbers):
        raise invalid(name, f"'{value}' is not of the form latitude|longitude[|distance[|units]]")
    latitude, longitude = float(numbers[0].value), float(numbers[1].value)  # type: ignore[union-attr]
    distance = float(numbers[2].value) if len(numbers) > 2 else DEFAULT_DISTANCE_KM  # type: ignore[union-attr]
    units = parts[3] if len(parts) > 3 and parts[3] else "km"
    if units not in _UNITS_IN_KM:
        raise invalid(name, f"'{units}' is not a distance unit this server knows (km, m, [mi_i])")
    km = distance * _UNITS_IN_KM[units]
    lat_delta = km / _KM_PER_DEGREE
    lon_delta = km / (_KM_PER_DEGREE * max(math.cos(math.radians(latitude)), 1e-6))
    return latitude - lat_delta, latitude + lat_delta, longitude - lon_delta, longitude + lon_delta
