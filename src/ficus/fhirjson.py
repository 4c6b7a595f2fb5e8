"""FHIR JSON in and out: decimals keep their exact text (`72.50` stays `72.50`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

from ficus.outcome import FhirError

_decoder = msgspec.json.Decoder(float_hook=Decimal)
_encoder = msgspec.json.Encoder(decimal_format="number")


def decode(data: bytes | str) -> Any:
    """Parse JSON text; floats become `Decimal` so their precision survives a round trip."""
    try:
        return _decoder.decode(data)
    except msgspec.DecodeError as error:
        raise FhirError.of(400, "structure", f"The body is not valid JSON: {error}") from None
    except RecursionError:
        raise too_deep() from None


def too_deep() -> FhirError:
    return FhirError.of(400, "structure", "The JSON is nested too deeply to be a FHIR resource")


def encode(value: Any) -> bytes:
    return _encoder.encode(value)


def encode_pretty(value: Any) -> bytes:
    return msgspec.json.format(_encoder.encode(value), indent=2)
