"""Celery queues separated by kind (issue 8, scale-out): closing, notifications, indexing,
statistics and default.

Every task of the project is routed to one of them by name in ``CELERY_TASK_ROUTES`` (a new task
left out fails here rather than landing silently on the default queue); a worker started without
``-Q`` (``make run``'s, the tests') consumes all of them; a worker given ``-Q closing`` runs closing
tasks and leaves the others queued for their own workers. The Procfile and the systemd units start
a worker for every queue.
"""

import re
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings

from market.celery import app

ROOT = Path(__file__).resolve().parents[2]
QUEUES = {"closing", "notifications", "indexing", "statistics", "default"}
PROJECT = ("market.", "listings.", "pricing.", "frontend.")


def project_tasks() -> set[str]:
    app.loader.import_default_modules()  # what a worker imports at start (autodiscovery)
    return {name for name in app.tasks if name.startswith(PROJECT)}


def test_every_task_of_the_project_is_routed_to_a_named_queue():
    tasks = project_tasks()
    assert len(tasks) >= 19, tasks  # autodiscovery found the apps' tasks modules
    assert set(settings.CELERY_QUEUE_NAMES) == QUEUES
    assert {q.name for q in settings.CELERY_TASK_QUEUES} == QUEUES
    unrouted = sorted(tasks - set(settings.CELERY_TASK_ROUTES))
    assert not unrouted, f"add these tasks to CELERY_TASK_ROUTES (market/settings.py): {unrouted}"
    stale = sorted(set(settings.CELERY_TASK_ROUTES) - tasks)
    assert not stale, f"CELERY_TASK_ROUTES names tasks that do not exist: {stale}"
    by_queue = {}
    for name in tasks:
        queue = app.amqp.router.route({}, name)["queue"].name  # what .delay() and beat really use
        assert queue in QUEUES, (name, queue)
        by_queue.setdefault(queue, set()).add(name)
    assert set(by_queue) == QUEUES  # every queue has work
    assert "market.trading.tasks.sale_close_task" in by_queue["closing"]
    assert "pricing.index_tasks.index_tick_task" in by_queue["statistics"]
    assert "listings.tasks.lot_index" in by_queue["indexing"]
    assert "market.core.tasks.notifications_email" in by_queue["notifications"]
    # beat's entries name existing tasks (each then follows its route)
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in tasks, entry


def test_a_worker_without_queues_consumes_every_queue():
    """``make run``'s in-process worker and ``celery -A market worker`` without -Q."""
    assert set(app.amqp.queues) == QUEUES
    assert app.amqp.default_queue.name == "default"


def _deploy_queues() -> dict[str, set[str]]:
    procfile = (ROOT / "Procfile").read_text()
    found = {}
    for line in procfile.splitlines():
        match = re.match(r"^([\w-]+):\s*(.+)$", line)
        if match and " worker" in match.group(2):
            queues = re.search(r"(?:-Q|--queues)[ =]([\w,]+)", match.group(2))
            assert queues, f"Procfile: {match.group(1)} must name its queues with -Q"
            found[match.group(1)] = set(queues.group(1).split(","))
    return found


def test_the_procfile_and_the_units_run_every_queue_and_one_beat():
    procfile = (ROOT / "Procfile").read_text()
    workers = _deploy_queues()
    assert set().union(*workers.values()) == QUEUES, workers
    assert set(workers) >= {"worker-closing", "worker-notifications", "worker-indexing", "worker-statistics"}
    assert len(re.findall(r"^beat:.*celery -A market beat", procfile, re.M)) == 1
    units = ROOT / "deploy" / "systemd"
    worker_unit = (units / "market-worker@.service").read_text()
    assert "-Q %i" in worker_unit and "EnvironmentFile=" in worker_unit
    for unit in ("market-web@.service", "market-beat.service"):
        assert "EnvironmentFile=" in (units / unit).read_text()


@pytest.fixture
def broker():
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client
    client.close()


def _queued(client, queue: str) -> int:
    return client.llen(f"{settings.REDIS_PREFIX}:celery:{queue}")


def _until(condition, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_a_closing_worker_runs_closing_tasks_only_and_an_all_queue_worker_drains_the_rest(
    db, suite_processes, broker
):
    """Real workers on the Redis broker: one on ``-Q closing``, then one on every queue."""
    from market.trading.tasks import sales_close_sweep
    from pricing.tasks import stats_sweep

    procs = suite_processes
    before = _queued(broker, "statistics")  # earlier tests may have left index ticks queued
    procs.worker("worker-closing", ["closing"])
    closed = sales_close_sweep.apply_async(ignore_result=False)
    swept = stats_sweep.apply_async(ignore_result=False)
    assert closed.get(timeout=90) == {"closed": 0, "warned": 0}, procs.log("worker-closing")
    time.sleep(1)  # the closing worker is idle and the statistics task still waits for its own worker
    assert _queued(broker, "statistics") == before + 1
    assert swept.state == "PENDING"

    procs.worker("worker-all")  # no -Q: every queue, as `make run`'s worker
    assert swept.get(timeout=90) == 0, procs.log("worker-all")
    assert _until(lambda: _queued(broker, "statistics") == 0), procs.log("worker-all")
