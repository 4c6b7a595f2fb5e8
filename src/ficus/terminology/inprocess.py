"""The terminology service as the rest of Ficus asks it, in-process: ValueSet expansions for
search `:in`/`:not-in`, code system hierarchies for `:above`/`:below`, and membership for the
validator's required bindings, answered from everything the server has (packages, stored
CodeSystem and ValueSet resources, loaded releases).

`Interactions.handle` runs each request `with serving(repository)`; `current()` is then that
request's `Resolver`. Answers are cached per repository under the service's `stamp` (stored
CodeSystems, ValueSets and ConceptMaps and active loaded releases unchanged). Database work runs
on a small pool of threads of its own: the asking code may be inside a transaction, and an
SQLite connection cannot open a second one.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

from ficus.outcome import FhirError

if TYPE_CHECKING:
    from ficus.store.repository import Repository

MAX_EXPANSION = 20_000  # codes an in-process expansion may have (search `:in` takes fewer)
_CACHED = 4096  # answers kept per repository
_WORKERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ficus-terminology")
_SERVING: ContextVar[Resolver | None] = ContextVar("ficus_terminology", default=None)
_ANSWERS: weakref.WeakKeyDictionary[Repository, _Answers] = weakref.WeakKeyDictionary()
_ANSWERS_LOCK = threading.Lock()
T = TypeVar("T")

Stamp = tuple[Any, ...]


@contextmanager
def serving(repository: Repository) -> Iterator[None]:
    """Within this block `current()` answers from `repository`'s terminology (nested blocks for
    the same repository, e.g. the entries of a Bundle, share the outer block's resolver)."""
    outer = _SERVING.get()
    if outer is not None and outer.repository is repository:
        yield
        return
    token = _SERVING.set(Resolver(repository))
    try:
        yield
    finally:
        _SERVING.reset(token)


def current() -> Resolver | None:
    return _SERVING.get()


def in_value_set(url: str, system: str | None, code: str) -> bool | None:
    """Whether `system`/`code` is in the value set `url` (for a `code` element, `system` None:
    in it under any system it includes); None when no server serves the request or its
    terminology cannot tell (unknown value set or code system)."""
    resolver = _SERVING.get()
    return resolver.contains(url, system, code) if resolver is not None else None


class Resolver:
    """One request's view of the terminology of `repository`."""

    def __init__(self, repository: Repository) -> None:
        self.repository = repository
        self._answers = _answers_for(repository)
        self._stamp: Stamp | None = None
        self._loaded: dict[str, tuple[int, ...]] = {}

    def value_set_codes(self, url: str) -> frozenset[tuple[str, str]] | None:
        """The (system, code) pairs of the value set, or None when it is unknown, cannot be
        expanded here, or has more than MAX_EXPANSION codes."""
        return self._answer(("expansion", url), lambda: _expansion(self.repository, url))

    def closure(self, system: str, code: str, upward: bool) -> frozenset[str] | None:
        """`code` and every code it subsumes (`upward`: that subsume it) in `system`; None when
        the code system or the code is unknown."""
        return self._answer(("closure", system, code, upward), lambda: _closure(self.repository, system, code, upward))

    def contains(self, url: str, system: str | None, code: str) -> bool | None:
        return self._answer(("contains", url, system, code), lambda: _contains(self.repository, url, system, code))

    def loaded_ids(self, system: str) -> tuple[int, ...]:
        """The `tx_code_system` ids of the active loaded releases of `system` (their hierarchy
        can be used in SQL: `tx_closure`); empty when none is loaded."""
        self._current_stamp()
        return self._loaded.get(system, ())

    def _current_stamp(self) -> Stamp:
        if self._stamp is None:
            service = self._service()
            stamp = service.stamp(read=False)
            if stamp is None:
                stamp = _off_thread(service.stamp)
            self._stamp = stamp
            self._loaded = self._answers.loaded(stamp, service)
        return self._stamp

    def _service(self) -> Any:
        from ficus.terminology.service import service_for

        return service_for(self.repository)

    def _answer(self, key: tuple, compute: Callable[[], T]) -> T:
        stamp = self._current_stamp()
        found = self._answers.get(key, stamp)
        if found is not _MISSING:
            return found
        value = _off_thread(compute)
        self._answers.put(key, stamp, value)
        return value


_MISSING = object()


class _Answers:
    """The cached answers of one repository, each with the stamp it was computed under."""

    def __init__(self) -> None:
        self._items: OrderedDict[tuple, tuple[Stamp, Any]] = OrderedDict()
        self._stamp: Stamp | None = None
        self._loaded: dict[str, tuple[int, ...]] = {}
        self._lock = threading.Lock()

    def loaded(self, stamp: Stamp, service: Any) -> dict[str, tuple[int, ...]]:
        """The active loaded releases' ids by URL as of `stamp` (answers of older stamps go)."""
        with self._lock:
            if self._stamp == stamp:
                return self._loaded
        by_url: dict[str, tuple[int, ...]] = {}
        for url, cs_id in service.loaded.active_ids():
            by_url[url] = (*by_url.get(url, ()), cs_id)
        with self._lock:
            if self._stamp != stamp:
                self._items.clear()
                self._stamp, self._loaded = stamp, by_url
        return by_url

    def get(self, key: tuple, stamp: Stamp) -> Any:
        with self._lock:
            found = self._items.get(key)
            if found is None or found[0] != stamp:
                return _MISSING
            self._items.move_to_end(key)
            return found[1]

    def put(self, key: tuple, stamp: Stamp, value: Any) -> None:
        with self._lock:
            self._items[key] = (stamp, value)
            if len(self._items) > _CACHED:
                self._items.popitem(last=False)


def _answers_for(repository: Repository) -> _Answers:
    with _ANSWERS_LOCK:
        found = _ANSWERS.get(repository)
        if found is None:
            found = _ANSWERS[repository] = _Answers()
        return found


def _off_thread(work: Callable[[], T]) -> T:
    return _WORKERS.submit(work).result()


def _context(repository: Repository) -> Any:
    from ficus.terminology.service import service_for

    return service_for(repository).context()


def _expansion(repository: Repository, url: str) -> frozenset[tuple[str, str]] | None:
    from ficus.terminology.expand import ExpandOptions, Expander

    context = _context(repository)
    value_set = context.value_set(url)
    if value_set is None:
        return None
    try:
        entries = Expander(context, ExpandOptions(limit=MAX_EXPANSION)).codes(value_set)
    except FhirError:  # an unknown code system, a filter it cannot run, too many codes
        return None
    return frozenset(entry.key for entry in entries)


def _closure(repository: Repository, system: str, code: str, upward: bool) -> frozenset[str] | None:
    provider = _context(repository).code_system(system)
    if provider is None:
        return None
    concept = provider.concept(code)
    if concept is None:
        return None
    related = provider.ancestors(concept.code) if upward else provider.descendants(concept.code)
    return frozenset({code, concept.code, *related})


def _contains(repository: Repository, url: str, system: str | None, code: str) -> bool | None:
    from ficus.terminology.expand import Expander
    from ficus.terminology.membership import Candidate, Membership

    context = _context(repository)
    value_set = context.value_set(url)
    if value_set is None:
        return None
    systems = [system] if system else _included_systems(value_set)
    membership = Membership(Expander(context))
    known = False
    for candidate_system in systems:
        provider = context.code_system(candidate_system)
        if provider is None or provider.content not in ("complete", "fragment"):
            continue
        known = True
        try:
            concept = provider.concept(code)
            if membership.contains(value_set, Candidate(candidate_system, concept.code if concept else code, provider)):
                return True
        except FhirError:  # an imported value set or a code system of the compose is unknown
            return None
    return False if known else None


def _included_systems(value_set: dict) -> list[str]:
    compose = value_set.get("compose") or {}
    return list(dict.fromkeys(
        include["system"] for include in compose.get("include", []) if isinstance(include, dict) and isinstance(include.get("system"), str)
    ))
