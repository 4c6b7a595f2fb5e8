"""The mapping assistant: ranked candidate standard codes for local codes, from the code systems
this server knows (loaded releases first, then stored and shipped CodeSystems with content).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ficus.store.repository import Repository
from ficus.terminology.mapping.index import INDEXES, CandidateIndex
from ficus.terminology.mapping.score import Candidate, LocalConcept, rank
from ficus.terminology.service import service_for

# Short names a person may give for the usual targets.
TARGETS = {
    "loinc": "http://loinc.org",
    "snomed": "http://snomed.info/sct",
    "rxnorm": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "icd10cm": "http://hl7.org/fhir/sid/icd-10-cm",
}
MAX_CANDIDATES = 20


class MappingError(ValueError):
    """A request the assistant cannot serve (unknown target, nothing to map)."""

    def __init__(self, status: int, message: str, where: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.where = where


@dataclass
class Suggestion:
    """A local code and its candidates, best first."""

    local: LocalConcept
    candidates: list[Candidate]


class MappingAssistant:
    """Proposes candidates over the code systems of one repository's terminology service."""

    def __init__(self, repository: Repository) -> None:
        self.repository = repository
        self.service = service_for(repository)

    def target(self, system: str, version: str | None = None) -> CandidateIndex:
        """The candidate index of a target code system (by URL or short name)."""
        url = TARGETS.get(system.lower(), system)
        provider = self.service.context().code_system(url, version)
        if provider is None or provider.content not in ("complete", "fragment"):
            named = f"{url}|{version}" if version else url
            raise MappingError(404, f"The target code system {named} is not available with its content: load it first "
                                    "(ficus terminology load ...) or store a complete CodeSystem", "targetSystem")
        return INDEXES.get(provider)

    def suggest(self, local_concepts: Iterable[LocalConcept], target_system: str, count: int = 3,
                version: str | None = None) -> list[Suggestion]:
        index = self.target(target_system, version)
        count = max(1, min(count, MAX_CANDIDATES))
        return [Suggestion(local, rank(index, local, count)) for local in local_concepts]

    def known_systems(self) -> set[str]:
        """Code systems that are standards here: loaded or shipped (the HL7 Terminology package
        names LOINC, SNOMED CT, RxNorm, ... even without their content). A CodeSystem stored in
        the server may well be a local catalogue, so it does not count."""
        known = set(self.service.packages.urls("CodeSystem"))
        with self.repository.database.session() as tx:
            known.update(row[0] for row in tx.execute("SELECT DISTINCT url FROM tx_code_system").fetchall())
        known.update(TARGETS.values())
        return known
