"""The deal pages: my deals, a deal's page for each viewer with the forms of the next steps, paying
by bank transfer through the pages, pickup, weighing, disputes and an operator's decision, the
hazardous-waste manifest, ratings and the runner-up, the payment page with and without Stripe, the
printable contract and manifest, and the public trace page with its tamper check."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from frontend.views_deals import rmb_upper
from market.accounts.models import MemberRole
from market.deals import selectors
from market.deals import services as deals
from market.deals.models import (
    Deal,
    DealStatus,
    DefaultParty,
    Manifest,
    ManifestStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Rating,
    TraceEntry,
    WeighingStatus,
)
from market.trading.models import Award, AwardSource
from tests.deals.conftest import HAZARDOUS_CATEGORY, DealFloor, licence_give, png_upload
from tests.factories import COUNTY_TANGSHAN, make_member, make_user
from tests.fake_stripe import FakeStripe, fast_retries
from tests.test_i18n import _compiled_english_catalogue  # noqa: F401 - the English pages below
from tests.trading.conftest import Floor, make_party, published_lot

pytestmark = pytest.mark.django_db

QR = re.compile(r'<svg [^>]*class="qr"')


def html(response) -> str:
    return response.content.decode()


@pytest.fixture
def market(db, operator) -> DealFloor:
    seller = make_party(role="generator", region=COUNTY_TANGSHAN, name="唐山钢铁集团有限公司")
    buyers = [make_party(name=f"苏州回收利用{i}号有限公司") for i in range(3)]
    return DealFloor(
        floor=Floor(seller=seller, buyers=buyers, lot=published_lot(seller.org)), operator=operator
    )


@pytest.fixture
def deal(market) -> Deal:
    """Buyer 0 wins the 500 t of heavy scrap at ¥2,000/t: ¥1,000,000 awaiting payment."""
    return market.deal_of()


def another_lot(market, title, quantity="100"):
    return published_lot(market.seller.org, title=title, quantity=quantity)


def hazardous_deal(market) -> Deal:
    licence_give(market.buyers[0], market.operator)
    lot = published_lot(
        market.seller.org, category=HAZARDOUS_CATEGORY, quantity="30", title="废铅酸蓄电池 30 吨"
    )
    return market.deal_of(lot=lot, bids=((0, "9000"),))


def login(client, party_or_user):
    client.force_login(getattr(party_or_user, "user", party_or_user))
    return client


# --- pure helpers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "amount,text",
    [
        ("1050000.00", "壹佰零伍万元整"),
        ("1000000", "壹佰万元整"),
        ("100100", "壹拾万零壹佰元整"),
        ("100000001", "壹亿零壹元整"),
        ("2345.6", "贰仟叁佰肆拾伍元陆角整"),
        ("10.05", "壹拾元零伍分"),
        ("0", "零元整"),
        ("0.50", "伍角整"),
    ],
)
def test_amount_in_capital_numerals(amount, text):
    assert rmb_upper(Decimal(amount)) == text


# --- my deals -------------------------------------------------------------------------------


def test_my_deals_for_buyer_seller_stranger_and_loner(client, market, deal):
    buyer, seller = market.buyers[0], market.seller
    page = html(login(client, buyer).get("/deals/"))
    assert deal.number in page and "唐山重废 500 吨" in page and seller.org.display_name in page
    assert "¥1,000,000.00" in page and "badge-deal-awaiting_payment" in page and "待付款" in page
    assert "请在付款截止前支付货款。" in page and "badge-buyer" in page
    assert f'href="/deals/{deal.pk}/"' in page

    page = html(login(client, seller).get("/deals/"))
    assert deal.number in page and buyer.org.display_name in page and "badge-seller" in page
    assert "等待买方付款" in page

    page = html(login(client, market.buyers[2]).get("/deals/"))
    assert deal.number not in page and "还没有合同" in page and 'href="/lots/"' in page

    page = html(login(client, make_user()).get("/deals/"))
    assert "您还没有加入任何单位" in page
    client.logout()
    assert client.get("/deals/").status_code == 302


def test_my_deals_filters_by_status_and_pages(client, market, deal, settings):
    market.pay(deal)
    other = market.deal_of(lot=another_lot(market, "唐山渣钢 100 吨"))
    buyer = market.buyers[0]
    login(client, buyer)
    page = html(client.get("/deals/?status=paid"))
    assert deal.number in page and other.number not in page and 'aria-current="page">已付款' in page
    page = html(client.get("/deals/?status=awaiting_payment"))
    assert other.number in page and deal.number not in page
    page = html(client.get("/deals/?status=nonsense"))
    assert other.number in page and deal.number in page

    import frontend.views_deals as views

    original, views.PAGE_SIZE = views.PAGE_SIZE, 1
    try:
        first = html(client.get("/deals/"))
        second = html(client.get("/deals/?page=2"))
        beyond = client.get("/deals/?page=99")
    finally:
        views.PAGE_SIZE = original
    assert other.number in first and deal.number not in first and 'rel="next"' in first
    assert deal.number in second and other.number not in second and 'rel="prev"' in second
    assert beyond.status_code == 200 and deal.number in html(beyond)  # the last page
    assert html(client.get("/deals/?page=x")).count("/deals/") > 0


def test_nav_and_my_awards_link_to_the_deals(client, market, deal):
    page = html(login(client, market.buyers[0]).get("/my/awards/"))
    assert f'<a href="/deals/{deal.pk}/">{deal.number}</a>' in page and 'href="/deals/"' in page
    assert ">我的合同</a>" in html(client.get("/"))


# --- a deal's page --------------------------------------------------------------------------


def test_deal_page_for_each_viewer(client, market, deal):
    url = f"/deals/{deal.pk}/"
    buyer, seller = market.buyers[0], market.seller

    page = html(login(client, buyer).get(url))
    assert deal.number in page and "本单位为买方" in page and seller.org.legal_name in page
    assert seller.org.uscc in page and buyer.org.uscc in page
    assert f'href="/deals/{deal.pk}/pay/"' in page and "去付款 ¥1,000,000.00" in page
    assert "生成合同" in page and "追溯 #" in page  # the timeline: audit and trace
    assert "平台服务费" not in page  # the seller's business
    assert f'href="/deals/{deal.pk}/contract/"' in page and f'href="/trace/{deal.trace_chain.code}/"' in page

    page = html(login(client, seller).get(url))
    assert "本单位为卖方" in page and "平台服务费（0.5%，卖方承担）" in page
    assert f'href="/deals/{deal.pk}/pay/"' not in page and "去付款" not in page

    page = html(login(client, market.operator).get(url))
    assert "运营人员查看" in page and "去付款" not in page and deal.number in page

    for stranger in (market.buyers[1], make_user()):
        assert login(client, stranger).get(url).status_code == 404
        assert client.get(f"{url}contract/").status_code == 404
        assert client.get(f"{url}pay/").status_code == 404
        assert client.post(f"{url}confirm/").status_code == 404
    client.logout()
    assert client.get(url).status_code == 302

    viewer = make_user()
    make_member(buyer.org, role=MemberRole.VIEWER, user=viewer)
    page = html(login(client, viewer).get(url))
    assert "您在本单位是查看者" in page and "去付款" not in page


def test_a_bank_transfer_through_the_pages(client, market, deal, settings):
    buyer, seller = market.buyers[0], market.seller
    settings.STRIPE_SECRET_KEY = ""
    pay_url = f"/deals/{deal.pk}/pay/"

    page = html(login(client, buyer).get(pay_url))
    assert "¥1,000,000.00" in page and 'value="bank_transfer"' in page and 'value="stripe"' not in page
    assert "在线支付暂未开通" in page and "js.stripe.com" not in page
    response = client.post(pay_url, {"method": "bank_transfer"})
    assert response.status_code == 302 and response["Location"] == pay_url
    payment = Payment.objects.get(deal=deal)
    page = html(client.get(pay_url))
    assert settings.PLATFORM_BANK_ACCOUNT in page and settings.PLATFORM_ACCOUNT_NAME in page
    assert settings.PLATFORM_BANK_NAME in page and payment.reference in page
    assert f'action="/deals/{deal.pk}/payments/{payment.pk}/slip/"' in page

    # Not a picture: the error is beside the file field.
    from django.core.files.uploadedfile import SimpleUploadedFile

    bad = SimpleUploadedFile("slip.png", b"not an image at all", content_type="image/png")
    response = client.post(f"/deals/{deal.pk}/payments/{payment.pk}/slip/", {"slip": bad})
    assert response.status_code == 400 and 'class="field has-error"' in html(response)
    response = client.post(
        f"/deals/{deal.pk}/payments/{payment.pk}/slip/", {"slip": png_upload()}, follow=True
    )
    assert "转账凭证已提交" in html(response)
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUBMITTED and payment.slip
    assert client.get(f"/deals/{deal.pk}/payments/{payment.pk}/slip/file/").status_code == 200

    # The buyer cannot confirm the money arrived.
    response = client.post(f"/deals/{deal.pk}/payments/{payment.pk}/confirm/", follow=True)
    assert "只有平台运营人员或本合同的卖方可以确认转账到账。" in html(response)
    assert Deal.objects.get(pk=deal.pk).status == DealStatus.AWAITING_PAYMENT

    page = html(login(client, seller).get(f"/deals/{deal.pk}/"))
    assert "买方已提交转账凭证" in page and f'/payments/{payment.pk}/confirm/"' in page
    assert client.get(f"/deals/{deal.pk}/payments/{payment.pk}/slip/file/").status_code == 200
    assert client.get(pay_url).status_code == 403  # only the buyer pays
    response = client.post(f"/deals/{deal.pk}/payments/{payment.pk}/confirm/", follow=True)
    page = html(response)
    assert "已确认收到转账 ¥1,000,000.00。" in page and "badge-deal-paid" in page and "已付款" in page
    assert Deal.objects.get(pk=deal.pk).status == DealStatus.PAID
    assert (
        login(client, market.buyers[1]).get(f"/deals/{deal.pk}/payments/{payment.pk}/slip/file/").status_code
        == 404
    )

    # Confirming twice is refused with a message, not an error page.
    response = login(client, seller).post(f"/deals/{deal.pk}/payments/{payment.pk}/confirm/", follow=True)
    assert response.status_code == 200 and "不能确认到账" in html(response)


def test_after_the_slip_the_buyer_is_told_to_wait_not_to_pay_again(client, market, deal):
    """Found by the browser journey: with the slip submitted, the buyer's next step still said "pay
    before the deadline" beside a "去付款" button; now it says the seller or the platform checks it."""
    buyer = market.buyers[0]
    payment = deals.payment_start(actor=buyer.user, deal=deal, method=PaymentMethod.BANK_TRANSFER)
    deals.payment_slip_submit(actor=buyer.user, payment=payment, slip=png_upload())
    waiting = "凭证已提交，等待卖方或平台核对到账。确认后合同即为已付款。"
    assert selectors.next_steps(deal, "buyer") == [("payment_check", waiting)]

    page = html(login(client, buyer).get(f"/deals/{deal.pk}/"))
    assert waiting in page and "去付款" not in page and "请在付款截止前支付货款。" not in page
    assert waiting in html(client.get("/deals/"))  # the list says the same
    page = html(login(client, market.seller).get(f"/deals/{deal.pk}/"))
    assert "买方已提交转账凭证：核对到账后请确认。" in page and f"/payments/{payment.pk}/confirm/" in page


def test_pickup_form_errors_and_booking(client, market, deal):
    deal = market.pay(deal)
    url = f"/deals/{deal.pk}/pickup/"
    login(client, market.buyers[0])
    page = html(client.get(f"/deals/{deal.pk}/"))
    assert f'action="{url}"' in page and f'max="{deal.pickup_by.isoformat()}"' in page

    late = (deal.pickup_by + timedelta(days=1)).isoformat()
    data = {"date": late, "vehicle_plate": "苏e12345", "driver_name": "李四", "driver_phone": "13800000000"}
    response = client.post(url, data)
    page = html(response)
    assert response.status_code == 400
    expected = (
        f"提货日期须在 {deal.pickup_from.isoformat()} 至 {deal.pickup_by.isoformat()} 之间，且不早于今天。"
    )
    assert expected in page and "提交的内容有误" in page
    assert re.search(r'<div class="field has-error">\s*<label for="pickup_date"', page)
    assert 'value="苏e12345"' in page  # what was typed is kept

    response = client.post(url, {"date": "", "vehicle_plate": ""})
    assert response.status_code == 400 and "该字段是必填项" in html(response)

    data["date"] = max(deal.pickup_from, timezone.localdate()).isoformat()
    response = client.post(url, data, follow=True)
    page = html(response)
    assert "提货已预约" in page and "苏E12345" in page and "badge-deal-pickup_scheduled" in page
    assert "改约提货" in page

    # The seller may not book the buyer's pickup: the refusal is shown, with its status.
    response = login(client, market.seller).post(url, data)
    assert response.status_code == 403 and "只有合同的买方可以预约提货。" in html(response)


def test_weighing_beyond_tolerance_dispute_and_operator_decision(client, market, deal):
    deal = market.book_pickup(market.pay(deal))
    buyer, seller = market.buyers[0], market.seller
    login(client, seller)
    page = html(client.get(f"/deals/{deal.pk}/"))
    assert f'action="/deals/{deal.pk}/weighing/"' in page and 'enctype="multipart/form-data"' in page

    response = client.post(
        f"/deals/{deal.pk}/weighing/", {"ticket_no": "BD-9", "gross_t": "20", "tare_t": "30"}
    )
    assert response.status_code == 400 and "毛重必须大于皮重。" in html(response)
    response = client.post(
        f"/deals/{deal.pk}/weighing/",
        {"ticket_no": "BD-9", "gross_t": "500.000", "tare_t": "20.000", "ticket": png_upload("ticket.png")},
        follow=True,
    )
    page = html(response)
    assert "超出允差，需由对方确认" in page and "badge-deal-weighed" in page and "-4.00%" in page
    weighing = deal.weighings.get()
    assert weighing.status == WeighingStatus.AWAITING and weighing.ticket
    assert f'action="/deals/{deal.pk}/confirm/"' not in page  # the other party confirms

    login(client, buyer)
    page = html(client.get(f"/deals/{deal.pk}/"))
    assert "过磅结果超出允差，请确认或提出异议。" in page and f'action="/deals/{deal.pk}/confirm/"' in page
    assert client.get(f"/deals/{deal.pk}/weighings/{weighing.pk}/ticket/").status_code == 200
    response = client.post(f"/deals/{deal.pk}/dispute/", {"reason": ""})
    assert response.status_code == 400 and "该字段是必填项" in html(response)
    response = client.post(
        f"/deals/{deal.pk}/dispute/", {"reason": "复磅净重 478 吨，与磅单不符"}, follow=True
    )
    assert "异议已提交" in html(response) and Deal.objects.get(pk=deal.pk).status == DealStatus.DISPUTED

    # Operators decide; parties cannot.
    response = client.post(
        f"/deals/{deal.pk}/resolve/", {"decision": "weight", "net_t": "479", "reason": "x"}
    )
    assert response.status_code == 403 and "只有平台运营人员可以裁定争议。" in html(response)
    login(client, market.operator)
    page = html(client.get(f"/deals/{deal.pk}/"))
    assert "争议待平台裁定。" in page and f'action="/deals/{deal.pk}/resolve/"' in page
    response = client.post(f"/deals/{deal.pk}/resolve/", {"decision": "weight", "reason": "按复磅"})
    assert response.status_code == 400 and "请填写裁定的净重（吨）。" in html(response)
    response = client.post(
        f"/deals/{deal.pk}/resolve/",
        {"decision": "weight", "net_t": "479", "against": "seller", "reason": "按复磅结果"},
        follow=True,
    )
    page = html(response)
    assert "争议已裁定" in page and "平台已裁定" in page
    deal.refresh_from_db()
    assert deal.final_quantity == Decimal("479.000") and deal.status == DealStatus.SETTLED


def test_receipt_rating_and_refusals(client, market, deal):
    deal = market.weigh(market.book_pickup(market.pay(deal)), "500")
    assert deal.status == DealStatus.SETTLED
    buyer, seller = market.buyers[0], market.seller
    page = html(login(client, buyer).get(f"/deals/{deal.pk}/"))
    assert "确认收货，完成交易。" in page and "确认收货</button>" in page
    response = client.post(f"/deals/{deal.pk}/confirm/", follow=True)
    assert "已确认收货，交易完成" in html(response)
    page = html(client.get(f"/deals/{deal.pk}/"))
    assert "badge-deal-completed" in page and f'action="/deals/{deal.pk}/rating/"' in page

    response = client.post(f"/deals/{deal.pk}/rating/", {"score": "9"})
    assert response.status_code == 400 and 'class="field has-error"' in html(response)
    response = client.post(
        f"/deals/{deal.pk}/rating/", {"score": "5", "comment": "按时装车，磅差小"}, follow=True
    )
    assert "感谢您的评价" in html(response) and "按时装车，磅差小" in html(response)
    response = client.post(f"/deals/{deal.pk}/rating/", {"score": "4"})
    assert response.status_code == 409 and "您已评价过这笔交易。" in html(response)

    page = html(login(client, seller).get(f"/deals/{deal.pk}/"))
    assert "平台服务费" in page and "¥5,000.00" in page and "¥995,000.00" in page
    response = client.post(f"/deals/{deal.pk}/rating/", {"score": "4"}, follow=True)
    assert Rating.objects.filter(deal=deal).count() == 2

    # A refused one-button action is a message, never a 500.
    response = client.post(f"/deals/{deal.pk}/runner-up/", follow=True)
    assert response.status_code == 200 and "不能转给下一位竞买人" in html(response)
    response = client.post(f"/deals/{deal.pk}/manifest/confirm/", {"role": "nobody"}, follow=True)
    assert response.status_code == 200 and "角色须为" in html(response)
    assert client.get(f"/deals/{deal.pk}/confirm/").status_code == 405


def test_runner_up_after_a_buyer_default(client, market):
    deal = market.deal_of(bids=((0, "2000"), (1, "2010"), (0, "2020")))
    assert deal.buyer_id == market.buyers[0].org.pk
    deals.deal_default(deal_id=deal.pk, party=DefaultParty.BUYER, reason="逾期未付款")
    login(client, market.seller)
    page = html(client.get(f"/deals/{deal.pk}/"))
    assert "合同已因买方违约终止：逾期未付款" in page and f'action="/deals/{deal.pk}/runner-up/"' in page
    response = client.post(f"/deals/{deal.pk}/runner-up/", follow=True)
    new = Deal.objects.exclude(pk=deal.pk).get()
    assert f"新合同 {new.number} 已生成" in html(response)
    assert new.buyer_id == market.buyers[1].org.pk and new.unit_price == Decimal("2010.00")
    assert Award.objects.get(deal=new).source == AwardSource.RUNNER_UP


def test_hazardous_manifest_through_the_pages_and_its_print(client, market):
    deal = market.pay(hazardous_deal(market))
    buyer, seller = market.buyers[0], market.seller
    page = html(login(client, seller).get(f"/deals/{deal.pk}/"))
    assert "危险废物须填写转移联单后才能结算。" in page and f'action="/deals/{deal.pk}/manifest/"' in page
    assert client.get(f"/deals/{deal.pk}/manifest/print/").status_code == 404  # none yet

    too_late = (timezone.localdate() + timedelta(days=400)).isoformat()
    data = {"transporter_name": "唐山危运物流有限公司", "transporter_licence": "冀交运管许可唐字 130200001号",
            "vehicle_plate": "冀b66666", "shipped_on": too_late}  # fmt: skip
    response = client.post(f"/deals/{deal.pk}/manifest/", data)
    assert response.status_code == 403 and "危险废物经营许可证" in html(response)
    data["shipped_on"] = timezone.localdate().isoformat()
    response = client.post(f"/deals/{deal.pk}/manifest/", data, follow=True)
    assert "转移联单已填写" in html(response)
    manifest = Manifest.objects.get(deal=deal)

    page = html(client.get(f"/deals/{deal.pk}/"))
    assert "以产生单位（卖方）身份确认联单" in page and "以接收单位（买方）身份确认联单" not in page
    client.post(f"/deals/{deal.pk}/manifest/confirm/", {"role": "generator"})
    response = client.post(f"/deals/{deal.pk}/manifest/confirm/", {"role": "receiver"}, follow=True)
    assert "只有合同的买方可以以该身份确认联单。" in html(response)
    login(client, buyer)
    for role in ("transporter", "receiver"):
        response = client.post(f"/deals/{deal.pk}/manifest/confirm/", {"role": role}, follow=True)
    assert "三方均已确认" in html(response)
    manifest.refresh_from_db()
    assert manifest.status == ManifestStatus.COMPLETED

    page = html(client.get(f"/deals/{deal.pk}/manifest/print/"))
    assert manifest.number in page and deal.number in page and QR.search(page)
    assert (
        "危险废物转移联单" in page and "HW31" in page and seller.org.uscc in page and buyer.org.uscc in page
    )
    assert "main-nav" not in page and "@media print" not in page  # the rules live in market.css
    assert deal.trace_chain.code in page and f"/trace/{deal.trace_chain.code}/" in page


def test_contract_print(client, market, deal):
    for who in (market.buyers[0], market.seller, market.operator):
        page = html(login(client, who).get(f"/deals/{deal.pk}/contract/"))
        assert deal.number in page and QR.search(page) and "再生资源成交合同" in page
        assert "壹佰万元整" in page and "¥1,000,000.00" in page and "¥2,000.00/吨" in page
        assert market.seller.org.uscc in page and market.buyers[0].org.uscc in page
        assert deal.pickup_by.isoformat() in page and deal.trace_chain.code in page
        assert "main-nav" not in page and "data-print" in page


# --- the payment page with Stripe -----------------------------------------------------------


def test_payment_page_with_stripe_configured(client, market, deal, settings, monkeypatch):
    fast_retries(monkeypatch)
    with FakeStripe() as fake:
        settings.STRIPE_SECRET_KEY = "sk_test_market"
        settings.STRIPE_API_BASE = fake.url
        settings.STRIPE_PUBLISHABLE_KEY = "pk_test_market"
        login(client, market.buyers[0])
        page = html(client.get(f"/deals/{deal.pk}/pay/"))
        assert 'value="stripe"' in page and 'value="bank_transfer"' in page
        response = client.post(f"/deals/{deal.pk}/pay/", {"method": "stripe"})
        payment = Payment.objects.get(deal=deal, method=PaymentMethod.STRIPE)
        assert response.status_code == 302 and response["Location"].endswith(f"?payment={payment.pk}")
        page = html(client.get(response["Location"]))
        assert '<script src="https://js.stripe.com/v3/"></script>' in page
        assert (
            f'data-client-secret="{payment.client_secret}"' in page
            and 'data-publishable-key="pk_test_market"' in page
        )
        assert (
            'id="payment-element"' in page and f'data-return-url="http://testserver/deals/{deal.pk}/"' in page
        )
        page = html(
            client.get(f"/deals/{deal.pk}/?payment_intent={payment.stripe_intent}&redirect_status=succeeded")
        )
        assert "在线支付已提交" in page and "badge-deal-awaiting_payment" in page  # until the webhook says so

        # A secret without a publishable key: the page offers bank transfer only.
        settings.STRIPE_PUBLISHABLE_KEY = ""
        page = html(client.get(f"/deals/{deal.pk}/pay/"))
        assert "js.stripe.com" not in page and 'value="stripe"' not in page


def test_paying_online_when_stripe_is_off_is_refused_on_the_form(client, market, deal, settings):
    settings.STRIPE_SECRET_KEY = ""
    response = login(client, market.buyers[0]).post(f"/deals/{deal.pk}/pay/", {"method": "stripe"})
    assert response.status_code == 400 and "选择一个有效的选项" in html(response)
    assert not Payment.objects.exists()


# --- the public trace page ------------------------------------------------------------------


def test_public_trace_page_and_tamper(client, market, deal):
    deal = market.weigh(market.book_pickup(market.pay(deal)), "498")
    code = deal.trace_chain.code
    client.logout()
    response = client.get(f"/trace/{code}/")
    page = html(response)
    assert response.status_code == 200 and "追溯链校验通过" in page and QR.search(page)
    for words in ("挂牌", "成交", "货款到账", "过磅", "结算", "北京时间", "净重 498 吨"):
        assert words in page, words
    plate = deal.pickups.get().vehicle_plate
    assert (
        "河北省唐山市路北区" in page
        and "买方到场提货" in page
        and plate not in page
        and plate[:2] not in page
    )
    # No names of the parties, their people, or the bids.
    for private in (market.buyers[0].org.legal_name, market.seller.org.legal_name, "李四", "13800000000"):
        assert private not in page
    assert f"http://testserver/trace/{code}/" in page

    assert client.get(f"/trace/{code.lower()}/")["Location"] == f"/trace/{code}/"
    assert client.get("/trace/NOSUCHCODE/").status_code == 404
    response = client.get("/trace/", {"code": code.lower()})
    assert response.status_code == 302 and response["Location"] == f"/trace/{code}/"
    response = client.get("/trace/", {"code": "ABCDEFGH23"})
    assert response.status_code == 404 and "没有找到这个追溯码" in html(response)
    response = client.get("/trace/", {"code": "!"})
    assert response.status_code == 400
    assert client.get("/trace/").status_code == 200

    entry = TraceEntry.objects.filter(chain=deal.trace_chain, event="awarded").get()
    TraceEntry.objects.filter(pk=entry.pk).update(data={**entry.data, "unit_price": "1.00"})
    page = html(client.get(f"/trace/{code}/"))
    assert (
        f"第 {entry.index + 1} 条记录被篡改" in page and "追溯链校验通过" not in page and "is-broken" in page
    )


def test_deal_pages_in_english(client, market, deal):
    deal = market.pay(deal)
    login(client, market.buyers[0])
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    page = html(client.get(f"/deals/{deal.pk}/"))
    assert "We are the buyer" in page and "Contract no." in page and "Book pickup" in page
    assert "Pickup date" in page and "本单位为买方" not in page and "提货日期" not in page
    assert "My contracts" in html(client.get("/deals/"))
    page = html(client.get(f"/trace/{deal.trace_chain.code}/"))
    assert "The trace chain verifies" in page and "Payment of ¥1,000,000.00 received" in page
    page = html(client.get(f"/deals/{deal.pk}/contract/"))
    assert "Sales Contract for Recyclables" in page and "RMB 壹佰万元整" in page


# --- query counts and the list's next steps -------------------------------------------------


def _deals_in_many_states(market) -> list[Deal]:
    """Deals of buyer 0 in several states (and a hazardous one), for counting and comparing."""
    made = [market.deal_of()]
    made.append(market.pay(market.deal_of(lot=another_lot(market, "重废 A"))))
    made.append(market.book_pickup(market.pay(market.deal_of(lot=another_lot(market, "重废 B")))))
    d = market.book_pickup(market.pay(market.deal_of(lot=another_lot(market, "重废 C"))))
    made.append(market.weigh(d, "90"))  # 10 % short: awaiting the buyer's confirmation
    d = market.book_pickup(market.pay(market.deal_of(lot=another_lot(market, "重废 D"))))
    d = market.weigh(d, "101", by="buyer")  # within the tolerance, more than paid: a top-up
    made.append(d)
    d = market.book_pickup(market.pay(market.deal_of(lot=another_lot(market, "重废 E"))))
    d = market.weigh(d, "100")
    deals.deal_confirm(actor=market.buyers[0].user, deal=d)
    made.append(Deal.objects.get(pk=d.pk))
    made.append(market.pay(hazardous_deal(market)))
    d = market.deal_of(lot=another_lot(market, "重废 F"))
    deals.deal_default(deal_id=d.pk, party=DefaultParty.BUYER, reason="逾期未付款")
    made.append(Deal.objects.get(pk=d.pk))
    return made


def test_the_list_shows_each_partys_next_steps(client, market):
    made = _deals_in_many_states(market)
    statuses = {d.status for d in Deal.objects.all()}
    assert {"awaiting_payment", "paid", "pickup_scheduled", "weighed", "completed", "defaulted"} <= statuses
    rows = selectors.deals_with_steps(Deal.objects.filter(pk__in=[d.pk for d in made]))
    codes = {c for d in rows for c, _t in selectors.next_steps(d, "buyer")}
    assert {"pay", "pickup", "weigh", "confirm_weight", "top_up", "manifest", "rate"} <= codes
    for deal in rows:  # someone who is neither party (an operator, an official) is asked to do nothing
        assert selectors.next_steps(deal, "") == [], deal.status
    page = html(login(client, market.buyers[0]).get("/deals/"))
    assert "过磅结果超出允差，请确认或提出异议。" in page and "按过磅结果补足差额。" in page


def test_my_deals_and_deal_page_have_a_bounded_number_of_queries(
    client, market, django_assert_max_num_queries
):
    made = _deals_in_many_states(market)
    login(client, market.buyers[0])
    with django_assert_max_num_queries(13) as few:
        assert client.get("/deals/").status_code == 200
    for _n in range(3):
        made.append(market.book_pickup(market.pay(market.deal_of(lot=another_lot(market, f"更多 {_n}")))))
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get("/deals/").status_code == 200
    for deal in made:
        with django_assert_max_num_queries(30):
            assert client.get(f"/deals/{deal.pk}/").status_code == 200
