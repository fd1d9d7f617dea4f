"""Seed a market database of a fault test's own: a steel mill with lots on auction and recyclers with
API tokens. Run as ``python -m tests.faults.seed BUYERS LOTS`` with DATABASE_URL set; prints JSON."""

import json
import sys

import django


def market_floor(buyers: int, lots: int) -> dict:
    """A steel mill's ``lots`` lots on auction and ``buyers`` recyclers with API tokens, committed:
    ``{"lots": [lot ids], "bidders": [[organisation id, token], ...]}``."""
    from rest_framework.authtoken.models import Token

    from tests.trading.conftest import Floor, make_party, published_lot

    seller = make_party(role="generator", region="130203", name="唐山钢铁集团有限公司")
    parties = [make_party(name=f"故障回收{i}号有限公司") for i in range(buyers)]
    floor = Floor(seller=seller, buyers=parties, lot=published_lot(seller.org))
    on_sale = [floor.lot] + [published_lot(seller.org, title=f"唐山重废 {i} 号") for i in range(1, lots)]
    for lot in on_sale:
        floor.sale(lot=lot, start_price="2000", increment_amount="5")
    return {
        "lots": [lot.pk for lot in on_sale],
        "bidders": [[p.org.pk, Token.objects.create(user=p.user).key] for p in parties],
    }


if __name__ == "__main__":
    django.setup()
    print(json.dumps(market_floor(int(sys.argv[1]), int(sys.argv[2]))))
