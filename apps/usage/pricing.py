"""What a model costs at a moment, and what some tokens of it cost.

Used by the ledger when it bills an attempt and by quotas when they estimate a
reservation. The most specific price wins (the team's override for the
backend, then a global price for the backend, then the global price of the
model); within one level the latest ``effective_from`` not after ``at``.

Both callers are on the hot path of every request, so the prices of one
(team, backend, model) are read once per process and kept (``PriceCache``). A
change must still reach every process within about a second: whoever writes a
price clears this process's cache at once and, on commit, bumps a version in the
shared Django cache (Redis in the full stack) that every process compares with
its own at most every ``CHECK_SECONDS``. The comparison is one cache GET per
interval per process, not per request.
"""

import logging
import math
import threading
import time
import uuid
from datetime import datetime
from decimal import Decimal

from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Case, Exists, IntegerField, Q, Value, When
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from apps.inference.models import Backend, BackendKind
from apps.usage.models import Price

logger = logging.getLogger(__name__)

FREE_KINDS = (BackendKind.LOCAL,)

MILLION = Decimal(1_000_000)
ZERO = Decimal(0)

VERSION_KEY = "usage:prices:version"
# How stale another process's price change can be here (plus the time its commit
# takes to reach Redis).
CHECK_SECONDS = 0.5
# A lost version bump (Redis down while a price was saved) can't keep old prices
# forever.
MAX_AGE_SECONDS = 300
# Model names come from callers; an unbounded number of them must not grow memory.
MAX_ENTRIES = 10_000

_clock = time.monotonic  # tests move time forward instead of sleeping


def price_for(*, team, backend, model: str, at: datetime | None = None) -> Price | None:
    """The price in force for ``model`` on ``backend`` for ``team`` at ``at`` (now if None)."""
    at = at or timezone.now()
    team_id = getattr(team, "pk", team)
    backend_id = getattr(backend, "pk", backend)
    for price in _cache.candidates((team_id, backend_id, model)):
        if price.effective_from <= at:
            return price
    return None


def _candidates(team_id, backend_id, model: str) -> tuple[Price, ...]:
    """Every price that can apply, best first: by level, then newest start. The
    first one that has started is the answer for any moment, so one cached list
    serves past attempts and a price scheduled for later takes over on its own."""
    levels = Q(team__isnull=True, backend__isnull=True)
    rank = [When(team__isnull=True, backend__isnull=True, then=Value(2))]
    if backend_id is not None:
        # A model's global price is what a provider charges for it; the local
        # development backend only borrows the name, so only a price set for that
        # backend itself applies (checked in the same query, no extra round trip;
        # a backend's kind never changes, so the cached answer stays right).
        levels &= ~Exists(Backend.objects.filter(pk=backend_id, kind__in=FREE_KINDS))
        levels |= Q(team__isnull=True, backend_id=backend_id)
        rank.insert(0, When(team__isnull=True, backend_id=backend_id, then=Value(1)))
        if team_id is not None:
            levels |= Q(team_id=team_id, backend_id=backend_id)
            rank.insert(0, When(team_id=team_id, backend_id=backend_id, then=Value(0)))
    return tuple(
        Price.objects.filter(levels, model=model)
        .annotate(level=Case(*rank, output_field=IntegerField()))
        .order_by("level", "-effective_from", "-pk")
    )


class PriceCache:
    """Candidate prices per (team, backend, model), shared by a process's threads.

    ``generation`` guards against a thread storing what it read before a flush:
    a load that started under an older generation is returned but not kept.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._entries: dict[tuple, tuple[Price, ...]] = {}
        self._generation = 0
        self._version: object = None
        self._checked_at = -math.inf
        self._flushed_at = _clock()

    def candidates(self, key: tuple) -> tuple[Price, ...]:
        self._check_version()
        if _uncommitted_price_write():
            # This connection sees prices nobody else does yet, and they may still
            # roll back: read them, keep nothing.
            return _candidates(*key)
        found = self._entries.get(key)
        if found is not None:
            return found
        generation = self._generation
        found = _candidates(*key)
        with self._lock:
            if generation == self._generation:
                if len(self._entries) >= MAX_ENTRIES:
                    self._entries = {}
                self._entries[key] = found
        return found

    def flush(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries = {}
            self._flushed_at = _clock()

    def expire_check(self) -> None:
        """Compare with the shared version on the next lookup (tests, and a process
        that knows it just missed a change)."""
        self._checked_at = -math.inf

    def _check_version(self) -> None:
        now = _clock()
        if now - self._checked_at < CHECK_SECONDS:
            return
        self._checked_at = now
        try:
            version = cache.get(VERSION_KEY)
        except Exception:  # the cache is down: trust nothing kept, look again soon
            logger.warning("price version unreadable; prices read from the database")
            self.flush()
            self._version = _UNKNOWN
            return
        if version != self._version or now - self._flushed_at > MAX_AGE_SECONDS:
            self.flush()
            self._version = version


_UNKNOWN = object()
_cache = PriceCache()


def _uncommitted_price_write() -> bool:
    """Whether this thread's connection wrote a price that isn't committed yet:
    ``_price_committed`` still waits in its on-commit list (a rollback removes it,
    a commit runs it)."""
    connection = connections[DEFAULT_DB_ALIAS]
    return connection.in_atomic_block and any(
        entry[1] is _price_committed for entry in connection.run_on_commit
    )


def prices_changed() -> None:
    """Call in the transaction of any price write that sends no model signals
    (``bulk_create``, ``update()``, raw SQL); saves and deletes call it themselves."""
    _cache.flush()
    transaction.on_commit(_price_committed)


def _price_committed() -> None:
    _cache.flush()
    try:
        cache.set(VERSION_KEY, uuid.uuid4().hex, timeout=None)
    except Exception:
        logger.exception("price version not bumped; other processes keep old prices for a while")


def _price_written(sender, **kwargs) -> None:
    prices_changed()


def connect_signals() -> None:
    """Every save and delete of a price (the service, the admin, a cascade from a
    deleted team or backend) invalidates the caches."""
    post_save.connect(_price_written, sender=Price, dispatch_uid="usage.price.saved")
    post_delete.connect(_price_written, sender=Price, dispatch_uid="usage.price.deleted")


def plain_amount(value) -> str:
    """A decimal without trailing zeros or exponent: 10.000000 -> 10, 0.150000 -> 0.15."""
    return format(Decimal(value).normalize(), "f")


def cost_at(
    price: Price | None, *, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0
) -> Decimal:
    """Exact cost of the tokens at ``price``; cached prompt tokens are part of
    ``prompt_tokens`` and billed at the cached price where there is one."""
    if price is None:
        return ZERO
    cached = min(max(cached_tokens or 0, 0), prompt_tokens)
    cached_price = (
        price.cached_input_per_million
        if price.cached_input_per_million is not None
        else price.input_per_million
    )
    amount = (
        (prompt_tokens - cached) * price.input_per_million
        + cached * cached_price
        + completion_tokens * price.output_per_million
    )
    return amount / MILLION


def cost_of(
    *,
    team,
    backend,
    model: str,
    prompt_tokens: int,
    completion_tokens: int,
    cached_tokens: int = 0,
    at: datetime | None = None,
) -> tuple[Decimal, bool]:
    """(cost, priced): an unpriced model costs 0 and says so, never silently free."""
    price = price_for(team=team, backend=backend, model=model, at=at)
    cost = cost_at(
        price,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cached_tokens=cached_tokens,
    )
    return cost, price is not None
