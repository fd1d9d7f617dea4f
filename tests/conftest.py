"""Suite-wide fixtures. The suite runs against the real PostgreSQL and Redis of this machine
(``market.settings_test``); an unreachable service fails the run, it is never skipped."""

import os

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from tests.factories import make_member, make_organisation, make_user

# Benchmarks run only through `make bench` (MARKET_BENCH=1), never in the test suite.
collect_ignore_glob = [] if os.environ.get("MARKET_BENCH") else ["bench/*"]


def pytest_sessionstart(session):
    import redis
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.exit(f"the suite needs PostgreSQL, DATABASE_URL points to {connection.vendor}", returncode=3)
    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=3).ping()
    except Exception as exc:
        pytest.exit(f"Redis at {settings.REDIS_URL} is unreachable: {exc}", returncode=3)


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate limits and lock-outs live in the cache; each test starts with none."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture(autouse=True)
def _default_language():
    """Each test starts in the default language (a request may leave another active in the thread)."""
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def user_factory(db):
    return make_user


@pytest.fixture
def org_factory(db):
    return make_organisation


@pytest.fixture
def member_factory(db):
    return make_member


@pytest.fixture
def operator(db):
    return make_user(email="operator@market.test", is_staff=True)
