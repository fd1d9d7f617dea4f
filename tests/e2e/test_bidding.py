"""Journey 2: two recyclers bid live against each other on one auction, each in a browser of its own.

A (路桥再生, scrapyard@) bids; B's open page (江南铜业, copper@) shows the bid and the new price
without reloading (the lot's websocket). B bids with a hidden proxy maximum; A's page shows it was
outbid, live, and A's notification bell counts one more unread. A tries again and B's proxy answers
for B at once. B's browser clock runs three hours fast: its countdown still follows the server's.
"""

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from tests.e2e.lot_page import bid_with_proxy, money, yuan


def _countdown_seconds(text: str) -> int:
    """ "01:55:58" or "2天 01:55:58" -> seconds"""
    found = re.fullmatch(r"(?:(\d+)\D+\s)?(\d{2}):(\d{2}):(\d{2})", text.strip())
    assert found, f"not a running countdown: {text!r}"
    days, h, m, s = (int(g or 0) for g in found.groups())
    return ((days * 24 + h) * 60 + m) * 60 + s


def _open_lot(journey, page, lot_id: int) -> list:
    """Open the lot's page; returns the frames its lot socket receives (the first is the snapshot)."""
    frames = []

    def on_socket(ws):
        if f"/ws/lots/{lot_id}/" in ws.url:
            ws.on("framereceived", lambda payload: frames.append(payload))

    page.on("websocket", on_socket)
    page.goto(f"/lots/{lot_id}/")
    journey.wait_until(page, lambda: frames, "the lot's websocket sent no snapshot")
    return frames


def test_two_recyclers_bid_live_against_each_other(journey):
    facts = journey.server.facts
    if not facts["auction"]:
        pytest.fail(f"the demo market has no quiet auction both recyclers may bid on: {facts}")
    lot_id = facts["auction"]["lot"]
    a = journey.page("scrapyard@demo.market")
    b = journey.page("copper@demo.market")
    # B's computer clock is three hours fast; the countdown must not care.
    b.clock.set_system_time(datetime.now(UTC) + timedelta(hours=3))

    _open_lot(journey, a, lot_id)
    b_frames = _open_lot(journey, b, lot_id)
    for page in (a, b):
        expect(page.get_by_role("heading", level=1)).to_have_text(facts["auction"]["title"])
        expect(page.locator("#trading-title")).to_contain_text("竞价")
        expect(page.locator("#trading [data-field=current_price]").first).to_have_text("暂无出价")
        expect(page.locator("#trading [data-field=bid_count]")).to_have_text("0")
    a_unread = journey.unread(a)
    b.evaluate("window.__sameDocument = true")  # gone if B's page ever reloads

    # The countdown on B's page: what is left by the server's clock, not B's.
    closes_at = datetime.fromisoformat(
        b.locator("#trading time[data-field=closes_at]").get_attribute("datetime")
    )
    countdown = b.locator("#trading [data-countdown]")
    expect(countdown).to_have_text(re.compile(r"\d{2}:\d{2}:\d{2}$"))
    left = _countdown_seconds(countdown.inner_text())
    truly_left = (closes_at - datetime.now(UTC)).total_seconds()
    assert abs(left - truly_left) < 20, f"countdown {left} s, by the server's clock {truly_left:.0f} s"

    # A bids the minimum.
    minimum = money(a.locator("#trading .live-facts [data-field=minimum_next]").inner_text())
    increment = money(a.locator("#trading dt:text-is('加价幅度') + dd").inner_text())
    a.get_by_label("出价（元/").fill(str(minimum))
    a.get_by_role("button", name="出价", exact=True).click()
    expect(a.locator("[data-bid-status]")).to_have_text("出价成功。")
    expect(a.locator("[data-leading]")).to_have_text("您目前领先")
    expect(a.locator("#trading-you")).to_contain_text("第 1 名")
    journey.shot(a, "A-bid-leading")

    # B sees it without reloading: price, count, leader, next minimum and the history row.
    expect(b.locator("#trading [data-field=current_price]").first).to_have_text(yuan(minimum))
    expect(b.locator("#trading [data-field=bid_count]")).to_have_text("1")
    expect(b.locator("#trading [data-field=bidder_count]")).to_have_text("1")
    expect(b.locator("#trading [data-field=leader]")).to_have_text(re.compile(r"竞买人 ?A"))
    expect(b.locator("#trading .live-facts [data-field=minimum_next]")).to_have_text(
        yuan(minimum + increment)
    )
    expect(b.locator("[data-live-status]")).to_contain_text(f"新出价：{yuan(minimum)}")
    expect(b.locator("#bid-history tbody tr").first).to_contain_text(yuan(minimum))
    assert b.evaluate("window.__sameDocument") is True, "B's page reloaded"
    assert len(b_frames) >= 2, "the bid did not reach B over the websocket"
    journey.shot(b, "B-sees-A-bid-live")

    # B bids the new minimum with a hidden proxy maximum ten increments above.
    b_bid = minimum + increment
    b_max = b_bid + 10 * increment
    bid_with_proxy(b, b_bid, b_max)
    journey.shot(b, "B-proxy-bid-leading")

    # A's page, live: outbid, the new price, one more unread notification and its toast.
    expect(a.locator("[data-leading]")).to_have_text("您的出价已被超过")
    expect(a.locator("[data-bid-status]")).to_have_text("")  # "bid placed" went with the lead
    expect(a.locator("#trading [data-field=current_price]").first).to_have_text(yuan(b_bid))
    title = facts["auction"]["title"]
    journey.expect_unread_above(a, a_unread)
    expect(a.locator("[data-bell]")).to_have_attribute("aria-label", re.compile(r"^通知（\d+ 条未读）$"))
    expect(journey.toast(a, f"您在“{title}”的出价已被超过，当前价 {yuan(b_bid)}")).to_be_visible()
    journey.shot(a, "A-outbid-live")

    # A tries once more; B's proxy answers for B in the same moment.
    b_unread = journey.unread(b)
    a_again = b_bid + increment
    a.get_by_label("出价（元/").fill(str(a_again))
    a.get_by_role("button", name="出价", exact=True).click()
    expect(a.locator("[data-bid-status]")).to_have_text("出价成功。")
    expect(a.locator("[data-leading]")).to_have_text("您的出价已被超过")
    expect(a.locator("#trading [data-field=current_price]").first).to_have_text(yuan(a_again + increment))
    # (no new notice for A: its own bid's answer tells it; notices are for losing a lead)
    expect(b.locator("#trading [data-field=current_price]").first).to_have_text(yuan(a_again + increment))
    expect(b.locator("[data-leading]")).to_have_text("您目前领先")
    expect(b.locator("#bid-history tbody tr").first).to_contain_text("代理出价")
    journey.expect_unread_above(b, b_unread)
    expect(
        journey.toast(b, f"您在“{title}”的代理出价已自动加价至 {yuan(a_again + increment)}")
    ).to_be_visible()
    assert b.evaluate("window.__sameDocument") is True, "B's page reloaded"
    journey.shot(a, "A-outbid-by-proxy")
    journey.shot(b, "B-proxy-answered")

    # A reads the notifications behind the bell.
    a.locator("[data-bell]").click()
    expect(a.get_by_role("heading", level=1)).to_have_text("通知")
    expect(a.locator("main")).to_contain_text(f"您在“{facts['auction']['title']}”的出价已被超过")
    journey.shot(a, "A-notifications")


def test_a_recycler_pays_a_deposit_confirmed_by_the_operator_then_bids(journey):
    """An auction that asks for a deposit: the recycler asks to pay it by bank transfer, the operator
    confirms the transfer in the back office, the recycler hears of it and may bid."""
    lot = journey.server.facts["deposit_auction"]
    assert lot, journey.server.facts
    bidder = journey.page(lot["bidder"])
    bidder.goto(f"/lots/{lot['lot']}/")
    expect(bidder.get_by_role("heading", level=1)).to_have_text(lot["title"])
    deposit = bidder.locator("#trading-you .deposit")
    expect(deposit).to_contain_text("参与此交易须先缴纳保证金")
    expect(bidder.locator("form[data-bid-form]")).to_have_count(0)  # no bidding before the deposit
    amount = money(bidder.locator("#trading dt:text-is('保证金') + dd").inner_text())
    deposit.get_by_role("button", name="申请缴纳保证金（对公转账）").click()
    deposit = bidder.locator("#trading-you .deposit")
    expect(deposit).to_contain_text("待缴纳")
    expect(deposit).to_contain_text(yuan(amount))
    reference = deposit.locator("dd.mono").inner_text().strip()
    assert reference, "no transfer reference to quote"
    journey.shot(bidder, "deposit-requested")
    unread = journey.unread(bidder)

    # The operator finds the transfer by its reference and confirms it.
    operator = journey.page("operator@demo.market")
    operator.goto("/admin/trading/deposit/?status__exact=pending")
    row = operator.locator("#result_list tbody tr").filter(has_text=reference)
    expect(row).to_have_count(1)
    row.locator("input.action-select").check()
    operator.locator("select[name=action]").select_option(label="确认到账")
    operator.get_by_role("button", name="执行").click()
    expect(operator.locator(".messagelist")).to_contain_text("已确认 1 笔保证金到账。")
    journey.shot(operator, "admin-deposit-confirmed")

    # The recycler's open page hears of it; then it bids.
    journey.expect_unread_above(bidder, unread)
    expect(journey.toast(bidder, "已确认到账，可以出价了")).to_be_visible()
    bidder.reload()
    expect(bidder.locator("#trading-you .deposit")).to_contain_text("已缴纳")
    minimum = money(bidder.locator("#trading .live-facts [data-field=minimum_next]").inner_text())
    bidder.get_by_label("出价（元/").fill(str(minimum))
    bidder.get_by_role("button", name="出价", exact=True).click()
    expect(bidder.locator("[data-bid-status]")).to_have_text("出价成功。")
    expect(bidder.locator("[data-leading]")).to_have_text("您目前领先")
    expect(bidder.locator("#trading [data-field=current_price]").first).to_have_text(yuan(minimum))
    journey.shot(bidder, "deposit-paid-bid-leading")
