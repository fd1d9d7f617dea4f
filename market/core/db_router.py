"""Reads of the statistics and price-index read models from a PostgreSQL read replica.

The government dashboard, the statistics explorer and the open data (pages, exports and their API)
read only rollups, index values and reference data; with ``DATABASE_REPLICA_URL`` set they read
them from the ``replica`` alias, so a dashboard refresh or an open-data scrape never competes with
bids on the primary. Everything else reads from and every write goes to ``default``.

How it is switched on, per request: those views are wrapped in ``replica_reads`` (see
``frontend/urls_statistics.py`` and ``pricing/api_urls.py``), which sets a context variable for the
view's duration; ``ReplicaRouter.db_for_read`` sends reads of the models listed in
``REPLICA_MODELS`` to the replica while it is set. The middleware's reads (session, user) and any
other model stay on the primary, so a login is never lost to replication lag. With no replica
configured, ``replica_alias()`` is ``"default"`` and the router changes nothing.

The replica lags the primary (asynchronous streaming replication: usually well under a second, more
under load or after a long transaction); the pages it serves say figures as of the last rollup
anyway, and the README says they may lag.
"""

from __future__ import annotations

import contextlib
import functools
from contextvars import ContextVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

REPLICA = "replica"

# What may be read from the replica inside ``replica_reads``: the read models of the statistics and
# the price indices (every model of ``pricing``) and the reference data they are labelled with.
REPLICA_MODELS: dict[str, set[str] | None] = {
    "pricing": None,  # None: every model of the app
    "core": {"region", "economiczone", "economiczone_provinces"},
    "listings": {"category"},
}

_replica_reads: ContextVar[bool] = ContextVar("replica_reads", default=False)


def replica_alias() -> str:
    """The alias dashboards and open data read from: ``replica`` when configured (the setting
    ``DATABASE_REPLICA_ALIAS`` names a configured database), else ``default``."""
    alias = getattr(settings, "DATABASE_REPLICA_ALIAS", "") or ""
    return alias if alias and alias in connections.settings else DEFAULT_DB_ALIAS


def replica_readable(model) -> bool:
    meta = model._meta
    models = REPLICA_MODELS.get(meta.app_label, set())
    return models is None or meta.model_name in models


@contextlib.contextmanager
def reading_replica():
    """Within this block, reads of the read models go to the replica (when one is configured)."""
    token = _replica_reads.set(True)
    try:
        yield
    finally:
        _replica_reads.reset(token)


def replica_reads(view):
    """Wrap a view (function, or the result of ``as_view()``) so its read-model reads use the replica."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        with reading_replica():
            return view(*args, **kwargs)

    return wrapped


class ReplicaRouter:
    """Reads of the read models inside ``replica_reads`` to the replica; nothing else moves."""

    def db_for_read(self, model, **hints):
        if not _replica_reads.get() or not replica_readable(model):
            return None
        alias = replica_alias()
        return alias if alias != DEFAULT_DB_ALIAS else None

    def db_for_write(self, model, **hints):
        return DEFAULT_DB_ALIAS  # writes always go to the primary, even inside replica_reads

    def allow_relation(self, obj1, obj2, **hints):
        # The replica holds the primary's rows: an object read from either may refer to the other's.
        dbs = {DEFAULT_DB_ALIAS, replica_alias(), REPLICA}
        if obj1._state.db in dbs and obj2._state.db in dbs:
            return True
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        # The replica is a copy made by PostgreSQL's replication: never migrated by Django.
        return False if db == REPLICA else None
