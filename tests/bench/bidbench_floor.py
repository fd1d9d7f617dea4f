"""Builds the bid benchmark's trading floor in the benchmark's own database (run in a subprocess
by ``test_bid_bench.py`` with ``tests.bench.settings_bidbench``), and counts the queries of one bid.

Prints one JSON object on the last line of stdout: lot ids, the bidders' API tokens, the baseline
tables' sizes and the query counts.
"""

import json
import sys
from pathlib import Path

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402

from tests.factories import COUNTY_TANGSHAN  # noqa: E402
from tests.trading.conftest import Floor, make_party, published_lot  # noqa: E402

BIDDERS = 32
ROWS = 32  # rows of the baseline tables (row 1 is the hot one)


def baseline_tables() -> None:
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bidbench_event, bidbench_hot")
        cursor.execute("CREATE TABLE bidbench_hot (id integer PRIMARY KEY, n bigint NOT NULL)")
        cursor.execute(
            "CREATE TABLE bidbench_event (id bigserial PRIMARY KEY, hot_id integer NOT NULL, "
            "n bigint NOT NULL, at timestamptz NOT NULL)"
        )
        cursor.execute("INSERT INTO bidbench_hot SELECT g, 0 FROM generate_series(1, %s) g", [ROWS])


def floor_build() -> dict:
    seller = make_party(role="generator", region=COUNTY_TANGSHAN, name="基准测试钢铁集团有限公司")
    buyers = [make_party(name=f"基准测试回收利用{i}号有限公司") for i in range(BIDDERS)]
    floor = Floor(seller=seller, buyers=buyers, lot=published_lot(seller.org))
    hot = floor.lot
    many = [published_lot(seller.org, title=f"基准测试重废 {i} 号") for i in range(BIDDERS)]
    probe = published_lot(seller.org, title="基准测试：计数查询")
    for lot in [hot, *many, probe]:
        floor.sale(lot=lot)
    tokens = [Token.objects.create(user=b.user).key for b in buyers]
    return {"floor": floor, "hot": hot.pk, "many": [lot.pk for lot in many], "probe": probe, "tokens": tokens}


def queries_of_bids(floor: Floor, probe, tokens) -> dict:
    """Queries of bids through the whole HTTP stack, as the benchmark's bidders send them."""
    from market.trading.selectors import sale_current, sale_public_state

    clients = [Client(HTTP_AUTHORIZATION=f"Token {t}") for t in tokens[:2]]
    url = f"/api/v1/lots/{probe.pk}/bids/"
    cases, lines = {}, []

    def bid(name, client, amount, key):
        with CaptureQueriesContext(connection) as ctx:
            response = client.post(
                url, {"amount": amount}, content_type="application/json", HTTP_IDEMPOTENCY_KEY=key
            )
        cases[name] = {"status": response.status_code, "queries": len(ctx.captured_queries)}
        lines.append(f"--- {name}: HTTP {response.status_code}, {len(ctx.captured_queries)} queries")
        lines.extend(q["sql"] for q in ctx.captured_queries)

    minimum = sale_public_state(sale_current(probe.pk))["minimum_next"]
    bid("first bid of a new bidder", clients[0], minimum, "probe-1")
    minimum = sale_public_state(sale_current(probe.pk))["minimum_next"]
    bid("first bid of a second bidder (outbids the first)", clients[1], minimum, "probe-2")
    minimum = sale_public_state(sale_current(probe.pk))["minimum_next"]
    bid("next bid of a known bidder (outbids)", clients[0], minimum, "probe-3")
    bid("refused: bid too low", clients[1], "1.00", "probe-4")
    minimum = sale_public_state(sale_current(probe.pk))["minimum_next"]
    bid("next bid, no Idempotency-Key", clients[1], minimum, "")
    out = Path("test-results")
    out.mkdir(exist_ok=True)
    (out / "bench-bids-queries.txt").write_text("\n".join(lines) + "\n")
    return cases


def main() -> None:
    baseline_tables()
    built = floor_build()
    queries = queries_of_bids(built["floor"], built["probe"], built["tokens"])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(json.dumps({"hot": built["hot"], "many": built["many"], "tokens": built["tokens"],
                      "rows": ROWS, "queries": queries}))  # fmt: skip
    sys.stdout.flush()


if __name__ == "__main__":
    main()
