"""Buyers search in trade shorthand: 重废 finds heavy scrap, 电瓶 finds lead-acid batteries."""

from datetime import timedelta

import pytest
from django.utils import timezone

from listings.models import Category, Lot, LotStatus
from listings.search import LotQuery, get_backend
from tests.factories import make_organisation

pytestmark = pytest.mark.django_db


def published_lot(category_code: str, title: str) -> Lot:
    today = timezone.localdate()
    lot = Lot.objects.create(
        seller=make_organisation(),
        category=Category.objects.get(pk=category_code),
        title=title,
        quantity=100,
        unit="t",
        region_id="130203",
        address="厂区",
        available_from=today,
        pickup_by=today + timedelta(days=10),
        status=LotStatus.PUBLISHED,
        published_at=timezone.now(),
    )
    get_backend().index_lots([lot.pk])
    return lot


@pytest.mark.parametrize(
    ("category", "title", "query"),
    [
        ("ferrous.heavy", "轧钢厂切头 500 吨", "重废"),
        ("batteries.lead_acid", "汽修厂回收蓄电池 20 吨", "电瓶"),
        ("paper.occ", "商超回收纸箱 80 吨", "黄板纸"),
        ("bulk.gypsum.fgd", "电厂副产石膏 3000 吨", "脱硫石膏"),
    ],
)
def test_trade_shorthand_finds_the_category(category, title, query):
    lot = published_lot(category, title)
    other = published_lot("glass.mixed", "混色碎玻璃 200 吨")
    ids = get_backend().search(LotQuery.from_params({"q": query})).ids
    assert lot.pk in ids
    assert other.pk not in ids


def test_operators_can_add_an_alias_and_reindexing_applies_it():
    lot = published_lot("rubber.crumb", "轮胎胶粉 40 目 50 吨")
    assert get_backend().search(LotQuery.from_params({"q": "胶粉"})).ids == [lot.pk]
    assert get_backend().search(LotQuery.from_params({"q": "橡胶颗粒"})).ids == []
    Category.objects.filter(pk="rubber.crumb").update(aliases="橡胶颗粒")
    get_backend().index_lots([lot.pk])
    assert get_backend().search(LotQuery.from_params({"q": "橡胶颗粒"})).ids == [lot.pk]
