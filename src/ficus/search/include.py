"""`_include` and `_revinclude` (with `:iterate` and `*`).

All include and revinclude parameters of one iteration level are answered by ONE statement
over `idx_reference`: forward includes join the sources' reference rows to the targets' head
rows, reverse includes join the head rows of the resources found so far to the reference rows
pointing at them. Level 0 applies every parameter to the page's matches; each later level
applies the `:iterate` parameters to the resources the previous level added, until nothing new
turns up or `MAX_LEVELS` is reached. So a page with includes costs 1 statement per level, with
no per-resource queries.
"""

from __future__ import annotations

from dataclasses import dataclass

from ficus.outcome import FhirError
from ficus.spec import Definitions

MAX_LEVELS = 4  # level 0 plus three :iterate rounds
MAX_INCLUDED = 5000  # resources included into one page at most (reported when cut)


@dataclass(frozen=True)
class IncludeSpec:
    """One `_include`/`_revinclude` value. None means `*` for source type and parameter."""

    reverse: bool
    iterate: bool
    source_type: str | None
    param: str | None
    target_type: str | None

    @property
    def key(self) -> str:
        return ("_revinclude" if self.reverse else "_include") + (":iterate" if self.iterate else "")


def parse_includes(definitions: Definitions, pairs: list[tuple[str, str]]) -> tuple[list[IncludeSpec], list[tuple[str, str]]]:
    """Parse `_include[:iterate|:recurse]` and `_revinclude[...]` pairs.

    Returns the specs and the (key, value) pairs naming a parameter the source type does not
    know (the caller applies strict/lenient handling); malformed values are a 400."""
    specs: list[IncludeSpec] = []
    unknown: list[tuple[str, str]] = []
    for key, value in pairs:
        name, _, modifier = key.partition(":")
        if name not in ("_include", "_revinclude"):
            continue
        if modifier not in ("", "iterate", "recurse"):
            raise FhirError.of(400, "invalid", f"Unknown modifier ':{modifier}' on {name}", key)
        reverse, iterate = name == "_revinclude", bool(modifier)
        value = value.strip()
        if value == "*":
            specs.append(IncludeSpec(reverse, iterate, None, None, None))
            continue
        parts = value.split(":")
        if len(parts) not in (2, 3) or not all(parts):
            raise FhirError.of(400, "invalid", f"{key}={value!r} must be [type]:[parameter] or [type]:[parameter]:[target type]", key)
        source, param_name, target = parts[0], parts[1], parts[2] if len(parts) == 3 else None
        if not definitions.is_resource_type(source):
            raise FhirError.of(400, "invalid", f"{key}={value!r}: '{source}' is not a resource type", key)
        if target is not None and not definitions.is_resource_type(target):
            raise FhirError.of(400, "invalid", f"{key}={value!r}: '{target}' is not a resource type", key)
        if param_name == "*":
            specs.append(IncludeSpec(reverse, iterate, source, None, target))
            continue
        param = definitions.search_parameters_for(source).get(param_name)
        if param is None:
            unknown.append((key, value))
            continue
        if param.type != "reference":
            raise FhirError.of(400, "invalid", f"{key}={value!r}: '{param_name}' is a {param.type} parameter, not a reference", key)
        if target is not None and param.target and target not in param.target:
            raise FhirError.of(400, "invalid", f"{key}={value!r}: {source}.{param_name} cannot refer to {target}", key)
        specs.append(IncludeSpec(reverse, iterate, source, param_name, target))
    return specs, unknown


def level_ids(specs: list[IncludeSpec], sources: list[int]) -> tuple[str, list]:
    """A `SELECT rid` of what `specs` include from the resources `sources` (rids): one branch
    for the forward includes, one for the reverse ones, joined with UNION so each branch runs
    on its own index (a disjunction of IN-subqueries would scan `resource`)."""
    marks = ", ".join("?" * len(sources))
    branches: list[str] = []
    params: list = []
    forward = [s for s in specs if not s.reverse]
    reverse = [s for s in specs if s.reverse]
    if forward:
        # from the sources' reference rows (by rid) to the targets' head rows; `|| ''` keeps the
        # (res_type, param, ...) index from being preferred over the rid index
        groups, group_params = _groups(forward, "x.target_type", "x.res_type || ''")
        branches.append(
            "SELECT t.rid FROM idx_reference x CROSS JOIN resource t "
            f"WHERE x.rid IN ({marks}) AND ({groups}) "
            "AND t.res_type = x.target_type AND t.res_id = x.target_id"
        )
        params += [*sources, *group_params]
    if reverse:
        # from the found resources' head rows to the reference rows that point at them
        groups, group_params = _groups(reverse, "m.res_type", "x.res_type")
        branches.append(
            "SELECT x.rid FROM resource m CROSS JOIN idx_reference x "
            f"WHERE m.rid IN ({marks}) AND x.target_type = m.res_type AND x.target_id = m.res_id "
            f"AND ({groups})"
        )
        params += [*sources, *group_params]
    return " UNION ".join(branches), params


def _groups(specs: list[IncludeSpec], target_column: str, source_column: str) -> tuple[str, list]:
    groups: list[str] = []
    params: list = []
    for spec in specs:
        conditions = []
        if spec.source_type is not None:
            conditions.append(f"{source_column} = ?")
            params.append(spec.source_type)
        if spec.param is not None:
            conditions.append("x.param = ?")
            params.append(spec.param)
        if spec.target_type is not None:
            conditions.append(f"{target_column} = ?")
            params.append(spec.target_type)
        groups.append("(" + " AND ".join(conditions) + ")" if conditions else "1 = 1")
    return " OR ".join(groups), params
