"""Helpers for tests that run the market's own processes (servers, workers) beside the test:
ports, log tails, stopping, waiting, the test database's URL and a Redis prefix's clean-up."""

import http.client
import json
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


ROOT = Path(__file__).resolve().parents[1]


def procfile_command(process: str) -> list[str]:
    """The command the ``Procfile`` gives ``process``, split as a shell would."""
    (line,) = re.findall(rf"^{re.escape(process)}:\s*(.+)$", (ROOT / "Procfile").read_text(), re.M)
    return shlex.split(line)


def pages_server_args(port: int, *, workers: int, threads: int, extra: tuple[str, ...] = ()) -> list[str]:
    """The ``Procfile``'s ``pages`` command (granian, production's flags) on ``port`` with ``workers``
    processes of ``threads`` threads, run by this interpreter; ``extra`` flags go before the app."""
    args = procfile_command("pages")
    values = {"--port": port, "--workers": workers, "--blocking-threads": threads}
    for flag, value in values.items():
        args[args.index(flag) + 1] = str(value)
    return [sys.executable, "-m", "granian", *args[1:-1], *extra, args[-1]]


def tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def stop(proc: subprocess.Popen, timeout: float = 20) -> None:
    """Terminate a process politely, then kill it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for(condition, message: str, timeout: float = 60, every: float = 0.2):
    """Poll ``condition`` until it is truthy (returned) or fail the test with ``message``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(message, pytrace=False)
        time.sleep(every)


def db_url() -> str:
    """The URL of the database this test runs on (pytest-django's test database)."""
    from django.db import connection

    db = connection.settings_dict
    auth = f"{db['USER']}:{db['PASSWORD']}" if db.get("PASSWORD") else db["USER"]
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def redis_forget(prefix: str) -> None:
    """Delete every key under ``prefix`` in the suite's Redis."""
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    for i in range(0, len(keys), 500):
        client.delete(*keys[i : i + 500])


def waiting_for_lock() -> bool:
    """Whether a session of the test database waits for a lock (a worker stopped inside its
    transaction by a row the test holds)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE NOT l.granted AND a.datname = current_database()"
        )
        return cursor.fetchone()[0] > 0


# --- an API client that never raises: every try ends in an Answer ----------------------------


@dataclass
class Answer:
    status: int | None  # None: no answer (connection refused or reset)
    body: dict
    seconds: float
    at: float = field(default_factory=time.monotonic)  # when it arrived


def call(
    base: str, path: str, token: str, body: dict | None = None, key: str | None = None, timeout=30
) -> Answer:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method="POST" if body is not None else "GET")
    request.add_header("Authorization", f"Token {token}")
    request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("Idempotency-Key", key)
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(response.status, json.loads(response.read() or b"{}"), time.monotonic() - started)
    except urllib.error.HTTPError as exc:
        try:
            raw = exc.read() or b"{}"
        except (OSError, http.client.HTTPException) as cut:  # the answer's body was cut off
            return Answer(None, {"error": repr(cut)}, time.monotonic() - started)
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = {"raw": raw[:200].decode(errors="replace")}
        return Answer(exc.code, parsed, time.monotonic() - started)
    except (
        OSError,
        ValueError,
        http.client.HTTPException,
    ) as exc:  # refused, reset, cut mid-answer, timed out
        return Answer(None, {"error": repr(exc)}, time.monotonic() - started)
