"""Ficus: an HL7 FHIR R4 server and integration platform."""

__version__ = "0.1.0"
