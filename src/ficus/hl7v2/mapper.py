"""Mapping stored messages to FHIR, after they are acknowledged: claim, map, apply, record.

`Mapper.map_next()` claims the next received messages (in lane order, see `store.claim_next`),
turns each into one transaction Bundle and applies it through `Interactions`, then records it
as mapped, unsupported or failed (the dead letter, with the reason). Applying is idempotent
(conditional writes, unchanged resources dropped), so a message whose outcome a crash kept from
being recorded is applied again without effect. `MapperThreads` runs mappers in the background.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from ficus.api.interactions import Interactions
from ficus.hl7v2 import store as s
from ficus.hl7v2.apply import apply_conversion
from ficus.hl7v2.errors import Problem, V2Error
from ficus.hl7v2.mapping import MappingOptions, UnsupportedMessage, convert
from ficus.hl7v2.message import V2Message
from ficus.outcome import FhirError

log = logging.getLogger("ficus.hl7v2")

BATCH = 20
IDLE_SECONDS = 0.5  # how often an idle mapper looks for messages another process stored


@dataclass
class Outcome:
    """What mapping one message did: its new status, a line for people, the problems (errors,
    or warnings when it mapped) and the resources it stands for."""

    status: str
    text: str
    problems: list[Problem] = field(default_factory=list)
    resources: list[str] = field(default_factory=list)


class Mapper:
    """Maps and applies stored messages, one FHIR transaction each."""

    def __init__(self, interactions: Interactions, message_store: s.MessageStore,
                 options: MappingOptions | None = None, batch: int = BATCH) -> None:
        self.interactions = interactions
        self.store = message_store
        self.options = options or MappingOptions()
        self.batch = batch

    def map_next(self) -> int:
        """Map the next claimed batch; returns how many messages it held (0: nothing to do now)."""
        claimed = self.store.claim_next(self.batch)
        for stored in claimed:
            self.process(stored)
        return len(claimed)

    def drain(self) -> int:
        """Map until no received message can be claimed; returns how many were mapped."""
        done = 0
        while count := self.map_next():
            done += count
        return done

    def process(self, stored: s.StoredMessage, replay: bool = False) -> Outcome:
        """Map and apply a message leased to the caller, and record the outcome."""
        try:
            conversion = convert(V2Message(stored.raw), self.options, recorded=stored.received)
            applied = apply_conversion(self.interactions, conversion)
        except UnsupportedMessage as error:
            self.store.finish(stored.id, s.UNSUPPORTED, error=error.problem.describe())
            return Outcome(s.UNSUPPORTED, "Stored, not mapped", [error.problem])
        except V2Error as error:
            return self._fail(stored, error.problem)
        except FhirError as error:
            return self._fail(stored, Problem("207", f"The FHIR transaction was refused: {error}"))
        except Exception as error:  # a mapping bug must not cost the message: it is kept as failed
            log.exception("HL7 v2 message #%s could not be mapped", stored.id)
            return self._fail(stored, Problem("207", f"Internal error while mapping: {type(error).__name__}: {error}"))
        status = s.REPLAYED if replay else s.MAPPED
        warnings = [problem.describe() for problem in conversion.problems]
        self.store.finish(stored.id, status, warnings=warnings, resources=applied.resources)
        text = f"Mapped to {len(applied.resources)} FHIR resources ({applied.written} written)"
        return Outcome(status, text, conversion.problems, applied.resources)

    def _fail(self, stored: s.StoredMessage, problem: Problem) -> Outcome:
        """The dead letter: kept with its reason, replayable after a fix."""
        self.store.finish(stored.id, s.FAILED, error=problem.describe())
        return Outcome(s.FAILED, f"Stored, not applied: {problem.describe()}", [problem])

    def replay(self, message_id: int) -> Outcome:
        """Map and apply a stored message again (after a mapping fix); a message that changes
        nothing writes nothing. Raises KeyError for an unknown id."""
        stored = self.store.claim(message_id, statuses=(s.FAILED, s.UNSUPPORTED, s.MAPPED, s.REPLAYED, s.RECEIVED))
        if stored is None:
            found = self.store.get(message_id)
            if found is None:
                raise KeyError(f"No HL7 v2 message #{message_id}")
            return Outcome(found.status, f"Message #{message_id} is {found.status} and cannot be replayed now")
        return self.process(stored, replay=True)


class MapperThreads:
    """Mappers in background threads, woken when messages are stored and polling when idle (for
    messages other processes stored or whose lease ran out)."""

    def __init__(self, mapper: Mapper, count: int = 1) -> None:
        self.mapper = mapper
        self.count = count
        self.stopping = threading.Event()
        self.pending = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        self.stopping.clear()
        self.threads = [threading.Thread(target=self._run, name=f"ficus-hl7v2-mapper-{n}", daemon=True)
                        for n in range(self.count)]
        for thread in self.threads:
            thread.start()

    def wake(self) -> None:
        self.pending.set()

    def stop(self) -> None:
        """Finish the batch in hand and stop; what is left stays received for the next start."""
        self.stopping.set()
        self.pending.set()
        for thread in self.threads:
            thread.join()
        self.threads = []

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                if self.mapper.map_next():
                    continue
            except Exception:  # the database is unreachable: try again shortly
                log.exception("HL7 v2 mapper could not claim messages")
            self.pending.wait(IDLE_SECONDS)
            self.pending.clear()
