"""What `make run` serves, without any server installed: SQLite, a SQLite-file Celery broker, the
in-memory channel layer, and one `manage.py serve` process running daphne plus a worker and beat.

The test drives it like a visitor: the Chinese home page over HTTP, a login, a websocket, and a
background job in the in-process worker whose notification reaches that websocket.
"""

import asyncio
import http.cookiejar
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import websockets

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    var = tmp_path_factory.mktemp("embedded-var")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "SECRET_KEY"}
    }
    env.update(
        DEBUG="1",
        MARKET_VAR_DIR=str(var),
        DJANGO_SETTINGS_MODULE="market.settings",
        PYTHONUNBUFFERED="1",
        DEMO_SIMULATOR="0",  # these tests pick lots and notices: no simulated traders acting beside them
    )

    def manage(*args, timeout=300):
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
        return result

    manage("migrate", "--noinput")
    manage("demo_load", "--quiet-logins")
    port = free_port()
    log = open(var / "serve.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(base + "/", timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.5)
    try:
        yield {"base": base, "port": port, "manage": manage, "log": var / "serve.log", "proc": proc}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def login(base: str, email: str, password: str) -> http.cookiejar.CookieJar:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(base + "/login/", timeout=10).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    data = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": token, "username": email, "password": password}
    ).encode()
    request = urllib.request.Request(base + "/login/", data=data, headers={"Referer": base + "/login/"})
    opener.open(request, timeout=10)
    assert any(c.name == "sessionid" for c in jar), "login did not set a session"
    return jar


def test_home_page_is_served_in_chinese(embedded):
    html = urllib.request.urlopen(embedded["base"] + "/", timeout=10).read().decode()
    assert "再生资源交易市场" in html
    assert 'lang="zh-hans"' in html or 'lang="zh-Hans"' in html


def test_background_job_in_the_embedded_worker_reaches_an_open_websocket(embedded):
    from frontend.demo import DEMO_PASSWORD

    jar = login(embedded["base"], "lead@demo.market", DEMO_PASSWORD)
    cookie = "; ".join(f"{c.name}={c.value}" for c in jar)

    async def scenario():
        uri = f"ws://127.0.0.1:{embedded['port']}/ws/notifications/"
        async with websockets.connect(
            uri, additional_headers={"Cookie": cookie, "Origin": embedded["base"]}
        ) as ws:
            # Another process (like a cron job or an admin command) queues the licence sweep into
            # the SQLite broker; the worker thread inside `serve` runs it and notifies the members.
            code = (
                "from datetime import timedelta; from django.utils import timezone;"
                "from market.accounts.models import Licence; from market.accounts.tasks import licences_expiry_sweep;"
                "Licence.objects.filter(number__startswith='豫环许可').update("
                "valid_to=timezone.localdate() + timedelta(days=5), expiry_warned_at=None);"
                "licences_expiry_sweep.delay()"
            )
            await asyncio.to_thread(embedded["manage"], "shell", "-c", code)
            message = json.loads(await asyncio.wait_for(ws.recv(), timeout=45))
            return message

    message = asyncio.run(scenario())
    assert message["type"] == "notify"
    assert "豫环许可" in message["title"], message


def test_a_bid_through_the_api_reaches_a_watcher_of_the_lot(embedded):
    """The embedded fan-out (no Redis): the API thread's update reaches daphne's sockets."""
    from frontend.demo import DEMO_PASSWORD

    base = embedded["base"]

    def call(path, body=None, token=None):
        request = urllib.request.Request(
            base + path,
            data=json.dumps(body).encode() if body is not None else None,
            headers={
                "Content-Type": "application/json",
                **({"Authorization": f"Token {token}"} if token else {}),
            },
        )
        with urllib.request.urlopen(request, timeout=20) as response:
            return json.loads(response.read())

    token = call("/api/v1/auth/token/", {"email": "scrapyard@demo.market", "password": DEMO_PASSWORD})[
        "token"
    ]
    lots = call("/api/v1/lots/?mode=auction&hazardous=false&sort=closing&page_size=50", token=token)[
        "results"
    ]
    for lot in lots:
        state = call(f"/api/v1/lots/{lot['id']}/state/", token=token)
        if (
            state["deposit_amount"] == "0.00"
            and not state["you"]["is_seller"]
            and not state["you"]["leading"]
        ):
            break
    else:
        pytest.fail("no open auction in the demo market")

    async def scenario():
        uri = f"ws://127.0.0.1:{embedded['port']}/ws/lots/{lot['id']}/"
        async with websockets.connect(uri, additional_headers={"Origin": base}) as ws:
            snapshot = json.loads(await asyncio.wait_for(ws.recv(), timeout=20))
            body = {"amount": state["minimum_next"]}
            await asyncio.to_thread(call, f"/api/v1/lots/{lot['id']}/bids/", body, token)
            update = json.loads(await asyncio.wait_for(ws.recv(), timeout=20))
            return snapshot, update

    snapshot, update = asyncio.run(scenario())
    assert snapshot["type"] == "snapshot"
    assert update["type"] == "state" and update["state"]["sequence"] > snapshot["state"]["sequence"]
    assert update["state"]["current_price"] == state["minimum_next"]
