"""Fault tests: real server processes, killed, restarted and cut off from their services.

Every test here is marked ``faults`` (``make test-faults`` runs them alone; ``make test`` runs them
with the rest). The services a test breaks are its own: a PostgreSQL cluster made with ``initdb`` in
a temporary folder and a ``redis-server`` on a free port, so stopping them never disturbs the
machine's PostgreSQL and Redis (nor anything else running against them). Web servers are granian
processes, as in production (several workers, killed with SIGKILL and respawned by their master) or ``manage.py
serve`` (daphne, for websockets); the client in the test logs every answer it was given and the
test compares that log with the database afterwards.
"""

import glob
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

from tests.processes import Answer, call, free_port, pages_server_args, tail, wait_for

ROOT = Path(__file__).resolve().parents[2]


# --- services of the test's own ------------------------------------------------------------------


class PrivatePostgres:
    """A throwaway PostgreSQL cluster (trust auth, TCP on 127.0.0.1:<free port>), stoppable at will.

    Run as root, the cluster belongs to the ``postgres`` system user (PostgreSQL refuses root)."""

    def __init__(self, folder: Path):
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        pg_ctl = found[-1] if found else shutil.which("pg_ctl")
        if not pg_ctl:
            pytest.fail("the fault tests need PostgreSQL's server programs (pg_ctl, initdb)", pytrace=False)
        self.bin = Path(pg_ctl).parent
        self.folder = folder
        self.data = folder / "data"
        self.log = folder / "postgres.log"
        self.port = free_port()
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(folder, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                f"port = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{folder}'\n"
                "max_connections = 200\nshared_buffers = 64MB\n"
            )
        if self.as_postgres:
            shutil.chown(self.data / "postgresql.conf", "postgres", "postgres")

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin / program), *args]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            pytest.fail(
                f"{program} failed: {result.stdout}\n{result.stderr}\n{tail(self.log)}", pytrace=False
            )

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def url(self, name: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def create_database(self, name: str) -> None:
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    def query(self, name: str, sql: str, params=()) -> list[tuple]:
        with psycopg.connect(self.url(name)) as conn:
            return conn.execute(sql, params).fetchall()


class PrivateRedis:
    """A ``redis-server`` of the test's own on a free port (no persistence, like the machine's)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        server = shutil.which("redis-server")
        if not server:
            pytest.fail("the fault tests need redis-server", pytrace=False)
        self.proc = subprocess.Popen(
            [server, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.folder), "--logfile", str(self.folder / "redis.log")],
        )  # fmt: skip
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        wait_for(lambda: _pings(client), f"redis-server on {self.port} did not start", timeout=20, every=0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=20)


def _pings(client) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


@pytest.fixture
def scratch():
    folder = Path(tempfile.mkdtemp(prefix="market-faults-"))
    os.chmod(folder, 0o755)  # noqa: S103 - PostgreSQL's own user must reach its cluster inside
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def private_redis(scratch):
    redis_server = PrivateRedis(scratch)
    redis_server.start()
    try:
        yield redis_server
    finally:
        redis_server.stop()


# --- the market's processes ----------------------------------------------------------------------


def market_env(
    *, database_url: str, redis_url: str | None = None, prefix: str | None = None, **extra
) -> dict:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "market.settings_test",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url or settings.REDIS_URL,
        "REDIS_PREFIX": prefix or f"{settings.REDIS_PREFIX}faults-{os.getpid()}-",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": str(ROOT),
        # every bidder of a storm comes from 127.0.0.1
        "RATE_LIMIT_LOGIN": "6000/m",
        **extra,
    }


@dataclass
class Granian:
    """The Procfile's ``pages`` server (granian, ``pages_server_args``) with several worker processes. Its
    master respawns a killed worker; a worker killed again within 5.5 s of its respawn is taken for a
    crash loop, and granian exits: systemd (``Restart=always``) starts it again, as the supervisor
    thread here does (``restarts`` counts them)."""

    env: dict
    folder: Path
    workers: int = 3
    threads: int = 4
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    restarts: int = 0
    stopping: threading.Event = field(default_factory=threading.Event)
    supervisor: threading.Thread | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.folder / f"granian-{self.port}.log"

    def _spawn(self) -> None:
        with open(self.log, "a") as out:
            args = pages_server_args(
                self.port, workers=self.workers, threads=self.threads,
                extra=("--respawn-interval", "1", "--workers-kill-timeout", "5", "--backlog", "512"),
            )  # fmt: skip
            self.proc = subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT)

    def start(self) -> None:
        self.log.write_text("")
        self._spawn()
        wait_for(
            lambda: self._up(), f"granian did not start:\n{tail(self.log)}", timeout=90, every=0.3
        )  # fmt: skip
        self.supervisor = threading.Thread(target=self._supervise, daemon=True)
        self.supervisor.start()

    def _supervise(self) -> None:
        while not self.stopping.wait(0.2):
            if self.proc.poll() is not None:
                self.restarts += 1
                self._spawn()

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            pytest.fail(f"granian exited ({self.proc.returncode}):\n{tail(self.log)}", pytrace=False)
        try:
            urllib.request.urlopen(self.base + "/api/v1/open/indices/", timeout=5)
            return len(self.worker_pids()) == self.workers
        except urllib.error.HTTPError:
            return len(self.worker_pids()) == self.workers
        except OSError:
            return False

    def worker_pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
        return [int(pid) for pid in out.split()]

    def kill_a_worker(self, rng: random.Random) -> int | None:
        pids = self.worker_pids()
        if not pids:
            return None
        pid = rng.choice(pids)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return None
        return pid

    def stop(self) -> None:
        self.stopping.set()
        if self.supervisor is not None:
            self.supervisor.join(timeout=5)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def web_server_factory(scratch):
    started: list[Granian] = []

    def make(env: dict, **options) -> Granian:
        server = Granian(env=env, folder=scratch, **options)
        server.start()
        started.append(server)
        return server

    try:
        yield make
    finally:
        for server in started:
            server.stop()


def run_python(env: dict, *args: str, timeout: int = 600) -> str:
    """Run ``python *args`` in the market's environment; its output, or the test fails."""
    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        pytest.fail(f"{' '.join(args[:3])} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    return result.stdout


def run_module(env: dict, module: str, *args: str) -> dict:
    """Run ``python -m module``; its last line of output is JSON."""
    return json.loads(run_python(env, "-m", module, *args).strip().splitlines()[-1])


# --- a client that keeps a log of what it was told -----------------------------------------------


@dataclass
class ClientLog:
    """What the bidders were told: every final answer per idempotency key, and every try."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    final: dict = field(default_factory=dict)  # key -> Answer (a definite answer: 2xx or 4xx)
    tries: list = field(default_factory=list)  # (key, Answer) for every try

    def record_try(self, key: str, answer: Answer) -> None:
        with self.lock:
            self.tries.append((key, answer))

    def record_final(self, key: str, answer: Answer) -> None:
        with self.lock:
            self.final[key] = answer

    def accepted(self) -> dict:
        return {key: a for key, a in self.final.items() if a.status == 201}


# The bids the bidders placed themselves, as the client knows them: (lot, organisation, its maximum or,
# without one, its amount). A placed bid is the row with the user on it: a manual bid (stored above
# its amount when the market outbids a rival's proxy for it), or a raise of the leader's own maximum
# when the leader bids again; the market's proxy answers carry no user.
PLACED_BIDS_SQL = """
    SELECT s.lot_id, b.organisation_id, COALESCE(b.maximum, b.amount)
    FROM trading_bid b JOIN trading_sale s ON s.id = b.sale_id
    WHERE b.user_id IS NOT NULL AND s.lot_id = ANY(%s)
"""


def post_until_answered(
    log: ClientLog, base: str, path: str, token: str, body: dict, key: str, *, give_up_s: float = 90
) -> Answer:
    """POST with one idempotency key until the market gives a definite answer (2xx/4xx), retrying a
    lost connection or a 503 with jittered back-off, as a careful client does."""
    deadline = time.monotonic() + give_up_s
    delay = 0.05
    while True:
        answer = call(base, path, token, body, key)
        log.record_try(key, answer)
        if answer.status is not None and answer.status < 500:
            log.record_final(key, answer)
            return answer
        if time.monotonic() > deadline:
            return answer
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 1.0)
