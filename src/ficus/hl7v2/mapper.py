"""Mapping stored messages to FHIR, after they are acknowledged: claim, map, apply, record.

`Mapper.map_next()` claims the next received messages (in lane order, see `store.claim_next`),
turns each into one transaction Bundle and applies it through `Interactions`, then records it
as mapped, unsupported or failed (the dead letter, with the reason). Applying is idempotent
(conditional writes, unchanged resources dropped), so a message whose outcome a crash kept from
being recorded is applied again without effect. `MapperThreads` runs mappers in the background.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from dataclasses import dataclass, field

import psycopg

from ficus.api.interactions import Interactions
from ficus.hl7v2 import store as s
from ficus.hl7v2.apply import apply_conversion
from ficus.hl7v2.errors import Problem, V2Error
from ficus.hl7v2.mapping import MappingOptions, UnsupportedMessage, Vocabulary, convert
from ficus.hl7v2.message import V2Message
from ficus.outcome import FhirError
from ficus.terminology.mapping.bridge import StoredConceptMaps

log = logging.getLogger("ficus.hl7v2")

BATCH = 20
MAPPERS = 2  # threads: a mapper mostly waits for the database, so two overlap those waits
# errors of the database rather than of the message: it is mapped again, not failed
TRANSIENT = (sqlite3.OperationalError, psycopg.OperationalError)
MAX_ATTEMPTS = 5  # database failures on one message (retried after 1, 2, 4, 8 s) before the dead letter
IDLE_SECONDS = 0.5  # how often an idle mapper looks for messages another process stored


@dataclass
class Outcome:
    """What mapping one message did: its new status, a line for people, the problems (errors,
    or warnings when it mapped) and the resources it stands for."""

    status: str
    text: str
    problems: list[Problem] = field(default_factory=list)
    resources: list[str] = field(default_factory=list)

    def finished(self, message_id: int) -> s.Finished:
        failed = self.status in (s.FAILED, s.UNSUPPORTED)
        return s.Finished(
            message_id, self.status, self.problems[0].describe() if failed and self.problems else None,
            [] if failed else [problem.describe() for problem in self.problems], self.resources,
        )


class Mapper:
    """Maps and applies stored messages, one FHIR transaction each."""

    def __init__(self, interactions: Interactions, message_store: s.MessageStore,
                 options: MappingOptions | None = None, batch: int = BATCH) -> None:
        self.interactions = interactions
        self.store = message_store
        self.options = options or MappingOptions()
        # local codes are translated by the ConceptMaps stored in this server
        self.vocabulary = Vocabulary(local_maps=StoredConceptMaps(interactions.repository))
        self.batch = batch
        self.holding: set[int] = set()  # claimed, not yet finished
        self.guard = threading.Lock()

    def map_next(self) -> int:
        """Map the next claimed batch and record the outcomes in one transaction; returns how
        many messages it claimed (0: nothing to do now). When the database fails (a deadlock,
        a lost connection), the message and those after it go back to be claimed again, the
        message itself after a growing pause; one on which it fails `MAX_ATTEMPTS` times is
        failed instead."""
        claimed = self.store.claim_next(self.batch)
        with self.guard:
            self.holding.update(message.id for message in claimed)
        finished: list[s.Finished] = []
        try:
            for position, stored in enumerate(claimed):
                try:
                    finished.append(self.map(stored).finished(stored.id))
                except TRANSIENT as error:
                    if stored.attempts + 1 >= MAX_ATTEMPTS:  # not the database's passing trouble
                        problem = Problem("207", f"The database failed {MAX_ATTEMPTS} times on this message: {error}")
                        finished.append(_failed(problem).finished(stored.id))
                        continue
                    retry = 2.0 ** stored.attempts
                    log.warning("HL7 v2 message #%s is retried in %.0f s: the database failed (%s)",
                                stored.id, retry, error)
                    returned = [message.id for message in claimed[position:]]
                    with self.guard:
                        self.holding.difference_update(returned)
                    self.store.release(returned, stored.id, retry)
                    break
        finally:
            try:
                if finished:
                    self.store.finish_many(finished)
            finally:
                with self.guard:
                    self.holding.difference_update(message.id for message in claimed)
        return len(claimed)

    def renew(self) -> None:
        """Extend the leases of the messages this mapper holds (see `MapperThreads`)."""
        with self.guard:
            held = sorted(self.holding)
        if held:
            self.store.renew(held)

    def drain(self) -> int:
        """Map until no received message can be claimed; returns how many were claimed."""
        done = 0
        while count := self.map_next():
            done += count
        return done

    def process(self, stored: s.StoredMessage, replay: bool = False) -> Outcome:
        """Map and apply a message leased to the caller, and record the outcome."""
        outcome = self.map(stored, replay)
        self.store.finish_many([outcome.finished(stored.id)])
        return outcome

    def map(self, stored: s.StoredMessage, replay: bool = False) -> Outcome:
        """Map and apply a message leased to the caller; raises only `TRANSIENT` errors."""
        try:
            conversion = convert(V2Message(stored.raw), self.options, recorded=stored.received, vocabulary=self.vocabulary)
            applied = apply_conversion(self.interactions, conversion)
        except UnsupportedMessage as error:
            return Outcome(s.UNSUPPORTED, "Stored, not mapped", [error.problem])
        except V2Error as error:
            return _failed(error.problem)
        except FhirError as error:
            return _failed(Problem("207", f"The FHIR transaction was refused: {error}"))
        except TRANSIENT:
            raise
        except Exception as error:  # a mapping bug must not cost the message: it is kept as failed
            log.exception("HL7 v2 message #%s could not be mapped", stored.id)
            return _failed(Problem("207", f"Internal error while mapping: {type(error).__name__}: {error}"))
        text = f"Mapped to {len(applied.resources)} FHIR resources ({applied.written} written)"
        return Outcome(s.REPLAYED if replay else s.MAPPED, text, conversion.problems, applied.resources)

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


def _failed(problem: Problem) -> Outcome:
    """The dead letter: kept with its reason, replayable after a fix."""
    return Outcome(s.FAILED, f"Stored, not applied: {problem.describe()}", [problem])


class MapperThreads:
    """Mappers in background threads, woken when messages are stored and polling when idle (for
    messages other processes stored or whose lease ran out), and a heartbeat that renews the
    leases of what they hold four times per lease: a batch is never taken over while its mapper
    lives, which would let an earlier message of a lane be applied after a later one."""

    def __init__(self, mapper: Mapper, count: int = MAPPERS) -> None:
        self.mapper = mapper
        self.count = count
        self.stopping = threading.Event()
        self.pending = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        self.stopping.clear()
        self.threads = [threading.Thread(target=self._run, name=f"ficus-hl7v2-mapper-{n}", daemon=True)
                        for n in range(self.count)]
        self.threads.append(threading.Thread(target=self._heartbeat, name="ficus-hl7v2-lease", daemon=True))
        for thread in self.threads:
            thread.start()

    def wake(self) -> None:
        self.pending.set()

    def stop(self) -> None:
        """Finish the batches in hand and stop; what is left stays received for the next start."""
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

    def _heartbeat(self) -> None:
        while not self.stopping.wait(self.mapper.store.lease_seconds / 4):
            try:
                self.mapper.renew()
            except Exception:  # the next beat tries again; the lease has three more quarters
                log.exception("HL7 v2 mapper could not renew its leases")
