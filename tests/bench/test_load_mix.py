"""The realistic mix under load on the production-like set-up of this machine, beside pgbench in the
same run (issue 8, item 5). Run with ``make load`` (or ``make bench``, which runs every benchmark);
never in ``make test``.

1. A database of its own (``<DATABASE_URL's name>_load``, dropped at the end unless
   ``BENCH_KEEP_DB=1``), migrated and loaded with the demo market (``manage.py demo_load``, two months
   of price history, as the browser tests load theirs; about 30 s here), static files collected
   beside it, then ``load/floor.py``: API tokens for the recyclers, sessions for the government
   officers, the auctions to bid on, and the bid benchmark's baseline tables.
2. The production topology (``Procfile``) on one machine, with ``market.settings`` and ``DEBUG`` off:
   granian with ``LOAD_WORKERS`` WSGI workers (4, as ``WEB_CONCURRENCY``) of two threads for pages and the API,
   one daphne process for ``/ws/``, one Celery worker (solo pool, as the tests start it) consuming every
   queue and a separate Celery beat,
   all on PostgreSQL (persistent connections) and Redis under a prefix of their own. No proxy: the
   load generator talks to granian and daphne directly, as nginx would split them.
3. pgbench, the bid benchmark's transaction (lock one row, update it, insert one row; 32 clients,
   ``BENCH_SECONDS``), on one hot row and on 32 rows: the database's ceiling on this machine.
4. locust, headless (``load/locustfile.py``), ``LOAD_USERS`` users (50) for ``LOAD_SECONDS`` (60)
   after ramping up at ``LOAD_SPAWN_RATE`` users a second; statistics are reset once every user runs.
   The mix by weight: visitors browsing 10, searchers 5, watchers on websockets 8, bidders 6,
   government officers 2 (see the locustfile), with think times of one to a few seconds: the
   figures are what this mix asks of the set-up, and its latencies, not a saturation ceiling.

Requests per second, p50 and p99 and failures, per request and per kind (browse, search, watch, bid,
dashboard), go to ``test-results/bench-load.json`` and ``test-results/bench-load.md`` and are printed
with the pgbench figures and the load average before, during and after. The machine has 2 cores
shared by the load generator, every server process and PostgreSQL (and anything else running), so the
figures are this machine's, not a deployment's. Only correctness is asserted: no 5xx, no failed
request (expected refusals such as ``bid_too_low`` are answers), every kind served, bids accepted.
"""

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

from tests.bench import test_bid_bench as bids
from tests.conftest import worker_start
from tests.processes import free_port, pages_server_args, redis_forget, stop, wait_for

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "test-results"
SECONDS = float(os.environ.get("LOAD_SECONDS", "60"))
USERS = int(os.environ.get("LOAD_USERS", "50"))
SPAWN_RATE = float(os.environ.get("LOAD_SPAWN_RATE", "10"))
WORKERS = int(os.environ.get("LOAD_WORKERS", "4"))
HISTORY_DAYS = os.environ.get("LOAD_PRICE_HISTORY_DAYS", "64")
KINDS = ("browse", "search", "watch", "bid", "dashboard")


def _db() -> dict:
    name = settings.DATABASES["default"]["NAME"].removeprefix("test_")
    return {**bids._db(), "name": f"{name}_load"}


def _run(env: dict, *args: str, timeout: int = 600) -> str:
    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        pytest.fail(
            f"{' '.join(args[:3])} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}", pytrace=False
        )
    return done.stdout


@pytest.fixture(scope="module")
def market():
    """The load test's database with the demo market and the floor, its environment and var dir."""
    db = _db()
    var = Path(tempfile.mkdtemp(prefix="market-load-"))
    prefix = f"market-load-{os.getpid()}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "market.settings",  # production settings, over plain HTTP
        "DEBUG": "0",
        "SECRET_KEY": "load-test-secret-key-not-for-production-" + "x" * 30,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "DATABASE_URL": bids._url(db),
        "DB_CONN_MAX_AGE": "600",
        "REDIS_URL": settings.REDIS_URL,
        "REDIS_PREFIX": prefix,
        "ELASTICSEARCH_URL": "",  # the PostgreSQL full-text backend
        "MARKET_VAR_DIR": str(var),
        "DEMO_SIMULATOR": "0",
        "DEMO_PRICE_HISTORY_DAYS": HISTORY_DAYS,
        "LOAD_SECONDS": str(SECONDS),
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
    }
    started = time.monotonic()
    bids._admin(db, f'DROP DATABASE IF EXISTS "{db["name"]}" WITH (FORCE)')
    bids._admin(db, f'CREATE DATABASE "{db["name"]}"')
    bids._admin(db, f'ALTER DATABASE "{db["name"]}" SET synchronous_commit = off')  # while loading only
    try:
        static = subprocess.Popen(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        _run(env, "manage.py", "migrate", "--noinput", "-v", "0")
        _run(env, "manage.py", "demo_load", "--quiet-logins")
        floor = json.loads(_run(env, "-m", "tests.bench.load.floor").strip().splitlines()[-1])
        _, errors = static.communicate(timeout=600)
        if static.returncode != 0:
            pytest.fail(f"collectstatic failed: {errors[-3000:]}", pytrace=False)
        bids._admin(db, f'ALTER DATABASE "{db["name"]}" RESET synchronous_commit')  # as in production
        (var / "floor.json").write_text(json.dumps(floor, ensure_ascii=False))
        yield {"db": db, "env": env, "var": var, "floor": floor, "prepared_s": time.monotonic() - started}
    finally:
        if not os.environ.get("BENCH_KEEP_DB"):
            bids._admin(db, f'DROP DATABASE IF EXISTS "{db["name"]}" WITH (FORCE)')
            shutil.rmtree(var, ignore_errors=True)
        redis_forget(prefix)


def _up(url: str, proc: subprocess.Popen, log: Path) -> None:
    def answers() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"the server of {url} exited ({proc.returncode}); see {log}", pytrace=False)
        try:
            urllib.request.urlopen(url, timeout=5)
        except OSError as exc:
            return bool(getattr(exc, "code", None))  # an HTTP error is an answer: the server is up
        return True

    wait_for(answers, f"{url} did not answer; see {log}", every=0.3)


@pytest.fixture(scope="module")
def servers(market):
    """granian, daphne, a Celery worker and Celery beat, as the Procfile runs them."""
    env, var = market["env"], market["var"]
    RESULTS.mkdir(exist_ok=True)
    http, ws = free_port(), free_port()
    commands = {
        "granian": pages_server_args(
            http, workers=WORKERS, threads=2, extra=("--backlog", "2048", "--log-level", "warning")
        )[1:],
        "daphne": ["-m", "daphne", "-b", "127.0.0.1", "-p", str(ws), "market.asgi:application"],
        "beat": ["-m", "celery", "-A", "market", "beat", "-l", "WARNING", "-s", str(var / "celerybeat-schedule")],
    }  # fmt: skip
    logs = {name: open(RESULTS / f"bench-load-{name}.log", "w") for name in [*commands, "worker"]}  # noqa: SIM115
    procs = {}
    try:
        for name, args in commands.items():
            procs[name] = subprocess.Popen(
                [sys.executable, *args], cwd=ROOT, env=env, stdout=logs[name], stderr=subprocess.STDOUT
            )
        procs["worker"] = worker_start("load", env=env, log=logs["worker"])
        _up(f"http://127.0.0.1:{http}/", procs["granian"], RESULTS / "bench-load-granian.log")
        _up(f"http://127.0.0.1:{ws}/", procs["daphne"], RESULTS / "bench-load-daphne.log")
        yield {"http": http, "ws": ws, "procs": procs}
    finally:
        for proc in procs.values():
            stop(proc)
        for log in logs.values():
            log.close()


def _cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds (user + system) of each process with its children, the ones gone included (as
    their parent reaped them): the market's processes, and PostgreSQL's postmaster with its backends
    (every database of the server, so anything else using it too)."""
    import psutil

    def of(pid: int) -> float:
        try:
            proc = psutil.Process(pid)
            t = proc.cpu_times()
            total = t.user + t.system + t.children_user + t.children_system
            for child in proc.children(recursive=True):
                c = child.cpu_times()
                total += c.user + c.system
            return total
        except psutil.Error:
            return 0.0

    out = {name: of(pid) for name, pid in pids.items()}
    postmaster = next(
        (p.pid for p in psutil.process_iter(["name", "ppid"]) if p.info["name"] in ("postgres", "postmaster")
         and psutil.Process(p.info["ppid"]).name() not in ("postgres", "postmaster")),
        None,
    )  # fmt: skip
    if postmaster:
        out["PostgreSQL (whole server)"] = of(postmaster)
    return out


class LoadAverage(threading.Thread):
    """The one-minute load average every 5 s while the load runs."""

    def __init__(self):
        super().__init__(daemon=True)
        self.samples: list[float] = []
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.wait(5):
            self.samples.append(os.getloadavg()[0])


def _row(entries: list[dict], window: float) -> dict:
    times = [float(ms) for e in entries for ms, n in e["response_times"].items() for _ in range(n)]
    n = sum(e["num_requests"] for e in entries)
    return {
        "requests": n,
        "requests_per_s": n / window,
        "p50_ms": bids.percentile(times, 50),
        "p99_ms": bids.percentile(times, 99),
        "failures": sum(e["num_failures"] for e in entries),
    }


def _locust(market, servers, tmp: Path) -> tuple[dict, dict, float]:
    ramp = USERS / SPAWN_RATE
    extra_out, stats_out = tmp / "extra.json", tmp / "locust"
    env = {
        **os.environ,
        "LOAD_FLOOR": str(market["var"] / "floor.json"),
        "LOAD_WS": f"ws://127.0.0.1:{servers['ws']}",
        "LOAD_EXTRA_OUT": str(extra_out),
    }
    done = subprocess.run(
        [
            sys.executable, "-m", "locust", "-f", str(ROOT / "tests" / "bench" / "load" / "locustfile.py"),
            "--headless", "--host", f"http://127.0.0.1:{servers['http']}", "--users", str(USERS),
            "--spawn-rate", str(SPAWN_RATE), "--run-time", f"{int(SECONDS + ramp + 1)}s", "--reset-stats",
            "--only-summary", "--stop-timeout", "5", "--json-file", str(stats_out), "--loglevel", "WARNING",
        ],
        cwd=tmp, env=env, capture_output=True, text=True, timeout=SECONDS + ramp + 300,
    )  # fmt: skip
    (RESULTS / "bench-load-locust.log").write_text(done.stdout + done.stderr)
    if not Path(f"{stats_out}.json").exists():
        pytest.fail(f"locust wrote no statistics ({done.returncode}):\n{done.stderr[-4000:]}", pytrace=False)
    entries = json.loads(Path(f"{stats_out}.json").read_text())
    window = max(e["last_request_timestamp"] for e in entries) - min(e["start_time"] for e in entries)
    rows = {e["name"]: _row([e], window) for e in sorted(entries, key=lambda e: e["name"])}
    kinds = {k: _row([e for e in entries if e["name"].startswith(f"{k}:")], window) for k in KINDS}
    kinds["all HTTP"] = _row([e for e in entries if e["method"] != "WS"], window)
    return {"kinds": kinds, "requests": rows}, json.loads(extra_out.read_text()), window


def _markdown(report: dict) -> str:
    def ms(v):
        return f"{v:,.0f}" if v is not None and v >= 10 else ("–" if v is None else f"{v:.1f}")

    lines = [
        f"Load test {report['date']}: {report['users']} users for {report['seconds']:.0f} s ({report['window_s']:.0f} s "
        f"measured), granian {report['granian_workers']} WSGI workers + 1 daphne + 1 Celery worker + beat, "
        f"{report['cpus']} cores; load average before {report['load_before']:.2f}, during "
        f"{report['load_during_mean']:.2f} mean / {report['load_during_max']:.2f} max.",
        "",
        "| kind / request | requests | req/s | p50 ms | p99 ms | failures |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for kind, row in report["load"]["kinds"].items():
        lines.append(
            f"| **{kind}** | {row['requests']} | {row['requests_per_s']:.1f} | {ms(row['p50_ms'])} "
            f"| {ms(row['p99_ms'])} | {row['failures']} |"
        )
        for name, r in report["load"]["requests"].items():
            if name.startswith(f"{kind}:"):
                lines.append(
                    f"| &nbsp; {name} | {r['requests']} | {r['requests_per_s']:.1f} | {ms(r['p50_ms'])} "
                    f"| {ms(r['p99_ms'])} | {r['failures']} |"
                )
    for name, r in report["pgbench"].items():
        lines.append(
            f"| {name} (tps) | – | {r['requests_per_s']:,.0f} | {ms(r['p50_ms'])} | {ms(r['p99_ms'])} | – |"
        )
    extra = report["extra"]
    lines += [
        "",
        f"HTTP answers by status: {json.dumps(extra['statuses'])}. "
        f"Bids by answer: {json.dumps(extra['refusals'], ensure_ascii=False)}; websocket updates "
        f"before the snapshot {extra['ws_before_snapshot']}, sequence jumps of more than one {extra['ws_sequence_gaps']} "
        f"(expected when a proxy bid answers in the same transaction: one message, two steps; a lost message looks the same), duplicates "
        f"{extra['ws_duplicates']}, errors {json.dumps(extra['ws_errors'])}. "
        f"Bid rows inserted during the run (proxy bids included): {report['bid_rows_inserted']}.",
        "",
        "Cores used during the run (CPU seconds / wall seconds; the machine has "
        f"{report['cpus']}): "
        + ", ".join(f"{name} {share:.2f}" for name, share in report["cores_used"].items())
        + ".",
    ]
    return "\n".join(lines) + "\n"


def test_load_mix(market, servers, tmp_path):
    db = market["db"]
    load_before = os.getloadavg()[0]
    pgbench = {
        "pgbench: lock+update+insert, 1 hot row": bids._pgbench_run(db, tmp_path, row="1", tag="hot"),
        "pgbench: lock+update+insert, 32 rows": bids._pgbench_run(
            db, tmp_path, row=":client_id % 32 + 1", tag="many"
        ),
    }
    pids = {name: proc.pid for name, proc in servers["procs"].items()}
    with psycopg.connect(bids._url(db)) as conn:
        bid_rows = -conn.execute("SELECT count(*) FROM trading_bid").fetchone()[0]
    cpu_before, children_before, started = (
        _cpu_seconds(pids),
        resource.getrusage(resource.RUSAGE_CHILDREN),
        time.monotonic(),
    )
    sampler = LoadAverage()
    sampler.start()
    load, extra, window = _locust(market, servers, tmp_path)
    sampler.stopped.set()
    elapsed = time.monotonic() - started
    cpu = {name: (t - cpu_before.get(name, 0.0)) / elapsed for name, t in _cpu_seconds(pids).items()}
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu["locust (the load generator)"] = (
        children.ru_utime + children.ru_stime - children_before.ru_utime - children_before.ru_stime
    ) / elapsed
    during = sampler.samples or [os.getloadavg()[0]]
    with psycopg.connect(bids._url(db)) as conn:
        bid_rows += conn.execute("SELECT count(*) FROM trading_bid").fetchone()[0]
    report = {
        "date": datetime.now().astimezone().isoformat(timespec="minutes"),
        "users": USERS,
        "seconds": SECONDS,
        "window_s": window,
        "spawn_rate": SPAWN_RATE,
        "granian_workers": WORKERS,
        "cpus": os.cpu_count(),
        "prepared_s": market["prepared_s"],
        "load_before": load_before,
        "load_during_mean": sum(during) / len(during),
        "load_during_max": max(during),
        "load_after": os.getloadavg(),
        "floor": {"tokens": market["floor"]["tokens"], "auctions": len(market["floor"]["auctions"])},
        "pgbench": pgbench,
        "load": load,
        "extra": extra,
        "bid_rows_inserted": bid_rows,
        "cores_used": cpu,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench-load.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    table = _markdown(report)
    (RESULTS / "bench-load.md").write_text(table)
    print("\n" + table)

    # Correctness only, never times.
    errors = {status: n for status, n in extra["statuses"].items() if status.startswith("5") or status == "0"}
    assert not errors, f"server errors or dropped connections: {errors}"
    failed = {name: r["failures"] for name, r in load["requests"].items() if r["failures"]}
    assert not failed, f"failed requests (see test-results/bench-load-locust.log): {failed}"
    unexpected = {code: n for code, n in extra["refusals"].items() if code.startswith("unexpected")}
    assert not unexpected, unexpected
    assert not extra["ws_errors"], extra["ws_errors"]
    served = {kind: row["requests"] for kind, row in load["kinds"].items()}
    assert all(served[kind] for kind in KINDS), f"a kind of the mix was never served: {served}"
    assert extra["refusals"].get("accepted (201)"), "no bid was accepted"
    for name, proc in servers["procs"].items():
        assert proc.poll() is None, f"{name} exited during the load ({proc.returncode})"
