"""What the browser journeys share about amounts and the lot page's bid form."""

import re
from decimal import Decimal

from playwright.sync_api import expect


def yuan(amount: Decimal) -> str:
    """Decimal("43687") -> "¥43,687.00", as the pages print it."""
    return f"¥{Decimal(amount):,.2f}"


def money(text: str) -> Decimal:
    """ "¥43,687.00" -> Decimal("43687.00")"""
    found = re.search(r"¥\s*([\d,]+\.\d{2})", text)
    assert found, f"no amount in {text!r}"
    return Decimal(found.group(1).replace(",", ""))


def bid_with_proxy(page, amount: Decimal, maximum: Decimal) -> None:
    """Bid ``amount`` with a hidden proxy ``maximum`` on the open lot page; the page says the bid
    went through, that this bidder leads, and shows its maximum."""
    page.get_by_label("出价（元/").fill(str(amount))
    page.get_by_text("设置代理出价（选填）").click()
    page.get_by_label("代理出价上限").fill(str(maximum))
    page.get_by_role("button", name="出价", exact=True).click()
    expect(page.locator("[data-bid-status]")).to_have_text("出价成功。")
    expect(page.locator("[data-leading]")).to_have_text("您目前领先")
    expect(page.locator("#trading-you")).to_contain_text(f"您的代理上限{yuan(maximum)}")
