"""The trading pages: the live panel of a lot's page for each visitor and trade mode, bidding through
the page form, sealed tenders that never show another bidder's amount, fixed price, quotations,
deposits, the seller's terms, my bids, my awards, notifications and the admin."""

import contextlib
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from market.accounts.models import MemberRole, VerificationStatus
from market.core.models import Notification
from market.core.notify import notify_users
from market.trading import services
from market.trading.models import Award, Bid, Deposit, DepositStatus, LotOffer, Sale, SaleStatus
from tests.factories import COUNTY_SUZHOU, make_member, make_organisation, make_user
from tests.trading.conftest import close_now, make_party, published_lot

pytestmark = pytest.mark.django_db


def html(response) -> str:
    return response.content.decode()


@pytest.fixture
def seller(db):
    return make_party(role="generator", region="130203", name="唐山钢铁集团有限公司")


@pytest.fixture
def buyers(db):
    return [make_party(name=f"回收利用{i}号有限公司") for i in range(3)]


@pytest.fixture
def lot(seller):
    return published_lot(seller.org)


def sale_make(seller, lot, mode="auction", **terms):
    defaults = {
        "auction": {"start_price": "2000", "increment_amount": "10"},
        "tender": {"start_price": "1800"},
        "fixed": {"fixed_price": "2300", "min_quantity": "50"},
        "quotation": {},
    }[mode]
    values = {"ends_at": timezone.now() + timedelta(hours=1), **defaults, **terms}
    return services.sale_configure(actor=seller.user, lot=lot, mode=mode, **values)


def bid(party, lot, amount, maximum=None):
    return services.bid_place(
        actor=party.user, organisation=party.org, lot_id=lot.pk, amount=Decimal(amount), maximum=maximum
    )


# --- the panel for each visitor -------------------------------------------------------------


def test_auction_panel_for_anonymous_buyer_and_seller(client, seller, buyers, lot):
    sale_make(seller, lot, reserve_price="2100", buy_now_price="3000")
    bid(buyers[0], lot, "2000")
    url = f"/lots/{lot.pk}/"

    page = html(client.get(url))
    assert "data-trading" in page and f'data-socket="/ws/lots/{lot.pk}/"' in page
    assert "¥2,000.00" in page and "¥2,010.00" in page  # current price and minimum next bid
    assert "竞买人 A" in page and "未达到保留价" in page
    assert f'action="/lots/{lot.pk}/bid/"' not in page and "/login/?next=" in page
    assert 'data-sequence="' in page and "data-countdown" in page

    client.force_login(buyers[1].user)
    page = html(client.get(url))
    assert f'action="/lots/{lot.pk}/bid/"' in page and 'name="maximum"' in page
    assert f'action="/lots/{lot.pk}/buy/"' in page and "一口价买下" in page
    assert "这是本单位的标的" not in page

    client.force_login(buyers[0].user)
    page = html(client.get(url))
    assert "您的代号" in page and "第 1 名" in page and "您目前领先" in page

    client.force_login(seller.user)
    page = html(client.get(url))
    assert "这是本单位的标的，不能参与出价。" in page
    assert f'action="/lots/{lot.pk}/bid/"' not in page
    assert "已有人出价、报价或缴纳保证金，交易条件不能再修改。" in page


def test_who_cannot_bid_is_told_why(client, seller, lot):
    sale_make(seller, lot)
    url = f"/lots/{lot.pk}/"
    generator = make_party(role="generator")
    client.force_login(generator.user)
    page = html(client.get(url))
    assert "只有回收利用单位可以参与竞买。" in page and f'action="/lots/{lot.pk}/bid/"' not in page

    pending = make_party(status=VerificationStatus.PENDING)
    client.force_login(pending.user)
    assert "通过认证后才能交易" in html(client.get(url))

    viewer = make_user()
    make_member(make_organisation(role="recycler", region=COUNTY_SUZHOU), role=MemberRole.VIEWER, user=viewer)
    client.force_login(viewer)
    assert "查看者不能办理业务" in html(client.get(url))

    loner = make_user()
    client.force_login(loner)
    assert "参与交易需要以单位名义进行。" in html(client.get(url))


def test_a_hazardous_lot_tells_a_buyer_without_a_licence(client, seller, buyers):
    lot = published_lot(seller.org, category="batteries.lead_acid", quantity="30", title="废铅酸蓄电池 30 吨")
    sale_make(seller, lot)
    client.force_login(buyers[0].user)
    page = html(client.get(f"/lots/{lot.pk}/"))
    assert "危险废物经营许可证" in page and "HW31" in page and f'action="/lots/{lot.pk}/bid/"' not in page


# --- bidding through the page ---------------------------------------------------------------


def test_bid_through_the_page_form_and_a_too_low_bid_shows_the_message(client, seller, buyers, lot):
    sale_make(seller, lot)
    a, b = buyers[:2]
    client.force_login(a.user)
    response = client.post(f"/lots/{lot.pk}/bid/", {"amount": "2000", "maximum": "2100"})
    assert response.status_code == 302 and response["Location"] == f"/lots/{lot.pk}/#trading"
    page = html(client.get(response["Location"]))
    assert "出价成功，您目前领先。当前价 ¥2,000.00。" in page
    assert "¥2,100.00" in page  # your own proxy maximum, shown to you only

    client.force_login(b.user)
    page = html(client.get(f"/lots/{lot.pk}/"))
    assert "¥2,100.00" not in page  # a's maximum is private
    response = client.post(f"/lots/{lot.pk}/bid/", {"amount": "2005"})
    assert response.status_code == 400
    assert "出价过低：当前最低可出价 ¥2,010.00。" in html(response)
    response = client.post(f"/lots/{lot.pk}/bid/", {"amount": ""})
    assert response.status_code == 400 and "该字段是必填项" in html(response)

    response = client.post(f"/lots/{lot.pk}/bid/", {"amount": "2050"}, follow=True)
    assert "其他竞买人的代理出价更高" in html(response)  # a's proxy answered at once
    sale = Sale.objects.get()
    assert sale.current_price == Decimal("2060.00") and sale.leader_id == a.org.pk
    page = html(client.get(f"/lots/{lot.pk}/live/"))
    assert 'id="bid-history"' in page and "¥2,050.00" in page and "¥2,060.00" in page


def test_the_bid_form_through_the_api_uses_an_idempotency_key(client, seller, buyers, lot):
    sale_make(seller, lot)
    client.force_login(buyers[0].user)
    page = html(client.get(f"/lots/{lot.pk}/"))
    assert f'data-bid-api="/api/v1/lots/{lot.pk}/bids/"' in page and "data-bid-form" in page
    for _ in range(2):
        r = client.post(
            f"/api/v1/lots/{lot.pk}/bids/",
            {"amount": "2000"},
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY="page-key-1",
        )
        assert r.status_code == 201
    assert Bid.objects.count() == 1


def test_an_extended_auction_shows_the_notice(client, seller, buyers, lot):
    sale = sale_make(seller, lot)
    Sale.objects.filter(pk=sale.pk).update(closes_at=sale.ends_at + timedelta(minutes=5))
    page = html(client.get(f"/lots/{lot.pk}/"))
    notice = re.search(r'<div class="notice notice-warn extended-notice" data-extended( hidden)?>', page)
    assert notice and notice.group(1) is None
    assert "截止时间已自动延长" in page


# --- sealed tenders -------------------------------------------------------------------------


def test_a_sealed_tender_page_never_shows_another_bidders_amount(client, seller, buyers, lot, operator):
    sale_make(seller, lot, mode="tender")
    a, b, c = buyers
    bid(a, lot, "2357")
    bid(b, lot, "2468")
    bid(a, lot, "2391")  # a revision

    def page_of(user):
        client.logout()
        if user is not None:
            client.force_login(user)
        return html(client.get(f"/lots/{lot.pk}/")) + html(client.get(f"/lots/{lot.pk}/live/"))

    def shows(page: str, amount: str) -> bool:
        """The amount as a number of its own, with or without a thousands separator (not digits
        inside another number, such as a timestamp's microseconds)."""
        pattern = rf"(?<![\d.,]){amount[0]},?{amount[1:]}(?!\d)"
        return re.search(pattern, page) is not None

    secret = {"a": ["2357", "2391"], "b": ["2468"]}
    for who, user in {
        "seller": seller.user,
        "stranger": c.user,
        "anonymous": None,
        "operator": operator,
    }.items():
        page = page_of(user)
        for amount in secret["a"] + secret["b"]:
            assert not shows(page, amount), (who, amount)
        assert "投标人数" in page
    page = page_of(b.user)
    assert "¥2,468.00" in page and not any(shows(page, x) for x in secret["a"])
    page = page_of(a.user)
    assert "¥2,391.00" in page and not shows(page, "2468")
    assert f'action="/lots/{lot.pk}/bid/"' in page and "修改投标" in page

    assert close_now(Sale.objects.get()) == "closed"
    page = page_of(seller.user)
    assert "¥2,468.00" in page and "成交记录" in page  # open after the close


def test_a_tender_bid_through_the_page(client, seller, buyers, lot):
    sale_make(seller, lot, mode="tender")
    client.force_login(buyers[0].user)
    response = client.post(f"/lots/{lot.pk}/bid/", {"amount": "1700"})
    assert response.status_code == 400 and "出价过低" in html(response)
    response = client.post(f"/lots/{lot.pk}/bid/", {"amount": "1900"}, follow=True)
    assert "投标已提交：¥1,900.00/吨" in html(response)


# --- fixed price, quotation, deposits -------------------------------------------------------


def test_fixed_price_buy_form(client, seller, buyers, lot):
    sale_make(seller, lot, mode="fixed")
    client.force_login(buyers[0].user)
    page = html(client.get(f"/lots/{lot.pk}/"))
    assert "剩余 500 吨，每次至少 50 吨" in page and f'action="/lots/{lot.pk}/buy/"' in page
    response = client.post(f"/lots/{lot.pk}/buy/", {"quantity": "30"})
    assert response.status_code == 400 and "购买数量不能少于最小购买量 50" in html(response)
    response = client.post(f"/lots/{lot.pk}/buy/", {"quantity": "200"}, follow=True)
    assert "已成交：200 吨，单价 ¥2,300.00，金额 ¥460,000.00。" in html(response)
    assert Award.objects.get().quantity == Decimal("200")
    page = html(client.get(f"/lots/{lot.pk}/"))
    assert re.search(r'data-field="quantity_remaining"[^>]*>300<', page)


def test_quotation_offer_and_accept(client, seller, buyers, lot):
    sale_make(seller, lot, mode="quotation")
    a, b = buyers[:2]
    client.force_login(a.user)
    response = client.post(f"/lots/{lot.pk}/offers/", {"quantity": "600", "unit_price": "2200"})
    assert response.status_code == 400 and "数量不能超过标的数量" in html(response)
    assert (
        client.post(f"/lots/{lot.pk}/offers/", {"quantity": "500", "unit_price": "2200"}).status_code == 302
    )
    client.force_login(b.user)
    client.post(f"/lots/{lot.pk}/offers/", {"quantity": "500", "unit_price": "2250", "message": "三天内提货"})
    page = html(client.get(f"/lots/{lot.pk}/"))
    assert "¥2,250.00" in page and "¥2,200.00" not in page  # a buyer sees its own offers only

    client.force_login(seller.user)
    page = html(client.get(f"/lots/{lot.pk}/"))
    assert "收到的报价" in page and "¥2,200.00" in page and "三天内提货" in page
    offer = LotOffer.objects.get(buyer=b.org)
    assert f'action="/lots/{lot.pk}/offers/{offer.pk}/accept/"' in page
    client.force_login(a.user)
    assert client.post(f"/lots/{lot.pk}/offers/{offer.pk}/accept/").status_code == 403
    client.force_login(seller.user)
    response = client.post(f"/lots/{lot.pk}/offers/{offer.pk}/accept/", follow=True)
    assert "已成交：500 吨，单价 ¥2,250.00" in html(response)
    assert Award.objects.get().buyer == b.org


def test_deposit_request_then_confirmation_opens_the_bid_form(client, seller, buyers, lot):
    sale_make(seller, lot, deposit_amount="5000")
    a = buyers[0]
    client.force_login(a.user)
    page = html(client.get(f"/lots/{lot.pk}/"))
    assert "申请缴纳保证金（对公转账）" in page and f'action="/lots/{lot.pk}/bid/"' not in page
    response = client.post(f"/lots/{lot.pk}/deposit/", follow=True)
    deposit = Deposit.objects.get()
    page = html(response)
    assert deposit.reference in page and "¥5,000.00" in page and "待缴纳" in page

    client.force_login(make_user(is_staff=True, is_superuser=True))
    page = html(client.get("/admin/trading/deposit/"))
    assert "confirm_selected" in page and deposit.reference in page
    response = client.post(
        "/admin/trading/deposit/",
        {"action": "confirm_selected", "_selected_action": [deposit.pk]},
        follow=True,
    )
    assert response.status_code == 200 and "已确认 1 笔保证金到账。" in html(response)
    deposit.refresh_from_db()
    assert deposit.status == DepositStatus.PAID

    client.force_login(a.user)
    page = html(client.get(f"/lots/{lot.pk}/"))
    assert "已缴纳" in page and f'action="/lots/{lot.pk}/bid/"' in page


# --- the seller's terms ---------------------------------------------------------------------


def test_seller_sets_the_terms_with_field_errors_then_they_lock(client, seller, buyers, lot):
    url = f"/lots/{lot.pk}/sale/"
    client.force_login(buyers[0].user)
    assert client.get(url).status_code == 403
    client.force_login(seller.user)
    page = html(client.get(f"/lots/{lot.pk}/"))
    assert f'href="{url}"' in page and "设置交易条件" in page
    page = html(client.get(url))
    assert 'name="mode"' in page and 'data-modes="auction"' in page and 'name="allowed_provinces"' in page

    ends = (timezone.localtime() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    form = {
        "mode": "auction",
        "ends_at": ends,
        "start_price": "2000",
        "extend_window_min": "5",
        "extend_by_min": "5",
    }
    response = client.post(url, form)
    assert response.status_code == 400 and "请填写加价幅度：固定金额或百分比，二选一。" in html(response)
    response = client.post(url, {**form, "increment_amount": "10", "reserve_price": "1500"})
    assert response.status_code == 400 and "保留价不能低于起拍价。" in html(response)
    response = client.post(url, {**form, "ends_at": "2020-01-01T10:00", "increment_amount": "10"})
    assert response.status_code == 400 and "截止时间必须晚于现在。" in html(response)

    response = client.post(
        url,
        {
            **form,
            "increment_amount": "10",
            "deposit_amount": "",
            "allowed_provinces": ["320000"],
            "extend_window_min": "3",
        },
    )
    assert response.status_code == 302
    sale = Sale.objects.get()
    assert (sale.mode, sale.start_price, sale.extend_window_s, sale.allowed_provinces) == (
        "auction", Decimal("2000.00"), 180, ["320000"]
    )  # fmt: skip
    assert timezone.localtime(sale.ends_at).strftime("%Y-%m-%dT%H:%M") == ends  # Beijing time

    page = html(client.get(url))
    assert 'name="start_price" value="2000"' in page and re.search(r'value="auction"[^>]*checked', page)
    response = client.post(url, {"mode": "fixed", "ends_at": ends, "fixed_price": "2300"})
    assert response.status_code == 302 and Sale.objects.get().mode == "fixed"

    bid_sale = Sale.objects.get()
    services.buy(actor=buyers[0].user, organisation=buyers[0].org, lot_id=lot.pk, quantity=Decimal("500"))
    bid_sale.refresh_from_db()
    assert bid_sale.status == SaleStatus.CLOSED


def test_terms_are_locked_once_someone_bid(client, seller, buyers, lot):
    sale_make(seller, lot)
    bid(buyers[0], lot, "2000")
    client.force_login(seller.user)
    url = f"/lots/{lot.pk}/sale/"
    page = html(client.get(url))
    assert "已有人出价、报价或缴纳保证金，交易条件不能再修改。" in page and "保存交易条件" not in page
    ends = (timezone.localtime() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(url, {"mode": "fixed", "ends_at": ends, "fixed_price": "2300"})
    assert response.status_code == 400 and Sale.objects.get().mode == "auction"


# --- my bids, my awards, notifications ------------------------------------------------------


def test_my_bids_and_my_awards(client, seller, buyers, lot):
    a, b = buyers[:2]
    sale_make(seller, lot)
    bid(a, lot, "2000")
    bid(b, lot, "2100")
    other = published_lot(seller.org, title="唐山渣钢 200 吨", quantity="200")
    sale_make(seller, other, mode="tender")
    bid(a, other, "1999")

    client.force_login(a.user)
    page = html(client.get("/my/bids/"))
    assert "唐山重废 500 吨" in page and "已被超过" in page and "¥2,000.00" in page and "¥2,100.00" in page
    assert "唐山渣钢 200 吨" in page and "已投标（密封）" in page and "¥1,999.00" in page
    client.force_login(b.user)
    page = html(client.get("/my/bids/"))
    assert "领先" in page and "唐山渣钢" not in page

    assert close_now(Sale.objects.get(lot=lot)) == "closed"
    page = html(client.get("/my/bids/"))
    assert "已成交" in page
    page = html(client.get("/my/awards/"))
    assert "唐山重废 500 吨" in page and "买方" in page and seller.org.display_name in page
    assert "¥1,050,000.00" in page  # 500 t at 2,100.00
    client.force_login(a.user)
    assert "未成交" in html(client.get("/my/bids/"))
    assert "还没有成交" in html(client.get("/my/awards/"))
    client.force_login(seller.user)
    page = html(client.get("/my/awards/"))
    assert "卖方" in page and b.org.display_name in page

    loner = make_user()
    client.force_login(loner)
    assert "您还没有加入任何单位" in html(client.get("/my/bids/"))


def test_notifications_page_newest_first_and_mark_all_read(client, buyers):
    user = buyers[0].user
    notify_users([user.pk], title="第一条通知", url="/lots/", email=False)
    notify_users([user.pk], title="第二条通知", email=False)
    first, second = Notification.objects.order_by("id")
    Notification.objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(hours=1))
    client.force_login(user)
    page = html(client.get("/my/notifications/"))
    assert page.index("第二条通知") < page.index("第一条通知")
    assert '<a href="/lots/">第一条通知</a>' in page and "2 条未读" in page
    assert re.search(r'class="bell-count" data-unread-count>2<', page)
    response = client.post("/my/notifications/read/", follow=True)
    page = html(response)
    assert "已将 2 条通知标为已读。" in page and "全部标为已读" not in page
    assert re.search(r'class="bell-count" data-unread-count hidden>0<', page)
    assert not Notification.objects.filter(read_at__isnull=True).exists()
    assert client.get("/my/notifications/").status_code == 200
    client.logout()
    assert client.get("/my/notifications/").status_code == 302


def test_nav_links_for_signed_in_members(client, buyers):
    page = html(client.get("/"))
    assert 'href="/my/bids/"' not in page and "data-bell" not in page
    client.force_login(buyers[0].user)
    page = html(client.get("/"))
    assert 'href="/my/bids/"' in page and 'href="/my/awards/"' in page and 'href="/my/notifications/"' in page


# --- the admin ------------------------------------------------------------------------------


@pytest.fixture
def staff(client):
    user = make_user(is_staff=True, is_superuser=True)
    client.force_login(user)
    return client


def test_admin_never_shows_the_bids_of_an_active_tender(staff, seller, buyers, lot):
    sale = sale_make(seller, lot, mode="tender")
    bid(buyers[0], lot, "2357")
    bid(buyers[1], lot, "2468")
    pages = [
        staff.get("/admin/trading/bid/"),
        staff.get("/admin/trading/sale/"),
        staff.get(f"/admin/trading/sale/{sale.pk}/change/"),
    ]
    for response in pages:
        assert response.status_code == 200
        text = html(response)
        assert "2357" not in text and "2,357" not in text and "2468" not in text and "2,468" not in text
    hidden = Bid.objects.first()
    assert staff.get(f"/admin/trading/bid/{hidden.pk}/change/").status_code in (302, 404)

    assert close_now(sale) == "closed"
    listing = html(staff.get("/admin/trading/bid/"))
    assert "2468" in listing or "2,468" in listing  # open after the close


def test_admin_bids_and_awards_are_read_only(staff, seller, buyers, lot):
    sale_make(seller, lot)
    bid(buyers[0], lot, "2000")
    b = Bid.objects.get()
    page = html(staff.get(f"/admin/trading/bid/{b.pk}/change/"))
    assert 'name="amount"' not in page
    assert staff.get("/admin/trading/bid/add/").status_code == 403
    assert staff.get(f"/admin/trading/bid/{b.pk}/delete/").status_code == 403
    assert staff.get("/admin/trading/award/add/").status_code == 403


# --- queries --------------------------------------------------------------------------------


def test_lot_page_with_a_sale_has_a_bounded_number_of_queries(
    client, seller, buyers, lot, django_assert_max_num_queries
):
    sale_make(seller, lot, deposit_amount="100")
    for party in buyers:
        services.deposit_create(actor=party.user, organisation=party.org, lot_id=lot.pk)
    for d in Deposit.objects.all():
        services.deposit_confirm(actor=make_user(is_staff=True), deposit=d)
    bid(buyers[0], lot, "2000", maximum=Decimal("2300"))
    client.force_login(buyers[1].user)
    client.get(f"/lots/{lot.pk}/")  # warm per-process caches
    with django_assert_max_num_queries(24) as few:
        assert client.get(f"/lots/{lot.pk}/").status_code == 200
    for party in buyers[1:]:
        for amount in ("2100", "2400"):
            with contextlib.suppress(services.TradeRefused):
                bid(party, lot, amount)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get(f"/lots/{lot.pk}/").status_code == 200
    client.logout()
    with django_assert_max_num_queries(22):
        assert client.get(f"/lots/{lot.pk}/").status_code == 200


def test_the_panel_in_english(client, seller, buyers, lot):
    sale_make(seller, lot, reserve_price="2100")
    bid(buyers[0], lot, "2000")
    client.force_login(buyers[1].user)
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    page = html(client.get(f"/lots/{lot.pk}/"))
    assert "Current price" in page and "Minimum bid" in page and "Reserve not met" in page
    assert "Bidder A" in page and 'data-label-new-price="New bid: ¥{price}"' in page
    assert "当前价" not in page and "最低可出价" not in page
    assert "Notifications" in html(client.get("/my/notifications/"))
