"""The trade facts back office: listed, filtered and searched, never added, changed or deleted."""

import pytest

from pricing.services import trade_void
from tests.factories import make_user
from tests.pricing.conftest import BUYER_USCC, make_trade

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/pricing/tradefact/"


@pytest.fixture
def operator_client(client):
    client.force_login(make_user(is_staff=True, is_superuser=True))
    return client


def test_list_filter_and_search(operator_client):
    make_trade(trade_id="deal:31", category_code="ferrous.heavy")
    make_trade(trade_id="deal:32", category_code="paper.occ")
    trade_void(trade_id="deal:32", reason="成交撤销")

    page = operator_client.get(CHANGELIST).content.decode()
    assert "deal:31" in page and "deal:32" in page
    page = operator_client.get(CHANGELIST, {"void": "yes"}).content.decode()
    assert "deal:32" in page and "deal:31" not in page
    page = operator_client.get(CHANGELIST, {"category__code__exact": "ferrous.heavy"}).content.decode()
    assert "deal:31" in page and "deal:32" not in page
    page = operator_client.get(CHANGELIST, {"q": BUYER_USCC}).content.decode()
    assert "deal:31" in page and "deal:32" in page
    page = operator_client.get(CHANGELIST, {"q": "deal:31"}).content.decode()
    assert "deal:31" in page and "deal:32" not in page


def test_nobody_adds_changes_or_deletes(operator_client):
    fact = make_trade(trade_id="deal:33")
    assert operator_client.get(CHANGELIST + "add/").status_code == 403
    detail = operator_client.get(f"{CHANGELIST}{fact.pk}/change/")
    assert detail.status_code == 200 and "deal:33" in detail.content.decode()
    assert operator_client.post(f"{CHANGELIST}{fact.pk}/change/", {"void_reason": "x"}).status_code == 403
    assert operator_client.get(f"{CHANGELIST}{fact.pk}/delete/").status_code == 403
