"""Journeys 1 and 2, what the other files leave out: a generator's deal after the sale, and a
recycler's saved search, alert and soft-close win.

* A battery maker (恒源电池, battery@) sold a lot of waste lead-acid batteries (HW31) at auction to a
  licensed smelter (金利铅业, lead@): the buyer pays by bank transfer with a slip, the seller confirms
  the money, the buyer books the pickup and opens the transfer manifest (联单), all three roles confirm
  it, the buyer records a weighbridge ticket 3 % short (beyond the 2 % tolerance), the seller confirms
  the weight, the deal settles (the difference promised back), the buyer confirms receipt and the
  seller rates the buyer. Both browsers watch the deal's page; each step is asserted as a user sees it.
* A copper smelter (江南铜业, copper@) saves a search with alerts; a machine shop (吴中精机, machinery@)
  lists a matching lot in a browser of its own (auto-published: a verified seller, not hazardous); the
  smelter's bell rings live and its notifications page leads to the lot.
* A scrap yard (路桥再生, scrapyard@) bids with a proxy maximum on an auction about to end; a rival
  (copper@) bids in the last window, the proxy answers, each bid moves the end (the page says so), and
  after the close the yard sees the award in 我的成交.

Each journey's lot and sale are made when the test starts, in the server's environment
(``python -m tests.e2e.test_deal_journey <what>``, like the probe): an auction closed seconds after a
bid, or one ending within seconds. Fresh rows each time, so the tests stay independent of each other,
of the other journeys' facts and of a database kept between runs (E2E_KEEP_DB=1).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from PIL import Image, ImageDraw
from playwright.sync_api import expect

from tests.e2e.lot_page import bid_with_proxy, money, yuan

ROOT = Path(__file__).resolve().parents[2]
SOFT_CLOSE_S = 30  # the auction's first end, its extension window and each extension


def _prepare(journey, what: str) -> dict:
    """Run this module's preparation ``what`` in the e2e server's environment; its facts."""
    result = subprocess.run(
        [sys.executable, "-m", "tests.e2e.test_deal_journey", what],
        cwd=ROOT, env=journey.server.env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, (
        f"preparing {what} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def _image(journey, name: str, text: str) -> Path:
    """A placeholder scan (a bank slip, a weighbridge ticket) to upload."""
    journey.folder.mkdir(parents=True, exist_ok=True)
    path = journey.folder / name
    img = Image.new("RGB", (640, 400), (246, 246, 240))
    ImageDraw.Draw(img).text((30, 40), text, fill=(0, 0, 0))
    img.save(path, "PNG")
    return path


def _flash(page):
    """The page's message after a form or button (Django's messages)."""
    return page.locator("ul.messages .flash").first


def _heading(page):
    return page.get_by_role("heading", level=1)


# --- journey 1: the generator's deal after the sale ----------------------------------------------


def test_a_generator_is_paid_hands_over_a_hazardous_lot_and_rates_the_buyer(journey):
    deal = _prepare(journey, "deal")
    url, title, number = f"/deals/{deal['id']}/", deal["title"], deal["number"]
    amount = Decimal(deal["amount"])
    quantity, price = Decimal(deal["quantity"]), Decimal(deal["unit_price"])
    assert amount == quantity * price, deal

    seller = journey.page(deal["seller_email"])
    buyer = journey.page(deal["buyer_email"])

    # The seller finds the new contract among its deals: awaiting the buyer's payment.
    seller.get_by_role("navigation", name="主导航").get_by_role("link", name="我的合同").click()
    expect(_heading(seller)).to_have_text("我的合同")
    row = seller.locator("table.my-deals tbody tr").filter(has_text=number)
    expect(row).to_contain_text("待付款")
    expect(row).to_contain_text("等待买方付款")
    journey.shot(seller, "seller-my-deals")
    seller.goto(url)
    expect(_heading(seller)).to_contain_text(title)
    expect(_heading(seller)).to_contain_text("待付款")
    expect(seller.locator("main")).to_contain_text("本单位为卖方")
    expect(seller.locator(".badge-hazardous")).to_contain_text("HW31")
    amounts = seller.locator("section[aria-labelledby=amounts-title]")
    expect(amounts).to_contain_text(yuan(amount))
    expect(seller.locator("#next")).to_have_count(0)  # nothing for the seller to do yet
    journey.shot(seller, "seller-deal-awaiting-payment")

    # The buyer: the contract asks it to pay, with the deadline.
    buyer.goto(url)
    expect(_heading(buyer)).to_contain_text("待付款")
    expect(buyer.locator("main")).to_contain_text("本单位为买方")
    steps = buyer.locator("#next")
    expect(steps).to_contain_text("请在付款截止前支付货款。")
    expect(steps).to_contain_text("付款截止：")
    journey.shot(buyer, "buyer-deal-to-pay")
    steps.get_by_role("link", name=f"去付款 {yuan(amount)}").click()
    expect(_heading(buyer)).to_have_text("支付货款")
    expect(buyer.locator(".pay-due")).to_have_text(yuan(amount))
    expect(buyer.get_by_label("对公转账")).to_be_checked()
    buyer.get_by_role("button", name="下一步").click()
    expect(_flash(buyer)).to_contain_text(f"请按下方账户转账 {yuan(amount)}，附言填写")
    transfer = buyer.locator(".bank-transfer")
    expect(transfer).to_contain_text("收款户名")
    expect(transfer).to_contain_text(yuan(amount))
    reference = transfer.locator("dt:text-is('附言（用途）') + dd").inner_text().strip()
    assert reference, "no reference to quote in the transfer"
    journey.shot(buyer, "buyer-bank-transfer")

    # The buyer uploads the bank's slip; the seller's open page hears of it.
    seller_unread = journey.unread(seller)
    buyer.get_by_label("转账凭证").set_input_files(_image(journey, "slip.png", f"BANK SLIP {reference}"))
    buyer.get_by_role("button", name="上传转账凭证").click()
    expect(_flash(buyer)).to_have_text("转账凭证已提交，卖方核对到账后合同即为已付款。")
    payments = buyer.locator("#payments")
    expect(payments).to_contain_text("已提交凭证，待确认")
    expect(payments).to_contain_text(reference)
    # Its next step now is to wait for the check, not to pay again.
    steps = buyer.locator("#next")
    expect(steps).to_contain_text("凭证已提交，等待卖方或平台核对到账。确认后合同即为已付款。")
    expect(steps).not_to_contain_text("请在付款截止前支付货款。")
    expect(buyer.get_by_role("link", name=re.compile("^去付款"))).to_have_count(0)
    journey.shot(buyer, "buyer-slip-submitted")
    journey.expect_unread_above(seller, seller_unread)
    expect(journey.toast(seller, f"合同 {number} 的买方已提交转账凭证 {yuan(amount)}")).to_be_visible()

    # The seller checks the slip and confirms the money arrived.
    seller.reload()
    confirm = seller.locator("#next")
    expect(confirm).to_contain_text("买方已提交转账凭证：核对到账后请确认。")
    expect(confirm).to_contain_text(f"对公转账 {yuan(amount)}，附言 {reference}")
    with seller.expect_popup() as popup:
        confirm.get_by_role("link", name="查看凭证").click()
    popup.value.close()
    journey.shot(seller, "seller-confirms-transfer")
    confirm.get_by_role("button", name="确认已收到转账").click()
    expect(_flash(seller)).to_have_text(f"已确认收到转账 {yuan(amount)}。")
    expect(_heading(seller)).to_contain_text("已付款")
    expect(seller.locator("#payments")).to_contain_text("已到账")
    expect(amounts).to_contain_text("待付")
    expect(amounts.locator("dt:text-is('已付') + dd")).to_have_text(yuan(amount))
    journey.shot(seller, "seller-payment-received")

    # The buyer, paid: book the pickup (the manifest is asked for too: hazardous waste).
    buyer.goto(url)
    steps = buyer.locator("#next")
    expect(_heading(buyer)).to_contain_text("已付款")
    expect(steps).to_contain_text("请预约提货（车牌、司机、日期）。")
    expect(steps).to_contain_text("危险废物须填写转移联单后才能结算。")
    pickup = buyer.locator("#pickup-form")
    pickup.get_by_label("提货日期").fill(deal["pickup_from"])
    pickup.get_by_label("车牌号").fill("豫U8H261")
    pickup.get_by_label("司机姓名").fill("王建军")
    pickup.get_by_label("司机电话").fill("13903910000")
    pickup.get_by_label("备注").fill("危险货物运输车，上午九点到厂")
    journey.shot(buyer, "buyer-pickup-form")
    pickup.get_by_role("button", name="预约提货").click()
    expect(_flash(buyer)).to_have_text("提货已预约，卖方会收到通知。")
    expect(_heading(buyer)).to_contain_text("已预约提货")
    expect(buyer.locator("section#pickup")).to_contain_text("豫U8H261")
    expect(buyer.locator("#next")).to_contain_text("提货过磅后录入磅单。")

    # The buyer opens the transfer manifest and confirms it as transporter and as receiver.
    form = buyer.locator("#manifest-form")
    form.get_by_label("运输单位").fill("济源市安达危险品运输有限公司")
    form.get_by_label("道路危险货物运输许可证号").fill("豫交运管许可济字 419001000123号")
    form.get_by_label("运输车辆").fill("豫U8H261")
    expect(form.get_by_label("转移日期")).to_have_value(deal["today"])
    form.get_by_label("包装方式").fill("托盘缠绕膜包装")
    form.get_by_role("button", name="生成转移联单").click()
    expect(_flash(buyer)).to_have_text("转移联单已填写，请各方确认。")
    manifest = buyer.locator("section#manifest")
    expect(manifest).to_contain_text("待确认")
    expect(manifest).to_contain_text("HW31")
    expect(manifest).to_contain_text(f"{quantity.normalize():f} 吨")
    manifest_number = manifest.locator("dt:text-is('联单编号') + dd").inner_text().strip()
    assert re.fullmatch(r"ZY\d{8}\d{6}", manifest_number), manifest_number
    expect(buyer.locator("#next")).to_contain_text("转移联单待各方确认。")
    journey.shot(buyer, "buyer-manifest-opened")
    buyer.get_by_role("button", name="以运输单位身份确认联单").click()
    expect(_flash(buyer)).to_have_text("已确认转移联单。")
    buyer.get_by_role("button", name="以接收单位（买方）身份确认联单").click()
    expect(_flash(buyer)).to_have_text("已确认转移联单。")
    expect(buyer.get_by_role("button", name=re.compile("身份确认联单"))).to_have_count(0)

    # The seller, the generator, confirms the handover: the manifest is complete.
    seller.reload()
    expect(_heading(seller)).to_contain_text("已预约提货")
    expect(seller.locator("section#pickup")).to_contain_text("豫U8H261")
    expect(seller.locator("#next")).to_contain_text("装车过磅后可录入磅单。")
    seller.get_by_role("button", name="以产生单位（卖方）身份确认联单").click()
    expect(_flash(seller)).to_have_text("已确认转移联单，三方均已确认。")
    expect(seller.locator("section#manifest")).to_contain_text("三方已确认")
    expect(seller.locator("section#manifest .confirmations .text-ok")).to_have_count(3)
    journey.shot(seller, "seller-manifest-complete")

    # The buyer records the weighbridge ticket: 3 % short, beyond the 2 % tolerance.
    net = (quantity * Decimal("0.97")).quantize(Decimal("0.001"))
    tare = Decimal("8.200")
    buyer.reload()
    weigh = buyer.locator("#weighing-form")
    weigh.get_by_label("磅单号").fill("JL-2026-0815")
    weigh.get_by_label("毛重（吨）").fill(str(net + tare))
    weigh.get_by_label("皮重（吨）").fill(str(tare))
    weigh.get_by_label("磅单照片").set_input_files(
        _image(journey, "ticket.png", f"TICKET JL-2026-0815 NET {net}")
    )
    journey.shot(buyer, "buyer-weighing-form")
    weigh.get_by_role("button", name="提交磅单").click()
    expect(_flash(buyer)).to_contain_text(
        f"净重 {net.normalize():f} 吨与合同数量相差 -3.00%，超出允差，需由对方确认。"
    )
    expect(_heading(buyer)).to_contain_text("已过磅")
    expect(buyer.locator("section#weighing")).to_contain_text("超出允差，待对方确认")
    expect(buyer.locator("#next")).to_have_count(0)  # the seller's turn

    # The seller confirms the weight: the deal settles at the weighed quantity.
    final = net * price
    seller.reload()
    confirm = seller.locator("#confirm-weight")
    expect(seller.locator("#next")).to_contain_text("过磅结果超出允差，请确认或提出异议。")
    expect(confirm).to_contain_text(f"磅单 JL-2026-0815：净重 {net:,.3f} 吨，与合同数量相差 -3.00%。")
    journey.shot(seller, "seller-weight-to-confirm")
    confirm.get_by_role("button", name="确认过磅结果").click()
    expect(_flash(seller)).to_have_text("已确认过磅结果。")
    expect(_heading(seller)).to_contain_text("已结算")
    expect(amounts.locator("dt:text-is('结算金额') + dd")).to_have_text(yuan(final))
    rate = Decimal(re.search(r"平台服务费（([\d.]+)%", amounts.inner_text()).group(1)) / 100
    fee = (final * rate).quantize(Decimal("0.01"))
    expect(amounts).to_contain_text(yuan(fee))
    expect(amounts.locator("dt:text-is('结算给卖方') + dd")).to_have_text(yuan(final - fee))
    expect(seller.locator("#payments")).to_contain_text(f"{yuan(amount - final)}")  # promised back
    expect(seller.locator("#payments")).to_contain_text("退款中")
    journey.shot(seller, "seller-deal-settled")

    # The buyer confirms receipt: the deal is complete.
    buyer.reload()
    expect(_heading(buyer)).to_contain_text("已结算")
    steps = buyer.locator("#next")
    expect(steps).to_contain_text("确认收货，完成交易。")
    steps.get_by_role("button", name="确认收货").click()
    expect(_flash(buyer)).to_have_text("已确认收货，交易完成。欢迎评价对方。")
    expect(_heading(buyer)).to_contain_text("已完成")

    # The seller rates the buyer.
    seller.reload()
    expect(_heading(seller)).to_contain_text("已完成")
    steps = seller.locator("#next")
    expect(steps).to_contain_text("评价对方。")
    rating = seller.locator("#rating-form")
    expect(rating.get_by_role("heading")).to_have_text(f"评价 {deal['buyer_name']}")
    rating.get_by_label("5", exact=True).check()
    rating.get_by_label("评价内容").fill("付款及时，危废联单手续齐全，车辆按预约时间到厂。")
    journey.shot(seller, "seller-rating-form")
    rating.get_by_role("button", name="提交评价").click()
    expect(_flash(seller)).to_have_text("感谢您的评价。")
    expect(seller.locator("#next")).to_have_count(0)  # nothing left to do
    ratings = seller.locator("section#ratings")
    expect(ratings).to_contain_text(f"{deal['seller_name']} 评价 {deal['buyer_name']}")
    expect(ratings).to_contain_text("付款及时，危废联单手续齐全")
    timeline = seller.locator("section#timeline")
    for label in (
        "货款到账",
        "预约提货",
        "开具转移联单",
        "转移联单确认",
        "录入磅单",
        "确认过磅结果",
        "结算",
        "交易完成",
    ):
        expect(timeline).to_contain_text(label)
    journey.shot(seller, "seller-deal-completed-rated")

    # The lot's public trace page tells the whole story, its chain intact.
    seller.get_by_role("link", name="追溯记录").first.click()
    expect(seller.locator("main")).to_contain_text(manifest_number)
    expect(seller.locator("main")).to_contain_text("买方确认收货，交易完成")
    journey.shot(seller, "trace-page")


# --- journey 2: a recycler's saved search and alert ----------------------------------------------


def test_a_recycler_saves_a_search_and_is_alerted_to_a_new_matching_lot(journey):
    tag = f"E2E{time.strftime('%H%M%S')}{os.getpid() % 1000:03d}"
    name = f"光亮铜 {tag}"
    title = f"光亮铜 8 吨 · 电机拆解 {tag}"

    # The smelter searches for what it wants and saves the search, with alerts.
    recycler = journey.page("copper@demo.market")
    recycler.goto("/lots/")
    recycler.get_by_label("关键词").fill(f"光亮铜 {tag}")
    recycler.get_by_role("button", name="搜索", exact=True).click()
    expect(recycler.locator("#results-title")).to_have_text("没有找到标的")
    expect(recycler.locator("main")).to_contain_text("也可以保存这个搜索，有符合条件的新货源挂牌时提醒您。")
    save = recycler.locator("#save-search")
    save.get_by_label("名称").fill(name)
    expect(save.get_by_label("有新货源时提醒我")).to_be_checked()
    journey.shot(recycler, "search-to-save")
    save.get_by_role("button", name="保存搜索").click()
    expect(_heading(recycler)).to_have_text("保存的搜索")
    expect(_flash(recycler)).to_have_text(f"已保存搜索“{name}”。有符合条件的新货源挂牌时，会通知您。")
    saved = recycler.locator("tbody tr").filter(has_text=name)
    expect(saved).to_contain_text(f"“光亮铜 {tag}”")
    expect(saved).to_contain_text("开启")
    journey.shot(recycler, "saved-searches")
    unread = journey.unread(recycler)

    # A machine shop lists a matching lot in its own browser; verified and not hazardous, it is
    # published at once.
    seller = journey.page("machinery@demo.market")
    seller.goto("/lots/new/")
    expect(_heading(seller)).to_have_text("发布标的")
    seller.get_by_label("品类").select_option(label="废铜 · 光亮铜")
    seller.get_by_label("标题").fill(title)
    seller.get_by_label("数量").fill("8")
    seller.get_by_label("包装方式").select_option(label="打包")
    seller.get_by_label("提货地址").fill("江苏省苏州市吴中区越溪街道精工路55号 2 号仓库")
    seller.get_by_label("描述").fill("电机拆解光亮铜线，无漆无油，打包。")
    seller.get_by_role("button", name="保存草稿").click()
    expect(_heading(seller)).to_contain_text(title)
    seller.get_by_role("button", name="提交审核").click()
    expect(_flash(seller)).to_have_text("标的已挂牌，买家现在可以在货源大厅检索到它。")
    expect(seller.locator(".owner-panel")).to_contain_text("已挂牌")
    journey.shot(seller, "seller-lot-published")

    # The smelter's open page: the bell counts one more, the toast names the search and the lot.
    journey.expect_unread_above(recycler, unread)
    expect(journey.toast(recycler, f"“{name}”有新货源：{title}")).to_be_visible()
    journey.shot(recycler, "alert-live")
    recycler.locator("[data-bell]").click()
    expect(_heading(recycler)).to_have_text("通知")
    alert = recycler.locator(".notification").filter(has_text=f"“{name}”有新货源：{title}")
    expect(alert).to_have_count(1)
    expect(alert).to_have_class(re.compile(r"is-unread"))
    journey.shot(recycler, "notifications")
    alert.get_by_role("link").click()
    expect(_heading(recycler)).to_have_text(title)
    journey.shot(recycler, "alerted-lot")

    # The search runs again from the saved list, and goes when no longer wanted.
    recycler.goto("/my/searches/")
    saved.get_by_role("link", name="运行").click()
    expect(recycler.locator(".lot-card").filter(has_text=title)).to_have_count(1, timeout=30_000)
    recycler.goto("/my/searches/")
    saved.get_by_role("button", name=f"删除“{name}”").click()
    expect(_flash(recycler)).to_have_text(f"已删除搜索“{name}”。")
    expect(saved).to_have_count(0)


# --- journey 2: a proxy bid that wins in the soft-close extension --------------------------------


def _closes_at(page) -> datetime:
    return datetime.fromisoformat(
        page.locator("#trading time[data-field=closes_at]").get_attribute("datetime")
    )


def test_a_recycler_wins_with_a_proxy_maximum_in_the_soft_close_extension(journey):
    winner = journey.page("scrapyard@demo.market")
    rival = journey.page("copper@demo.market")
    lot = _prepare(journey, "soft-close")  # ends SOFT_CLOSE_S seconds from now
    lot_url, title = f"/lots/{lot['lot']}/", lot["title"]
    increment = Decimal(lot["increment"])
    for page in (winner, rival):
        page.goto(lot_url)
        expect(_heading(page)).to_have_text(title)
        expect(page.locator("#trading [data-field=current_price]").first).to_have_text("暂无出价")
        expect(page.locator("#trading [data-extended]")).to_be_hidden()
    first_end = _closes_at(winner)
    journey.shot(winner, "auction-ending")

    # The yard bids the minimum with a hidden proxy maximum, seconds before the end: the end moves.
    start = money(winner.locator("#trading .live-facts [data-field=minimum_next]").inner_text())
    maximum = start + 10 * increment
    bid_with_proxy(winner, start, maximum)
    expect(winner.locator("#trading [data-extended]")).to_be_visible()
    expect(winner.locator("#trading [data-extended]")).to_contain_text(
        "临近截止有人出价，截止时间已自动延长。"
    )
    expect(rival.locator("#trading [data-extended]")).to_be_visible()  # live, on the rival's page too
    expect(rival.locator("[data-live-status]")).to_contain_text("截止时间已延长至")
    second_end = _closes_at(rival)
    assert second_end > first_end, (
        f"the bid in the last window did not move the end ({first_end} -> {second_end})"
    )
    journey.shot(winner, "proxy-bid-extends")

    # The rival bids in the new last window; the yard's proxy answers at once and the end moves again.
    rival_bid = start + increment
    rival.get_by_label("出价（元/").fill(str(rival_bid))
    rival.get_by_role("button", name="出价", exact=True).click()
    expect(rival.locator("[data-bid-status]")).to_have_text("出价成功。")
    expect(rival.locator("[data-leading]")).to_have_text("您的出价已被超过")
    final = rival_bid + increment
    for page in (winner, rival):
        expect(page.locator("#trading [data-field=current_price]").first).to_have_text(yuan(final))
    expect(winner.locator("[data-leading]")).to_have_text("您目前领先")
    expect(winner.locator("#bid-history tbody tr").first).to_contain_text("代理出价")
    expect(winner.locator("[data-live-status]")).to_contain_text("截止时间已延长至")
    journey.wait_until(
        winner, lambda: _closes_at(winner) > second_end, "the rival's bid did not move the end"
    )
    journey.shot(winner, "proxy-answers-in-extension")
    journey.shot(rival, "rival-outbid")

    # The close (the worker's scheduled task or its sweeper): the yard has won.
    wait = (_closes_at(winner) - datetime.now(_closes_at(winner).tzinfo)).total_seconds()
    timeout = int((max(wait, 0) + 45) * 1000)
    result = winner.locator("#trading-action")
    expect(result).to_contain_text("交易已结束，已成交。", timeout=timeout)
    expect(result.locator("table.awards-mini")).to_contain_text(yuan(final))
    expect(_heading(winner)).to_contain_text(f"{title} 已结束")
    expect(rival.locator("#trading-action")).to_contain_text("您未成交", timeout=timeout)
    journey.shot(winner, "won-after-extension")
    journey.shot(rival, "rival-lost")

    # 我的成交: the award, as buyer, with its contract awaiting payment.
    result.get_by_role("link", name="在“我的成交”查看").click()
    expect(_heading(winner)).to_have_text("我的成交")
    award = winner.locator("table.my-awards tbody tr").filter(has_text=title)
    expect(award).to_have_count(1)
    expect(award).to_contain_text("买方")
    expect(award).to_contain_text(lot["seller_name"])
    expect(award).to_contain_text(yuan(final))
    expect(award).to_contain_text("竞价")
    expect(award).to_contain_text("待付款")
    journey.shot(winner, "my-awards")
    award.get_by_role("link", name=re.compile(r"^HT\d+")).click()
    expect(_heading(winner)).to_contain_text("待付款")
    expect(winner.locator("#next")).to_contain_text("请在付款截止前支付货款。")

    # The news of the win waits behind the bell too (the page reloaded at the close, so a toast
    # may have come and gone with the old page).
    winner.locator("[data-bell]").click()
    expect(_heading(winner)).to_have_text("通知")
    won = winner.locator(".notification").filter(has_text=f"恭喜！您已成交“{title}”，成交价 {yuan(final)}")
    expect(won).to_have_count(1)


# --- preparation, in the server's environment -----------------------------------------------------


def _member(email: str):
    from market.accounts.models import Membership

    membership = Membership.objects.select_related("organisation", "user").get(user__email=email)
    return membership.user, membership.organisation


def _lot_publish(seller, user, *, category_code: str, title: str, quantity: str, packaging: str):
    """A published lot of ``seller`` (as the demo's deals make theirs)."""
    import random

    from django.utils import timezone

    from frontend.demo_lots import _spec_value
    from listings.models import Category, Lot, LotStatus
    from listings.selectors import schema_effective
    from listings.specs import specs_validate

    category = Category.objects.get(code=category_code)
    schema = schema_effective(category)
    rng = random.Random(title)
    raw = {f["key"]: v for f in schema if (v := _spec_value(f, rng)) is not None}
    now, today = timezone.now(), timezone.localdate()
    return Lot.objects.create(
        seller=seller, created_by=user, category=category, title=title,
        description=f"{seller.legal_name}厂内自提，过磅结算。（端到端测试）", quantity=Decimal(quantity),
        unit=category.unit, specs=specs_validate(schema, raw), region=seller.region, address=seller.address,
        available_from=today, pickup_by=today + timedelta(days=30), packaging=packaging,
        hazardous=category.hazardous, status=LotStatus.PUBLISHED, status_changed_at=now, published_at=now,
    )  # fmt: skip


def prepare_deal() -> dict:
    """A hazardous lot of 恒源电池 sold at auction to 金利铅业: configured to end in two seconds, one
    bid, closed; the deal awaits payment."""
    from django.utils import timezone

    from listings.models import Packaging, TradeMode
    from market.deals.models import Deal
    from market.trading import services as trading

    seller_email, buyer_email = "battery@demo.market", "lead@demo.market"
    seller_user, seller = _member(seller_email)
    buyer_user, buyer = _member(buyer_email)
    stamp = time.strftime("%H%M%S")
    lot = _lot_publish(
        seller, seller_user, category_code="batteries.lead_acid", quantity="20", packaging=Packaging.PALLETS,
        title=f"废铅酸蓄电池 20 吨 · 履约端到端 {stamp}",
    )  # fmt: skip
    sale = trading.sale_configure(
        actor=seller_user, lot=lot, mode=TradeMode.AUCTION, start_price="9000", increment_amount="50",
        ends_at=timezone.now() + timedelta(seconds=2), extend_window_s=1, extend_by_s=1,
    )  # fmt: skip
    trading.bid_place(actor=buyer_user, organisation=buyer, lot_id=lot.pk, amount=Decimal("9000"))
    sale.refresh_from_db()
    while timezone.now() <= sale.closes_at:
        time.sleep(0.2)
    trading.sale_close(sale_id=sale.pk)  # or the worker did already: one award either way
    deal = Deal.objects.get(award__sale=sale)
    return {
        "id": deal.pk,
        "number": deal.number,
        "title": deal.title,
        "amount": str(deal.amount),
        "quantity": str(deal.quantity),
        "unit_price": str(deal.unit_price),
        "pickup_from": deal.pickup_from.isoformat(),
        "today": timezone.localdate().isoformat(),
        "seller_email": seller_email,
        "buyer_email": buyer_email,
        "seller_name": seller.display_name,
        "buyer_name": buyer.display_name,
    }


def prepare_soft_close() -> dict:
    """An auction of 宏达钢铁's heavy scrap ending SOFT_CLOSE_S seconds from now, whose extension
    window and step are as long: every bid moves the end."""
    from django.utils import timezone

    from listings.models import Packaging, TradeMode
    from market.trading import services as trading

    seller_user, seller = _member("steel@demo.market")
    stamp = time.strftime("%H%M%S")
    lot = _lot_publish(
        seller, seller_user, category_code="ferrous.heavy", quantity="60", packaging=Packaging.BULK,
        title=f"重型废钢 60 吨 · 尾盘延时端到端 {stamp}",
    )  # fmt: skip
    sale = trading.sale_configure(
        actor=seller_user, lot=lot, mode=TradeMode.AUCTION, start_price="2600", increment_amount="20",
        ends_at=timezone.now() + timedelta(seconds=SOFT_CLOSE_S), extend_window_s=SOFT_CLOSE_S,
        extend_by_s=SOFT_CLOSE_S,
    )  # fmt: skip
    for email in ("scrapyard@demo.market", "copper@demo.market"):
        trading.eligibility_check(sale, _member(email)[1])  # refused: the preparation fails, saying why
    return {
        "lot": lot.pk,
        "title": lot.title,
        "increment": str(sale.increment_amount),
        "seller_name": seller.display_name,
    }


if __name__ == "__main__":
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "market.settings_test")
    django.setup()
    made = {"deal": prepare_deal, "soft-close": prepare_soft_close}[sys.argv[1]]()
    sys.stdout.write(json.dumps(made, ensure_ascii=False) + "\n")
