"""PostgreSQL stopped in immediate mode (as a crash would) and started again under a bid load.

The cluster is the test's own (``initdb`` in a temporary folder), so stopping it disturbs nothing
else. While it is away the market answers 503 with a code, a message and ``Retry-After``; once it is
back the web workers reconnect by themselves; and every bid the client was told was accepted is in
the database after the crash recovery, with nothing stored that the client was not told about.
"""

import contextlib
import random
import threading
import time
import uuid
from collections import Counter
from decimal import Decimal

import pytest

from tests.faults.conftest import (
    PLACED_BIDS_SQL,
    ClientLog,
    PrivatePostgres,
    call,
    market_env,
    post_until_answered,
    run_module,
    run_python,
)

DB = "market_faults"


@pytest.fixture
def private_postgres(scratch):
    folder = scratch / "pg"
    folder.mkdir()
    cluster = PrivatePostgres(folder)
    cluster.start()
    try:
        yield cluster
    finally:
        with contextlib.suppress(BaseException):  # already stopped
            cluster.stop("immediate")


def test_postgres_stopped_and_started_loses_nothing_acknowledged_and_answers_503_meanwhile(
    private_postgres, web_server_factory
):
    private_postgres.create_database(DB)
    env = market_env(database_url=private_postgres.url(DB), DB_CONN_MAX_AGE="600")
    run_python(env, "manage.py", "migrate", "--noinput", "-v", "0")
    seeded = run_module(env, "tests.faults.seed", "24", "4")
    server = web_server_factory(env, workers=2, threads=4)

    log = ClientLog()
    intents: dict[str, tuple] = {}
    stop = threading.Event()
    outage = {"from": None, "to": None}

    def bidder(index: int, org_id: int, token: str) -> None:
        rng = random.Random(index)
        while not stop.is_set():
            lot = rng.choice(seeded["lots"])
            state = call(server.base, f"/api/v1/lots/{lot}/state/", token)
            if state.status != 200:
                time.sleep(0.2)
                continue
            amount = Decimal(state.body["minimum_next"]) + rng.choice([0, 5, 10])
            key = str(uuid.uuid4())
            intents[key] = (lot, org_id, amount)
            post_until_answered(
                log,
                server.base,
                f"/api/v1/lots/{lot}/bids/",
                token,
                {"amount": str(amount)},
                key,
                give_up_s=120,
            )

    threads = [
        threading.Thread(target=bidder, args=(i, org, token), daemon=True)
        for i, (org, token) in enumerate(seeded["bidders"])
    ]
    for t in threads:
        t.start()
    time.sleep(6)  # bids flowing
    before = len(log.accepted())
    outage["from"] = time.monotonic()
    private_postgres.stop("immediate")
    time.sleep(5)
    down = call(server.base, f"/api/v1/lots/{seeded['lots'][0]}/state/", seeded["bidders"][0][1])
    page = call(server.base, "/lots/", seeded["bidders"][0][1])
    private_postgres.start()
    outage["to"] = time.monotonic()
    time.sleep(8)  # bids flowing again
    stop.set()
    for t in threads:
        t.join(timeout=180)
    assert not any(t.is_alive() for t in threads), "a bidder never got an answer after the restart"

    statuses = Counter(a.status for _, a in log.tries)
    print(f"\npostgres restart: tries by status {dict(statuses)}; accepted {before} before the stop, "
          f"{len(log.accepted())} in all")  # fmt: skip
    assert before >= 5, "no bids were accepted before the stop"
    # while the database was away: a clear 503, never a 500
    assert down.status == 503 and down.body["code"] == "service_unavailable" and down.body["message"]
    assert page.status == 503
    assert statuses[503] > 0 and 500 not in statuses, statuses
    for _key, answer in log.tries:
        if answer.status == 503:
            assert answer.body.get("code") == "service_unavailable", answer.body
    # and afterwards it recovered by itself: bids accepted after the restart
    accepted_after = [answer for answer in log.accepted().values() if answer.at > outage["to"]]
    assert accepted_after, "no bid was accepted after the database came back"

    told = Counter(intents[key] for key in log.accepted())
    stored = Counter(private_postgres.query(DB, PLACED_BIDS_SQL, (seeded["lots"],)))
    assert told == stored, (
        f"{sum((told - stored).values())} accepted bids are missing, "
        f"{sum((stored - told).values())} stored bids were never acknowledged"
    )
