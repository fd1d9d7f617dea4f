"""The operator's page that publishes an index correction (/indices/<code>/<day>/correct/): only
operators reach it (others: 404, anonymous visitors: the login page), the form refuses what would
publish nothing (no reason, no confirmation, past the window), and a correction posted through it
goes through ``pricing.indices.index_correct`` and shows as a notice on the index's page."""

from datetime import date, timedelta

import pytest
from django.utils import timezone

from pricing import indices
from pricing.index_models import IndexCorrection
from pricing.services import trade_void
from tests.factories import make_member, make_organisation
from tests.frontend import test_index_pages
from tests.frontend.test_index_pages import HEAVY, html, value
from tests.test_i18n import _compiled_english_catalogue  # noqa: F401 - the English page below

pytestmark = pytest.mark.django_db

# The index pages' fixtures: a market of eight organisations and its March 2026 history.
market, history = test_index_pages.market, test_index_pages.history

DAY = date(2026, 4, 6)
URL = f"/indices/{HEAVY}/{DAY}/correct/"
REASON = "一笔成交单价录入有误，已撤销；按规范重新计算当日指数。"


@pytest.fixture
def wrong_trade(history):
    """A published day whose value rests on a trade later found wrong (voided): recomputing the
    day moves the heavy scrap index by far more than 0.1 %."""
    history.liquid_day(DAY, 2100)
    big = history.record(DAY, 2300, q="400", seller=3, buyer=2, hour=15)
    indices.indices_close(DAY)
    trade_void(trade_id=big.trade_id, reason="合同撤销")
    return big


def test_only_operators_reach_the_page(client, wrong_trade, operator):
    response = client.get(URL)
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert client.post(URL, {"reason": REASON, "confirm": "on"}).status_code == 302
    member = make_member(make_organisation()).user  # a market member, not the platform's staff
    client.force_login(member)
    assert client.get(URL).status_code == 404
    assert client.post(URL, {"reason": REASON, "confirm": "on"}).status_code == 404
    assert not IndexCorrection.objects.exists()
    # The value's page links to it for operators only.
    assert URL not in html(client.get(f"/indices/{HEAVY}/{DAY}/"))
    client.force_login(operator)
    page = html(client.get(f"/indices/{HEAVY}/{DAY}/"))
    assert f'href="{URL}"' in page and "发布更正" in page


def test_unknown_series_days_and_unpublished_values_are_404(client, history, operator):
    client.force_login(operator)
    assert client.get("/indices/nothing@CN/2026-04-03/correct/").status_code == 404
    assert client.get(f"/indices/{HEAVY}/2026-13-45/correct/").status_code == 404
    assert client.get(f"/indices/{HEAVY}/2026-04-04/correct/").status_code == 404  # a Saturday


def test_the_form_shows_the_value_the_window_and_a_confirmation(client, wrong_trade, operator):
    client.force_login(operator)
    response = client.get(URL)
    assert response.status_code == 200
    page = html(response)
    current = value(HEAVY, DAY)
    assert f"发布更正：{DAY}" in page
    assert f"{current.level:,.2f}" in page  # the value as it stands
    assert "更正期限" in page and "0.1%" in page and "5 个交易日" in page
    assert 'name="reason"' in page and 'name="confirm"' in page and 'type="checkbox"' in page
    assert "发布后不可撤回" in page


def test_the_form_refuses_without_a_reason_or_the_confirmation(client, wrong_trade, operator):
    client.force_login(operator)
    response = client.post(URL, {"reason": "   "})
    assert response.status_code == 400
    page = html(response)
    assert "提交的内容有误" in page
    assert "请填写更正原因" in page and "请勾选确认后再发布更正" in page
    response = client.post(URL, {"reason": REASON})
    assert response.status_code == 400 and "请勾选确认后再发布更正" in html(response)
    assert REASON in html(response)  # what was typed stays in the form
    assert not IndexCorrection.objects.exists()
    assert value(HEAVY, DAY).first_level == value(HEAVY, DAY).level


def test_the_form_refuses_a_value_past_its_correction_window(client, wrong_trade, operator):
    from pricing.index_models import IndexValue

    IndexValue.objects.filter(day=DAY).update(published_at=timezone.now() - timedelta(days=30))
    client.force_login(operator)
    assert "已过期限" in html(client.get(URL))
    response = client.post(URL, {"reason": REASON, "confirm": "on"})
    assert response.status_code == 400
    assert "更正期限" in html(response) and "不能再更正" in html(response)
    assert not IndexCorrection.objects.exists()


def test_an_operator_publishes_a_correction_and_the_index_page_announces_it(client, wrong_trade, operator):
    before = value(HEAVY, DAY)
    client.force_login(operator)
    response = client.post(URL, {"reason": REASON, "confirm": "on"}, follow=True)
    assert response.redirect_chain == [(f"/indices/{HEAVY}/", 302)]
    after = value(HEAVY, DAY)
    assert after.level != before.level and after.first_level == before.level
    correction = IndexCorrection.objects.get(value=after)
    assert correction.reason == REASON and correction.actor == operator
    assert correction.old_level == before.level and correction.new_level == after.level
    page = html(response)
    n = IndexCorrection.objects.filter(value__day=DAY).count()
    assert f"已发布 {DAY} 的 {n} 条更正公告。" in page  # the message, on the index's page
    assert "更正公告" in page and REASON in page
    assert f"由 {before.level:,.2f} 更正为 {after.level:,.2f}" in page
    # the audit log has who, from where, why, and the level before and after, for every notice
    from market.core.models import AuditEntry

    entries = AuditEntry.objects.filter(action="index.correct")
    assert entries.count() == n
    entry = entries.get(target_id=str(after.pk))
    assert (entry.actor, entry.ip, entry.reason) == (operator, "127.0.0.1", REASON)
    assert (entry.from_state, entry.to_state) == (str(before.level), str(after.level))


def test_a_recomputation_that_moves_nothing_says_so(client, history, operator):
    client.force_login(operator)
    response = client.post(
        f"/indices/{HEAVY}/2026-04-03/correct/", {"reason": REASON, "confirm": "on"}, follow=True
    )
    assert response.status_code == 200
    assert "没有指数变动达到更正阈值，未发布更正" in html(response)
    assert not IndexCorrection.objects.exists()


def test_the_page_reads_in_english(client, wrong_trade, operator):
    client.force_login(operator)
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    page = html(client.get(URL))
    assert "Publish a correction" in page and "Reason for correction" in page
    assert "发布更正" not in page and "更正原因" not in page
    response = client.post(URL, {"reason": REASON, "confirm": "on"}, follow=True)
    assert "correction notice" in html(response)
