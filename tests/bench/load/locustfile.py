"""The realistic mix of the load test (issue 8, item 5), run headless by ``test_load_mix.py``:

    locust -f tests/bench/load/locustfile.py --headless --host http://127.0.0.1:<granian> ...

with ``LOAD_FLOOR`` (the JSON printed by ``floor.py``), ``LOAD_WS`` (the daphne server's
``ws://host:port``) and ``LOAD_EXTRA_OUT`` (where the counts locust's table has no column for are
written: expected refusals by code, websocket sequence gaps). No Django here: this runs under gevent.

Every request is named ``<kind>: <what>``; the kinds are browse, search, watch, bid and dashboard.

- **Visitors** browse: the home page, the lot list with filters, a lot's page, the index list, an
  index, the open-data page.
- **Searchers** search lots with a word (the PostgreSQL full-text backend; ``ELASTICSEARCH_URL`` is
  unset), sometimes with a filter and a sort, sometimes through the API.
- **Watchers** (recyclers on a lot's page) hold ``/ws/lots/{id}/`` open with the ``websockets`` sync
  client (gevent-patched): ``watch: connect+snapshot`` is the time from opening the socket to the
  snapshot; ``watch: update`` is each pushed state's delay from its ``server_time`` (taken in the
  bid's transaction, before commit) to its receipt, on this machine's one clock.
- **Bidders** read a lot's state (``/state/``, as the page does before the websocket takes over)
  and bid its minimum through the API with their API token and a fresh ``Idempotency-Key``.
  Refusals a busy auction gives (``bid_too_low``: outbid meanwhile; ``already_leading``) are
  answers, not failures; they are counted by code.
- **Government officers** load their dashboard and drill into a region or a category, with a
  session made by ``floor.py``.
"""

import json
import os
import random
import time
import uuid
from collections import Counter
from datetime import datetime
from urllib.parse import urlencode

from locust import FastHttpUser, User, between, events, task
from websockets.exceptions import WebSocketException
from websockets.sync.client import connect

FLOOR = json.loads(open(os.environ["LOAD_FLOOR"], encoding="utf-8").read())  # noqa: SIM115
WS = os.environ.get("LOAD_WS", "ws://127.0.0.1:8101")
EXPECTED_REFUSALS = {"bid_too_low", "already_leading"}
EXTRA = {
    "statuses": Counter(),  # HTTP answers by status, every request
    "refusals": Counter(),  # bids by answer
    "ws_before_snapshot": 0,  # updates that arrived before the snapshot (dropped, as the page does)
    "ws_sequence_gaps": 0,  # a jump of more than one: a proxy bid answered in the same transaction, or a loss
    "ws_duplicates": 0,
    "ws_errors": Counter(),
}


@events.spawning_complete.add_listener
def _extra_reset(user_count, **kwargs):
    """Counted from where locust's statistics start again (``--reset-stats``, every user running)."""
    for key, value in EXTRA.items():
        EXTRA[key] = Counter() if isinstance(value, Counter) else 0


@events.test_stop.add_listener
def _extra_write(environment, **kwargs):
    path = os.environ.get("LOAD_EXTRA_OUT")
    if path:
        with open(path, "w", encoding="utf-8") as out:
            json.dump(EXTRA, out, ensure_ascii=False)


def _auction() -> dict:
    """An auction, the first ones far more often (a few hot lots, a long tail), for bidders and watchers alike."""
    auctions = FLOOR["auctions"]
    return random.choices(auctions, weights=[1 / (i + 1) for i in range(len(auctions))])[0]


def _ok(response, *expected):
    """Marks an answer failed unless its status is one of ``expected`` (a redirect is not followed)."""
    EXTRA["statuses"][str(response.status_code)] += 1
    if response.status_code not in expected:
        response.failure(f"HTTP {response.status_code}")
    else:
        response.success()


class Reader(FastHttpUser):
    abstract = True
    wait_time = between(1, 4)

    def page(self, path: str, name: str, params: dict | None = None, headers: dict | None = None):
        url = f"{path}?{urlencode(params)}" if params else path
        with self.client.get(
            url, name=name, headers=headers, catch_response=True, allow_redirects=False
        ) as r:
            _ok(r, 200)


class Visitor(Reader):
    weight = 10

    @task(3)
    def home(self):
        self.page("/", "browse: home")

    @task(3)
    def lot_list(self):
        params = {"category": random.choice(FLOOR["categories"])}
        if random.random() < 0.5:
            params["region"] = random.choice(FLOOR["provinces"])
        if random.random() < 0.5:
            params["mode"] = random.choice(["auction", "fixed", "tender"])
        params["sort"] = random.choice(["newest", "closing", "price_asc"])
        self.page("/lots/", "browse: lot list (filters)", params)

    @task(4)
    def lot(self):
        self.page(f"/lots/{random.choice(FLOOR['lots'])}/", "browse: lot page")

    @task(1)
    def index_list(self):
        self.page("/indices/", "browse: index list")

    @task(2)
    def index(self):
        self.page(f"/indices/{random.choice(FLOOR['indices'])}/", "browse: index page")

    @task(1)
    def open_data(self):
        self.page("/open-data/", "browse: open data")


class Searcher(Reader):
    weight = 5

    @task(4)
    def search(self):
        self.page("/lots/", "search: lots by word", {"q": random.choice(FLOOR["words"])})

    @task(2)
    def search_filtered(self):
        params = {"q": random.choice(FLOOR["words"]), "sort": random.choice(["relevance", "price_desc"])}
        params["region"] = random.choice(FLOOR["provinces"])
        self.page("/lots/", "search: word and filters", params)

    @task(1)
    def search_api(self):
        self.page("/api/v1/lots/", "search: API", {"q": random.choice(FLOOR["words"])})


class Bidder(FastHttpUser):
    weight = 6
    wait_time = between(1, 3)

    def on_start(self):
        self.auction = _auction()
        self.token = random.choice(self.auction["tokens"])

    @task
    def bid(self):
        lot = self.auction["lot"]
        auth = {"Authorization": f"Token {self.token}"}
        with self.client.get(
            f"/api/v1/lots/{lot}/state/", name="bid: lot state", headers=auth, catch_response=True
        ) as r:
            _ok(r, 200)
            state = r.json() if r.status_code == 200 else {}
        if (
            state.get("status") != "active"
            or not state.get("minimum_next")
            or (state.get("you") or {}).get("leading")
        ):
            self.on_start()  # closed meanwhile, or this bidder leads: on to another auction
            return
        headers = {**auth, "Idempotency-Key": uuid.uuid4().hex, "Content-Type": "application/json"}
        body = json.dumps({"amount": state["minimum_next"]})
        path = f"/api/v1/lots/{lot}/bids/"
        with self.client.post(path, data=body, headers=headers, name="bid: place", catch_response=True) as r:
            EXTRA["statuses"][str(r.status_code)] += 1
            if r.status_code == 201:
                r.success()
                EXTRA["refusals"]["accepted (201)"] += 1
                self.on_start()
                return
            try:
                code = r.json().get("code", "")
            except ValueError:
                code = ""
            if r.status_code in (400, 409) and code in EXPECTED_REFUSALS:
                EXTRA["refusals"][code] += 1
                r.success()
            else:
                EXTRA["refusals"][f"unexpected {r.status_code} {code}"] += 1
                r.failure(f"HTTP {r.status_code} {code}")


class Official(Reader):
    weight = 2
    wait_time = between(3, 8)

    def on_start(self):
        self.officer = random.choice(FLOOR["officers"])
        self.cookie = {"Cookie": f"{self.officer['cookie']}={self.officer['session']}"}

    def board(self, name: str, params: dict | None = None):
        self.page("/dashboard/", name, params, headers=self.cookie)

    @task(3)
    def dashboard(self):
        self.board("dashboard: own region")

    @task(2)
    def region(self):
        self.board("dashboard: a region", {"region": random.choice(self.officer["regions"])})

    @task(2)
    def category(self):
        params = {"region": self.officer["regions"][0], "category": random.choice(self.officer["categories"])}
        self.board("dashboard: a category", params)


class Watcher(User):
    """A recycler with a lot's page open: its socket, held for 15 to 40 s, then the next lot."""

    weight = 8
    wait_time = between(1, 3)

    def fire(self, name: str, started: float, *, ms: float | None = None, length=0, exception=None):
        self.environment.events.request.fire(
            request_type="WS", name=name, response_time=ms if ms is not None else (time.perf_counter() - started) * 1000,
            response_length=length, exception=exception, context={},
        )  # fmt: skip

    @task
    def watch(self):
        lot = _auction()["lot"]
        url = f"{WS}/ws/lots/{lot}/"
        origin = "http://" + WS.split("://", 1)[1]
        started = time.perf_counter()
        try:
            socket = connect(url, origin=origin, open_timeout=30, close_timeout=2)
        except (OSError, TimeoutError, WebSocketException) as exc:
            EXTRA["ws_errors"][type(exc).__name__] += 1
            self.fire("watch: connect+snapshot", started, exception=exc)
            return
        with socket:
            # An update published between the socket joining the lot's group and the snapshot may
            # come first (the consumer joins, then reads): older than the snapshot, it is dropped.
            snapshot = {}
            while snapshot.get("type") != "snapshot":
                try:
                    first = socket.recv(timeout=30)
                except (TimeoutError, WebSocketException) as exc:
                    EXTRA["ws_errors"][type(exc).__name__] += 1
                    self.fire("watch: connect+snapshot", started, exception=exc)
                    return
                snapshot = json.loads(first)
                EXTRA["ws_before_snapshot"] += snapshot.get("type") != "snapshot"
            self.fire("watch: connect+snapshot", started, length=len(first))
            sequence = (snapshot.get("state") or {}).get("sequence", 0)
            until = time.monotonic() + random.uniform(15, 40)
            while (left := until - time.monotonic()) > 0:
                try:
                    message = socket.recv(timeout=left)
                except TimeoutError:
                    break
                except WebSocketException as exc:
                    EXTRA["ws_errors"][type(exc).__name__] += 1
                    self.fire("watch: update", time.perf_counter(), exception=exc)
                    return
                received = time.time()
                data = json.loads(message)
                state = data.get("state") or {}
                if data.get("type") != "state" or "sequence" not in state:
                    continue
                if state["sequence"] <= sequence:
                    EXTRA["ws_duplicates"] += 1  # older than what the client holds: dropped
                    continue
                if state["sequence"] > sequence + 1:
                    EXTRA["ws_sequence_gaps"] += 1  # the page asks for a fresh snapshot
                sequence = state["sequence"]
                sent = datetime.fromisoformat(state["server_time"]).timestamp()
                self.fire("watch: update", 0, ms=max(0.0, (received - sent) * 1000), length=len(message))
