"""A short-lived cache of the facet counts and total of a database search, kept correct by a
generation counter.

Counting the facets of a broad search (every published lot, a whole top-level category) scans all
the lots it finds, while its page is read off an index in a millisecond; people page through and
re-sort the same filter. So the counts and the total are cached under the *normalised filter* (text
tokens and every filter; not the sort or the page), in the Django cache, keyed by a generation:

* the generation is one counter in the cache; every change of a lot that a search could see bumps
  it (``lots_changed``): each save or delete of a ``Lot`` (signals, connected in ``ListingsConfig``),
  each market update from trading (``listings.services.lot_market_update``, a queryset update) and
  each token write of the database backend (``DatabaseBackend.index_lots`` / ``remove_lots``);
* it is bumped at once and again after the transaction commits. A search reads the generation
  *before* it counts and stores under what it read, so counts taken before a commit are stored under
  a generation the after-commit bump has already left behind: a newly published lot changes the
  counts at once (at most the instant between commit and bump can serve the old ones);
* entries live ``SEARCH_FACETS_CACHE_SECONDS`` (default 60) at most: a safety net for a writer that
  goes around the listings code (a raw ``UPDATE``), not the mechanism;
* searches with ``closing_within`` are never cached (their counts move with the clock), nor is
  anything when the cache is process-local (``LocMemCache``: another process's bump would not reach
  it; the embedded demo) or when the cache fails (the search counts as before).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache
from django.db import transaction

from listings.search.query import LotQuery
from listings.search.tokens import query_tokens

logger = logging.getLogger(__name__)

GENERATION_KEY = "listings:search:generation"
# Prices move with every bid: they void only the counts of searches that filter by price.
MARKET_GENERATION_KEY = "listings:search:generation:market"
KEY_PREFIX = "listings:search:facets"
DEFAULT_SECONDS = 60

Facets = tuple[dict[str, list[tuple[str, int]]], int]


def _cache():
    return caches["default"]


def cache_seconds() -> int:
    return int(getattr(settings, "SEARCH_FACETS_CACHE_SECONDS", DEFAULT_SECONDS))


def cache_usable() -> bool:
    return cache_seconds() > 0 and not isinstance(_cache(), LocMemCache | DummyCache)


def _generation_bump(key: str = GENERATION_KEY) -> None:
    try:
        cache = _cache()
        # No counter yet (or evicted): start one no earlier entry can carry.
        if hasattr(cache, "counter_bump"):  # market.core.cache.RedisCache: one round trip
            cache.counter_bump(key, time.time_ns())
            return
        try:
            cache.incr(key)
        except ValueError:
            if not cache.add(key, time.time_ns(), timeout=None):
                cache.incr(key)
    except Exception:  # a cache that fails serves nothing either: see generation()
        logger.warning("search facet cache: generation bump failed", exc_info=True)


def lots_changed(using: str | None = None, *, prices_only: bool = False) -> None:
    """Something a search could see changed: cached counts are void now and after the commit.
    ``prices_only``: only prices (and bid counts, close times) moved, as with every bid; that voids
    just the searches filtered by price (``closing_within`` searches are never cached)."""
    if not cache_usable():
        return
    key = MARKET_GENERATION_KEY if prices_only else GENERATION_KEY
    if not transaction.get_connection(using).in_atomic_block:
        _generation_bump(key)  # committed already: once is enough
        return
    _generation_bump(key)
    transaction.on_commit(lambda: _generation_bump(key), using=using, robust=True)


def lot_saved_or_deleted(sender, instance=None, using=None, **kwargs) -> None:
    """``post_save`` / ``post_delete`` receiver for ``Lot``."""
    lots_changed(using)


def generation(key: str = GENERATION_KEY) -> int:
    value = _cache().get(key)
    if value is None:
        _cache().add(key, time.time_ns(), timeout=None)
        value = _cache().get(key)
    if value is None:
        raise RuntimeError("the cache keeps no generation")
    return int(value)


def filter_key(query: LotQuery) -> str:
    """The normalised filter of a search: what its counts depend on, never its sort or page."""
    parts = (
        sorted(set(query_tokens(query.text))),
        query.category,
        query.region,
        query.zone,
        *(None if v is None else str(v.normalize()) for v in (query.quantity_min, query.quantity_max)),
        *(None if v is None else str(v.normalize()) for v in (query.price_min, query.price_max)),
        query.trade_mode,
        query.hazardous,
        None if query.near is None else [repr(float(c)) for c in query.near],
        None if query.within_km is None else repr(float(query.within_km)),
        sorted(query.statuses),
    )
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


def facets_cached(query: LotQuery, vendor: str, count: Callable[[], Facets]) -> Facets:
    """``count()``, or what it answered for the same filter since the last change of any lot."""
    if vendor != "postgresql" or query.closing_within_hours is not None or not cache_usable():
        return count()
    try:
        key = f"{KEY_PREFIX}:{generation()}:{filter_key(query)}"
        if query.price_min is not None or query.price_max is not None:
            key += f":{generation(MARKET_GENERATION_KEY)}"
        hit = _cache().get(key)
    except Exception:
        logger.warning("search facet cache unavailable", exc_info=True)
        return count()
    if hit is not None:
        return hit
    result = count()
    try:
        _cache().set(key, result, timeout=cache_seconds())
    except Exception:
        logger.warning("search facet cache: store failed", exc_info=True)
    return result
