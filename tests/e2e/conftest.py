"""Browser journeys (issue 7): the real market in a real browser.

One server for the whole session, as production runs it: PostgreSQL (a database of its own,
``<DATABASE_URL's name>_e2e``, created, migrated and loaded with the demo market, dropped at the end),
Redis (channel layer, cache, fan-out and Celery broker under a prefix of its own), daphne serving
pages and websockets (``manage.py serve --no-worker``) and a real Celery worker process with beat.
The demo's simulator is off, so nothing moves behind the journeys' backs. The browser tests run
last (tests/conftest.py orders them), and their database is prepared on a thread of subprocesses
from the end of collection on, while the rest of the suite runs.

One Chromium (Debian's ``/usr/bin/chromium``, driven by Playwright; never a downloaded browser) for
the session, a fresh browser context per user of a test. Each test saves full-page screenshots of
its key pages under ``test-results/e2e/<test>/NN-what.png``; a console error or an uncaught
exception on any page fails the test unless the test lists it as expected with a reason; on failure
the report carries every page's console errors, failed requests and error responses, a screenshot
of each open page and the tail of the server's and the worker's logs.

Chromium missing is a failure, never a skip (like an unreachable PostgreSQL): ``make test`` and
``.ci/run`` install it (``apt-get install chromium fonts-noto-cjk``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import dj_database_url
import psycopg
import pytest
from django.conf import settings

from tests.conftest import worker_start, worker_stop
from tests.processes import free_port, redis_forget, tail

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "test-results" / "e2e"
CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AXE = ROOT / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
# Price history of the demo: two months, enough for the indices' base month (two years in `make run`).
HISTORY_DAYS = os.environ.get("E2E_PRICE_HISTORY_DAYS", "64")
TIMEOUT_MS = 15_000


def pytest_report_header(config):
    return f"e2e: screenshots under {RESULTS.relative_to(ROOT)}/<test>/, browser {CHROMIUM}"


def _say(config, text: str) -> None:
    """A line on the terminal now, through pytest's output capture."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    if capture is None:
        reporter.write_line(text)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(text)


# --- the server under test ----------------------------------------------------------------------


def _db() -> dict:
    db = dj_database_url.parse(os.environ["DATABASE_URL"])  # market.settings_test sets a default
    name = db["NAME"]
    if name.startswith("test_"):  # never derive from pytest-django's copy
        name = name[len("test_") :]
    return {
        "host": db.get("HOST") or "127.0.0.1",
        "port": int(db.get("PORT") or 5432),
        "user": db.get("USER") or "postgres",
        "password": db.get("PASSWORD") or "",
        "name": f"{name}_e2e",
    }


def _db_url(db: dict) -> str:
    auth = f"{db['user']}:{db['password']}" if db["password"] else db["user"]
    return f"postgres://{auth}@{db['host']}:{db['port']}/{db['name']}"


def _db_admin(db: dict, *statements: str) -> None:
    with psycopg.connect(
        host=db["host"], port=db["port"], user=db["user"], password=db["password"] or None,
        dbname="postgres", autocommit=True,
    ) as conn:  # fmt: skip
        for sql in statements:
            conn.execute(sql)


def _db_exists(db: dict) -> bool:
    with psycopg.connect(
        host=db["host"], port=db["port"], user=db["user"], password=db["password"] or None,
        dbname="postgres", autocommit=True,
    ) as conn:  # fmt: skip
        return (
            conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["name"]]).fetchone() is not None
        )


@dataclass
class Server:
    base: str
    env: dict
    var: Path
    facts: dict
    proc: subprocess.Popen
    worker: subprocess.Popen

    @property
    def log(self) -> Path:
        return self.var / "serve.log"

    @property
    def worker_log(self) -> Path:
        return self.var / "worker.log"

    def alive(self) -> str | None:
        """Why the server or the worker is gone, or None."""
        for what, proc, log in (("server", self.proc, self.log), ("worker", self.worker, self.worker_log)):
            if proc.poll() is not None:
                return f"the e2e {what} exited ({proc.returncode}):\n{tail(log)}"
        return None


def _run(env: dict, args: list[str], *, timeout: int = 300) -> str:
    result = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args[1:3])} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
        )
    return result.stdout


class Preparation:
    """The server's database, demo market, static files and the probe's facts, made by subprocesses
    on a thread of their own: started as soon as collection knows browser tests will run, so it
    overlaps the rest of the suite (which runs first), and awaited by the server's fixture."""

    def __init__(self):
        self.db = _db()
        # E2E_KEEP_DB=1 keeps the database after the run and reuses it in the next (quicker to
        # iterate on a journey; the journeys pick rows they can still use), uploads beside it.
        self.keep = bool(os.environ.get("E2E_KEEP_DB"))
        self.var = ROOT / "var" / "e2e" if self.keep else Path(tempfile.mkdtemp(prefix="market-e2e-"))
        self.var.mkdir(parents=True, exist_ok=True)
        self.prefix = f"market-e2e-{os.getpid()}"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "market.settings_test",
            "DATABASE_URL": _db_url(self.db),
            "REDIS_URL": settings.REDIS_URL,
            "REDIS_PREFIX": self.prefix,
            "MARKET_VAR_DIR": str(self.var),  # static files, uploads and beat's schedule of this server
            "DEMO_SIMULATOR": "0",  # nothing moves behind the journeys' backs
            "DEMO_PRICE_HISTORY_DAYS": HISTORY_DAYS,
            "TRADING_SWEEP_S": "3",  # the close sweeper
            "RATE_LIMIT_LOGIN": "600/m",  # every journey logs in from 127.0.0.1
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(ROOT),
        }
        self.facts: dict | None = None
        self.error: BaseException | None = None
        self.seconds = 0.0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._prepare, name="e2e-prepare", daemon=True)
            self._thread.start()

    def wait(self) -> dict:
        self.start()
        self._thread.join()
        if self.error is not None:
            pytest.fail(f"the e2e server could not be prepared: {self.error}", pytrace=False)
        return self.facts

    def _prepare(self) -> None:
        started = time.monotonic()
        try:
            env, db = self.env, self.db
            reuse = self.keep and _db_exists(db)
            if not reuse:
                _db_admin(
                    db,
                    f'DROP DATABASE IF EXISTS "{db["name"]}" WITH (FORCE)',
                    f'CREATE DATABASE "{db["name"]}"',
                    # Throwaway: no waiting for the disk at each commit (the demo load commits a lot).
                    f'ALTER DATABASE "{db["name"]}" SET synchronous_commit = off',
                )
            static = subprocess.Popen(
                [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            if not reuse:
                _run(env, [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"])
                _run(env, [sys.executable, "manage.py", "demo_load", "--quiet-logins"])
            _, errors = static.communicate(timeout=300)
            if static.returncode != 0:
                raise RuntimeError(f"collectstatic failed: {errors[-3000:]}")
            out = _run(env, [sys.executable, "-m", "tests.e2e.probe"])
            self.facts = json.loads(out.strip().splitlines()[-1])
        except BaseException as exc:  # given to the fixture, which fails the tests
            self.error = exc
        self.seconds = time.monotonic() - started

    def cleanup(self) -> None:
        if self._thread is not None:
            self._thread.join()
        if not self.keep:
            _db_admin(self.db, f'DROP DATABASE IF EXISTS "{self.db["name"]}" WITH (FORCE)')
            shutil.rmtree(self.var, ignore_errors=True)
        redis_forget(self.prefix)


_preparation: Preparation | None = None


def pytest_collection_finish(session):
    """Browser tests selected: prepare their server now, beside the tests that run before them."""
    global _preparation
    if session.config.option.collectonly or _preparation is not None:
        return
    if any(item.get_closest_marker("e2e") for item in session.items) and Path(CHROMIUM).exists():
        _preparation = Preparation()
        _preparation.start()
        _say(
            session.config,
            f"e2e: preparing the browser tests' server in the background ({_preparation.db['name']}); "
            f"their screenshots go to {RESULTS}/<test>/",
        )


def pytest_sessionfinish(session):
    global _preparation
    if _preparation is not None:  # prepared, but the server's fixture never ran (or already cleaned)
        _preparation.cleanup()
        _preparation = None


@pytest.fixture(scope="session")
def e2e_server(request):
    global _preparation
    started = time.monotonic()
    prep = _preparation or Preparation()
    _preparation = None  # cleaned up here, not at the session's end
    proc = worker = None
    logs = []
    try:
        facts = prep.wait()
        waited = time.monotonic() - started
        env, var = prep.env, prep.var
        logs.append(open(var / "worker.log", "w"))  # noqa: SIM115 - closed at the end of the session
        worker = worker_start("e2e", env=env, beat=True, log=logs[-1])
        port = free_port()
        logs.append(open(var / "serve.log", "w"))  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--no-worker", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=env, stdout=logs[-1], stderr=subprocess.STDOUT,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/", timeout=5)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the e2e server did not start:\n{tail(var / 'serve.log')}", pytrace=False)
                time.sleep(0.3)
        _say(
            request.config,
            f"\ne2e: server {base} on {prep.db['name']} (Redis prefix {prep.prefix}); demo market prepared "
            f"in {prep.seconds:.0f} s (waited {waited:.0f} s for it), serving after "
            f"{time.monotonic() - started:.0f} s",
        )
        yield Server(base=base, env=env, var=var, facts=facts, proc=proc, worker=worker)
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if worker is not None:
            worker_stop(worker)
        for log in logs:
            log.close()
        prep.cleanup()


# --- the browser ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser(request):
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium is missing ({CHROMIUM}): the browser tests fail rather than skip. Install it with "
            "`apt-get install -y chromium fonts-noto-cjk` (`make test` and .ci/run do this as root), or "
            "point E2E_CHROMIUM at a Chromium binary.",
            pytrace=False,
        )
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        pytest.fail(
            "the Python package playwright is missing: `make install` installs the dev extras", pytrace=False
        )
    if (
        shutil.which("fc-list")
        and "Noto Sans CJK" not in subprocess.run(["fc-list"], capture_output=True, text=True).stdout
    ):
        _say(
            request.config, "e2e: no CJK font (fonts-noto-cjk): screenshots will show boxes for Chinese text"
        )
    shutil.rmtree(RESULTS, ignore_errors=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    _say(request.config, f"\ne2e: screenshots of the browser journeys under {RESULTS}/<test>/")
    expect.set_options(timeout=TIMEOUT_MS)
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()


# --- one test's pages -------------------------------------------------------------------------------


@dataclass
class PageLog:
    who: str
    console: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    responses: list[str] = field(default_factory=list)
    visited: list[str] = field(default_factory=list)


class Journey:
    """The pages of one test: a fresh browser context per user, screenshots, console watch, axe."""

    def __init__(self, browser, server: Server, name: str):
        self.browser = browser
        self.server = server
        self.folder = RESULTS / re.sub(r"[^\w.-]+", "-", name).strip("-")
        self.contexts = []
        self.pages: list[tuple[object, PageLog]] = []
        self.expected: list[tuple[re.Pattern, str]] = []
        self.shots = 0

    # pages and users

    def page(self, who: str | None = None, **context_options):
        """A new browser context (its own cookies) and page; logged in through the login form when
        ``who`` is a demo e-mail."""
        context = self.browser.new_context(
            base_url=self.server.base,
            locale="zh-CN",
            timezone_id="Asia/Shanghai",
            viewport={"width": 1280, "height": 900},
            accept_downloads=True,
            **context_options,
        )
        context.set_default_timeout(TIMEOUT_MS)
        self.contexts.append(context)
        page = context.new_page()
        log = PageLog(who=who or "访客")
        self.pages.append((page, log))
        page.on("console", lambda msg: self._console(page, log, msg))
        page.on("pageerror", lambda exc: log.console.append(f"[uncaught] {page.url}: {exc}"))
        page.on("requestfailed", lambda req: log.failed.append(f"{req.method} {req.url}: {req.failure}"))
        page.on(
            "response",
            lambda resp: (
                log.responses.append(f"{resp.status} {resp.request.method} {resp.url}")
                if resp.status >= 400
                else None
            ),
        )
        page.on(
            "framenavigated",
            lambda frame: log.visited.append(frame.url) if frame is page.main_frame else None,
        )
        if who:
            self.login(page, who)
        return page

    @staticmethod
    def _console(page, log: PageLog, msg) -> None:
        if msg.type == "error":
            where = msg.location.get("url") or page.url
            log.console.append(f"[console] {page.url}: {msg.text} ({where})")

    def login(self, page, email: str) -> None:
        from playwright.sync_api import expect

        from frontend.demo import DEMO_PASSWORD

        page.goto("/login/")
        page.get_by_label("邮箱").fill(email)
        page.get_by_label("密码").fill(DEMO_PASSWORD)
        page.locator("main").get_by_role("button", name="登录").click()
        expect(page.get_by_role("button", name="退出登录")).to_be_visible()

    @staticmethod
    def wait_until(page, condition, message: str, timeout_ms: int = TIMEOUT_MS) -> None:
        """Wait for something the page's events tell Python (a websocket frame), letting Playwright
        deliver them meanwhile; for what the page shows, use expect()."""
        deadline = time.monotonic() + timeout_ms / 1000
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(message)
            page.wait_for_timeout(50)

    @staticmethod
    def unread(page) -> int:
        """The bell's count of unread notifications (hidden at 0)."""
        badge = page.locator("[data-bell] [data-unread-count]")
        return int(badge.inner_text() or 0) if badge.is_visible() else 0

    @staticmethod
    def expect_unread_above(page, count: int) -> None:
        """Wait until the bell counts more than ``count``, live. More than one more may come: the
        demo's auctions keep closing beside the journeys, and their bidders hear of it."""
        page.wait_for_function(
            "n => Number(document.querySelector('[data-bell] [data-unread-count]')?.textContent || 0) > n",
            arg=count,
            timeout=TIMEOUT_MS,
        )

    @staticmethod
    def toast(page, text: str):
        """The live notification (toast) that says ``text``."""
        return page.locator("#toasts .toast").filter(has_text=text).first

    def expect_console_error(self, pattern: str, reason: str) -> None:
        """A console error this journey is known to cause, with why it is all right."""
        self.expected.append((re.compile(pattern), reason))

    # evidence

    def shot(self, page, what: str) -> Path:
        self.shots += 1
        self.folder.mkdir(parents=True, exist_ok=True)
        slug = re.sub(r"[^\w.-]+", "-", what)
        path = self.folder / f"{self.shots:02d}-{slug}.png"
        page.screenshot(path=path, full_page=True)
        return path

    def unexpected(self) -> list[str]:
        out = []
        for _page, log in self.pages:
            for line in log.console:
                if not any(p.search(line) for p, _reason in self.expected):
                    out.append(f"{log.who} {line}")
        return out

    def report(self) -> str:
        parts = []
        for _page, log in self.pages:
            parts.append(f"--- {log.who}: pages {' → '.join(dict.fromkeys(log.visited)) or '(none)'}")
            for title, rows in (
                ("console errors", log.console),
                ("failed requests", log.failed),
                ("error responses", log.responses),
            ):
                if rows:
                    parts.append(f"{title}:\n  " + "\n  ".join(rows))
        return "\n".join(parts)

    def close(self) -> None:
        for context in self.contexts:
            with contextlib.suppress(Exception):  # a crashed context has nothing left to close
                context.close()

    # accessibility

    def axe(self, page, name: str, known: dict[str, str] | None = None) -> None:
        """axe-core on the page as it stands: no violation of impact critical or serious, except
        rules listed in ``known`` (rule id: why). Every violation is written to axe-<name>.json."""
        if not AXE.exists():
            pytest.fail(f"{AXE} is missing: run `make frontend` (npm ci installs axe-core)", pytrace=False)
        # Evaluated through the DevTools protocol, which the page's Content Security Policy does not
        # govern: add_script_tag would insert an inline <script> that script-src 'self' refuses.
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;void 0")
        violations = page.evaluate(
            """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 8).map(n => ({target: n.target.join(" "), summary: n.failureSummary}))
            }))"""
        )
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / f"axe-{name}.json").write_text(json.dumps(violations, ensure_ascii=False, indent=2))
        known = known or {}
        serious = [v for v in violations if v["impact"] in ("critical", "serious") and v["id"] not in known]
        assert not serious, f"axe on {name} ({page.url}): " + json.dumps(
            serious, ensure_ascii=False, indent=2
        )


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Overrides the suite's: clearing this process's cache flushes the whole Redis database, which
    the e2e server shares under its own prefix (its Celery queues and bindings, channel layer and
    fan-out). The journeys use no cache of this process."""
    yield


@pytest.fixture
def journey(request, browser, e2e_server):
    why = e2e_server.alive()
    if why:
        pytest.fail(why, pytrace=False)
    j = Journey(browser, e2e_server, request.node.name)
    yield j
    j.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    result = yield  # raises when the test failed: then its own error is the message
    j = item.funcargs.get("journey")
    if j is not None:
        unexpected = j.unexpected()
        assert not unexpected, "console errors on the journey's pages:\n" + "\n".join(unexpected)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    j = item.funcargs.get("journey") if hasattr(item, "funcargs") else None
    if j is not None and report.when == "call" and report.failed:
        for page, log in j.pages:
            if not page.is_closed():
                try:
                    j.shot(page, f"failure-{log.who}")
                except Exception as exc:  # the report matters more than the picture
                    log.failed.append(f"(no failure screenshot: {exc})")
        report.sections.append(("browser", j.report()))
        report.sections.append(("e2e server log (tail)", tail(j.server.log)))
        report.sections.append(("e2e worker log (tail)", tail(j.server.worker_log)))
    return report
