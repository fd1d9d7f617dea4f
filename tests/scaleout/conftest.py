"""Helpers of the scale-out tests: real server and worker processes on the test database and Redis,
under a Redis prefix of their own (removed afterwards)."""

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

from tests.processes import db_url, free_port, redis_forget, stop, tail

ROOT = Path(__file__).resolve().parents[2]


class Processes:
    """Server and worker processes sharing this test's database and one Redis prefix."""

    def __init__(self, var: Path, prefix: str, *, forget: bool = True):
        self.var, self.prefix, self.forget = var, prefix, forget
        self.procs: list[tuple[subprocess.Popen, Path]] = []
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "market.settings_test",
            "DATABASE_URL": db_url(),
            "REDIS_URL": settings.REDIS_URL,
            "REDIS_PREFIX": prefix,
            "MARKET_VAR_DIR": str(var),
            "DEMO_SIMULATOR": "0",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(ROOT),
        }

    def _start(self, name: str, args: list[str]) -> subprocess.Popen:
        log_path = self.var / f"{name}.log"
        with open(log_path, "w") as log:  # the child keeps its own descriptor
            proc = subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append((proc, log_path))
        return proc

    def server(self, name: str) -> str:
        """``manage.py serve --no-worker`` (daphne: pages, API, websockets) on a free port; its base URL
        once it answers."""
        port = free_port()
        proc = self._start(
            name,
            [sys.executable, "manage.py", "serve", "--no-worker", "--host", "127.0.0.1", "--port", str(port)],
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(base + "/api/v1/", timeout=5)
                return base
            except urllib.error.HTTPError:
                return base  # it answered
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"server {name} did not start:\n{tail(self.var / f'{name}.log')}")
                time.sleep(0.3)

    def worker(self, name: str, queues: list[str] | None = None) -> subprocess.Popen:
        """A real Celery worker (solo pool), on ``queues`` only, or on every queue as ``make run``'s."""
        args = [sys.executable, "-m", "celery", "-A", "market", "worker", "--pool=solo", "--loglevel=INFO"]
        args += [
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
            "-n",
            f"{name}-{os.getpid()}@%h",
        ]
        if queues:
            args += ["-Q", ",".join(queues)]
        return self._start(name, args)

    def log(self, name: str) -> str:
        return tail(self.var / f"{name}.log")

    def close(self) -> None:
        for proc, _log in self.procs:
            stop(proc)
        if self.forget:
            redis_forget(self.prefix)


@pytest.fixture
def processes(tmp_path):
    """Processes under a Redis prefix of their own, removed afterwards."""
    procs = Processes(tmp_path, f"market-scaleout-{os.getpid()}-{time.monotonic_ns()}")
    try:
        yield procs
    finally:
        procs.close()


@pytest.fixture
def suite_processes(tmp_path):
    """Processes under this test process's own Redis prefix, so tasks sent here reach them."""
    procs = Processes(tmp_path, settings.REDIS_PREFIX, forget=False)
    try:
        yield procs
    finally:
        procs.close()
