"""Extended operations (`$name`): a registry that modules add themselves to.

An operation module defines a handler and registers it with `@operation(...)`; the REST layer
routes `[base]/$name`, `[base]/[type]/$name` and `[base]/[type]/[id]/$name` here, and the
CapabilityStatement lists what is registered.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ficus.outcome import FhirError

if TYPE_CHECKING:
    from ficus.api.exchange import FhirRequest, FhirResponse
    from ficus.api.interactions import Interactions
    from ficus.store.repository import Writer


@dataclass
class Invocation:
    """One call of an operation: where it was invoked and with which parameters."""

    interactions: Interactions
    request: FhirRequest
    res_type: str | None
    res_id: str | None
    parameters: list[tuple[str, Any]]
    writer: Writer | None = None

    def get(self, name: str) -> Any:
        """The first value of parameter `name` (a string from the URL, or a Parameters value)."""
        for key, value in self.parameters:
            if key == name:
                return value
        return None

    def get_all(self, name: str) -> list[Any]:
        return [value for key, value in self.parameters if key == name]


Handler = Callable[[Invocation], "FhirResponse"]


@dataclass(frozen=True)
class Operation:
    name: str
    handler: Handler
    system: bool = False
    type_level: bool = False
    instance: bool = False
    resource_types: frozenset[str] = field(default_factory=frozenset)  # empty: every type
    affects_state: bool = False
    definition: str | None = None  # canonical URL of its OperationDefinition


REGISTRY: dict[str, list[Operation]] = {}
BUILT_IN_MODULES = ("ficus.operations.reindex", "ficus.terminology.operations", "ficus.terminology.mapping.operation")


def load_operations() -> None:
    """Import the modules whose handlers register themselves."""
    for module in BUILT_IN_MODULES:
        importlib.import_module(module)


def operation(
    name: str, *, system: bool = False, type_level: bool = False, instance: bool = False,
    resource_types: tuple[str, ...] = (), affects_state: bool = False, definition: str | None = None,
) -> Callable[[Handler], Handler]:
    """Register the decorated handler as `$name` at the given levels."""

    def register(handler: Handler) -> Handler:
        REGISTRY.setdefault(name, []).append(
            Operation(name, handler, system, type_level, instance, frozenset(resource_types), affects_state, definition)
        )
        return handler

    return register


def find_operation(name: str, res_type: str | None, instance: bool) -> Operation:
    """The registered operation for this invocation level, or a 404/405 FhirError."""
    candidates = REGISTRY.get(name, [])
    if not candidates:
        raise FhirError.of(404, "not-supported", f"Operation ${name} is not supported")
    for candidate in candidates:
        if candidate.resource_types and res_type not in candidate.resource_types:
            continue
        if (instance and candidate.instance) or (res_type and not instance and candidate.type_level) or (
            res_type is None and candidate.system
        ):
            return candidate
    where = f"{res_type}/[id]" if instance else res_type or "the system level"
    raise FhirError.of(405, "not-supported", f"Operation ${name} cannot be invoked on {where}")


def invocation_parameters(request: FhirRequest) -> list[tuple[str, Any]]:
    """Parameters from the query string, plus a POSTed Parameters resource's values."""
    from ficus import fhirjson

    parameters: list[tuple[str, Any]] = [(k, v) for k, v in request.query if not k.startswith("_")]
    body = request.body
    if request.method == "POST" and body:
        document = body if isinstance(body, dict) else fhirjson.decode(body)
        if not isinstance(document, dict) or document.get("resourceType") != "Parameters":
            raise FhirError.of(400, "invalid", "An operation's POST body must be a Parameters resource")
        for index, parameter in enumerate(document.get("parameter", [])):
            if not isinstance(parameter, dict) or not isinstance(parameter.get("name"), str):
                raise FhirError.of(400, "invalid", "Each parameter needs a name", f"Parameters.parameter[{index}]")
            parameters.append((parameter["name"], _parameter_value(parameter)))
    return parameters


def _parameter_value(parameter: dict) -> Any:
    if "resource" in parameter:
        return parameter["resource"]
    if "part" in parameter:
        return parameter
    for key, value in parameter.items():
        if key.startswith("value"):
            return value
    return None
