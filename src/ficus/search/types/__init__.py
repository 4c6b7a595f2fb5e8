"""The search parameter types, one module each, registered under their FHIR type name."""

from ficus.search.types import (  # noqa: F401
    composite,
    date,
    number,
    quantity,
    reference,
    special,
    string,
    token,
    uri,
)
from ficus.search.types.base import REGISTRY, Condition, Context, SearchType, Target

__all__ = ["REGISTRY", "Condition", "Context", "SearchType", "Target"]
