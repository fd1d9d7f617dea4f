"""What the load test's users need to know about the demo market just loaded into the load test's own
database (run in a subprocess by ``test_load_mix.py``, in the servers' environment, after
``manage.py demo_load``), printed as one JSON line on the last line of stdout and read by the
locustfile (``LOAD_FLOOR``).

Made here, because the demo has none: API tokens for the recyclers (the demo's own verified recyclers
and ``LOAD_EXTRA_BIDDERS`` more, made as the bid benchmark makes its bidders), sessions for the
government officers (as ``force_login`` makes them: no password hashing, no login rate limit), and
the bid benchmark's baseline tables for pgbench. Read: the auctions each token may bid on for the
whole run, published lots, index codes, categories, provinces and search words for the visitors.
"""

import json
import os
import random
import sys
from datetime import timedelta

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402

from tests.bench.bidbench_floor import baseline_tables  # noqa: E402

EXTRA_BIDDERS = int(os.environ.get("LOAD_EXTRA_BIDDERS", "16"))
AUCTIONS = int(os.environ.get("LOAD_AUCTIONS", "12"))
SECONDS = float(os.environ.get("LOAD_SECONDS", "60"))


def tokens_make() -> dict[int, str]:
    """One API token per verified recycler (a trading member of each), by organisation id."""
    from market.accounts.models import Membership, Organisation
    from tests.factories import COUNTY_TANGSHAN
    from tests.trading.conftest import make_party

    made = Organisation.objects.filter(legal_name__startswith="负载测试").count()  # a kept database
    for i in range(made, EXTRA_BIDDERS):
        make_party(region=COUNTY_TANGSHAN, name=f"负载测试再生资源{i}号有限公司")
    tokens: dict[int, str] = {}
    members = (
        Membership.objects.filter(
            organisation__status="verified", organisation__role__in=["recycler", "both"]
        )
        .select_related("organisation", "user")
        .order_by("organisation_id", "pk")
    )
    for m in members:
        if m.can_trade and m.organisation_id not in tokens and not m.organisation.is_blacklisted:
            tokens[m.organisation_id] = Token.objects.get_or_create(user=m.user)[0].key
    return tokens


def auctions_pick(tokens: dict[int, str]) -> list[dict]:
    """Open auctions that stay open past the run (with room for soft-close extensions), with the
    tokens that may bid on each (no deposit asked: the deposit flow is not part of the mix)."""
    from market.accounts.models import Organisation
    from market.trading.models import Sale, SaleStatus
    from market.trading.services import TradeRefused, eligibility_check

    now = timezone.now()
    orgs = Organisation.objects.in_bulk(list(tokens))
    picked = []
    sales = (
        Sale.objects.filter(
            mode="auction", status=SaleStatus.ACTIVE, deposit_amount=0, buy_now_price__isnull=True,
            starts_at__lte=now, closes_at__gte=now + timedelta(seconds=SECONDS * 3 + 600),
        )
        .select_related("lot", "lot__category")
        .order_by("closes_at", "pk")
    )  # fmt: skip
    for sale in sales:
        eligible = []
        for org_id, key in tokens.items():
            try:
                eligibility_check(sale, orgs[org_id])
            except TradeRefused:
                continue
            eligible.append(key)
        if len(eligible) >= 2:
            picked.append({"lot": sale.lot_id, "tokens": eligible})
        if len(picked) >= AUCTIONS:
            break
    return picked


def sessions_make() -> list[dict]:
    """A logged-in session for each government officer, and the dashboard's drill-downs."""
    from django.conf import settings

    from listings.models import Category
    from market.accounts.models import GovernmentOfficer
    from market.core.models import Region

    roots = list(Category.objects.filter(parent__isnull=True).values_list("code", flat=True))
    out = []
    for officer in GovernmentOfficer.objects.select_related("user", "office__jurisdiction"):
        client = Client()
        client.force_login(officer.user)
        region = officer.office.jurisdiction_id
        children = list(
            Region.objects.filter(parent_id=region).order_by("code").values_list("code", flat=True)
        )
        out.append(
            {
                "email": officer.user.email,
                "cookie": settings.SESSION_COOKIE_NAME,
                "session": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "regions": [region, *children[:6]],
                "categories": roots,
            }
        )
    return out


def visitors_facts() -> dict:
    from listings.models import Lot, LotStatus
    from pricing.index_models import IndexSeries

    lots = list(
        Lot.objects.filter(status=LotStatus.PUBLISHED).values_list(
            "pk", "title", "region_id", "category_id", "category__name"
        )
    )
    rng = random.Random(8)
    # Search words as people type them: a material ("光亮铜", "磷石膏") or a category's name.
    words = sorted({row[1].split(" ")[0] for row in lots} | {row[4] for row in lots})
    return {
        "lots": [row[0] for row in lots],
        "categories": sorted({row[3] for row in lots}),
        "provinces": sorted({f"{row[2][:2]}0000" for row in lots}),
        "words": rng.sample(words, min(60, len(words))),
        "indices": list(IndexSeries.objects.order_by("code").values_list("code", flat=True)),
    }


def main() -> None:
    baseline_tables()
    tokens = tokens_make()
    facts = {
        "auctions": auctions_pick(tokens),
        "officers": sessions_make(),
        **visitors_facts(),
    }
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(json.dumps({"tokens": len(tokens), **facts}, ensure_ascii=False))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
