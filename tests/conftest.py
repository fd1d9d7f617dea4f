"""Suite-wide fixtures. The suite runs against the real PostgreSQL and Redis of this machine
(``market.settings_test``); an unreachable service fails the run, it is never skipped."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from tests.factories import make_member, make_organisation, make_user
from tests.processes import stop as worker_stop

# Benchmarks run only through `make bench` (MARKET_BENCH=1), never in the test suite; the dependency
# audit only through `make audit` (MARKET_AUDIT=1): it needs PyPI's per-release JSON, which this
# machine's network does not reach (see README, "Security checks").
collect_ignore_glob = [] if os.environ.get("MARKET_BENCH") else ["bench/*"]
if not os.environ.get("MARKET_AUDIT"):
    collect_ignore_glob.append("audit/*")


def pytest_collection_modifyitems(session, config, items):
    """The browser journeys (tests/e2e) run last: their server, worker and browser start once, after
    every other test, and stop before the test database is torn down (Playwright's sync API keeps an
    event loop on the main thread, which Django's ORM refuses to run beside)."""
    e2e_dir = Path(__file__).parent / "e2e"
    faults_dir = Path(__file__).parent / "faults"
    e2e = []
    for item in items:
        if faults_dir in item.path.parents:
            item.add_marker(pytest.mark.faults)
        if e2e_dir in item.path.parents:
            item.add_marker(pytest.mark.e2e)
            e2e.append(item)
    if e2e:
        chosen = set(map(id, e2e))
        items[:] = [item for item in items if id(item) not in chosen] + e2e


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


def worker_start(
    name: str = "w", *, env: dict | None = None, beat: bool = False, log=None, fresh: bool = False
) -> subprocess.Popen:
    """A real Celery worker process on this test database and Redis (solo pool, late acks).

    ``env`` replaces the environment (another database and prefix: the browser tests' server);
    ``beat`` runs Celery beat inside the worker (``-B``); ``log`` is an open file for its output
    (a long-lived worker must not fill an unread pipe); ``fresh`` empties the suite's queues first,
    so tasks left there by earlier tests do not come before the test's own."""
    if fresh:
        from market.celery import app

        app.control.purge()
    if env is None:
        from django.db import connection

        db = connection.settings_dict
        url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "market.settings_test",
            "DATABASE_URL": url,
            "REDIS_URL": settings.REDIS_URL,
            "REDIS_PREFIX": settings.REDIS_PREFIX,
        }
    args = ["worker", "--pool=solo", "--loglevel=INFO", "--without-mingle", "--without-gossip"]
    if beat:
        args.append("--beat")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "market",
            *args,
            "--without-heartbeat",
            "-n",
            f"{name}-{os.getpid()}@%h",
        ],
        env=env,
        stdout=log if log is not None else subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def worker_wait(worker: subprocess.Popen, done, what: str, timeout: float = 60) -> None:
    """Wait until ``done()`` is true, failing the test with the worker's output if it dies, or with
    ``what`` (what the worker did not do) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not done():
        if worker.poll() is not None:
            pytest.fail("worker died:\n" + worker.stdout.read())
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout:.0f} s")
        time.sleep(0.1)


@pytest.fixture
def celery_worker_process():
    proc = worker_start()
    try:
        yield proc
    finally:
        worker_stop(proc)
