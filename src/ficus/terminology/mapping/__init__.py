"""The mapping assistant: candidate standard codes for local codes, a review step, and the
accepted mappings as a stored ConceptMap (docs/terminology-mapping.md)."""
