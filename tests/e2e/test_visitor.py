"""Journey 1: a visitor without an account browses the market, clicking through the site as a person
would: the home page with its live index ticker, a lot search with a filter, a lot, the index list, an
index with its chart, the methodology and the open data."""

import csv
import io
import re

from playwright.sync_api import expect


def test_a_visitor_browses_lots_indices_and_open_data(journey):
    page = journey.page()

    # Home: the hero and the live index ticker (its websocket opens).
    with page.expect_websocket(lambda ws: "/ws/indices/" in ws.url):
        page.goto("/")
    expect(page).to_have_title(re.compile("首页"))
    expect(page.get_by_role("heading", level=1)).to_have_text("再生资源和工业固体废物的在线交易市场")
    ticker = page.locator("#index-ticker")
    expect(ticker.get_by_role("heading", name="价格指数")).to_be_visible()
    expect(ticker.locator(".ticker-item").first).to_be_visible()
    expect(ticker.get_by_text("再生资源综合价格指数")).to_be_visible()
    expect(ticker.locator("[data-level]").first).to_have_text(re.compile(r"^\d[\d,]*\.\d{2}$"))
    journey.shot(page, "home")

    # Lot search, filtered by a category.
    page.get_by_role("navigation", name="主导航").get_by_role("link", name="货源大厅").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("货源大厅")
    results = page.locator("#results-title")
    expect(results).to_have_text(re.compile(r"共 [\d,]+ 个标的"))
    everything = _total(results.inner_text())
    page.get_by_label("品类").select_option(label="废有色金属")
    page.get_by_role("button", name="搜索", exact=True).click()
    expect(page).to_have_url(re.compile(r"category=nonferrous"))
    expect(page.locator(".chips")).to_contain_text("品类：废有色金属")
    expect(results).to_have_text(re.compile(r"共 [\d,]+ 个标的"))
    assert 0 < _total(results.inner_text()) < everything, (results.inner_text(), everything)
    cards = page.locator(".lot-card")
    expect(cards.first).to_be_visible()
    journey.shot(page, "lot-search-nonferrous")

    # A lot of the results that is on sale (other journeys may have listed lots with no sale yet).
    first = cards.filter(has=page.locator(".lot-mode")).first.locator(".lot-title a")
    title = first.inner_text()
    first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(title)
    expect(page.locator(".breadcrumb")).to_contain_text("废有色金属")
    trading = page.locator("#trading")
    expect(trading).to_be_visible()
    expect(trading.get_by_role("link", name="登录")).to_be_visible()  # a visitor is asked to log in
    journey.shot(page, "lot")

    # The index list and one index with its chart.
    page.get_by_role("navigation", name="主导航").get_by_role("link", name="价格指数").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("价格指数")
    table = page.locator("table.index-table").first
    expect(table.get_by_role("link", name="废钢铁综合价格指数")).to_be_visible()
    journey.shot(page, "index-list")
    table.get_by_role("link", name="废钢铁综合价格指数").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("废钢铁综合价格指数")
    expect(page.locator(".index-figure-value .index-level").first).to_have_text(
        re.compile(r"\d[\d,]*\.\d{2}")
    )
    chart = page.locator("[data-index-chart]")
    expect(chart.locator("canvas, svg").first).to_be_visible()  # ECharts drew it
    box = chart.bounding_box()
    assert box and box["width"] > 300 and box["height"] > 150, box
    journey.shot(page, "index-composite-ferrous")

    # The methodology, linked from the index list.
    page.get_by_role("navigation", name="主导航").get_by_role("link", name="价格指数").click()
    page.locator("main").get_by_role("link", name="编制方法", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("价格指数编制方法（规范）")
    expect(page.get_by_role("heading", name="2. 异常值规则")).to_be_visible()
    journey.shot(page, "methodology")

    # Open data, from the footer: the monthly table and its CSV.
    page.get_by_role("contentinfo").get_by_role("link", name="开放数据").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("开放数据")
    expect(page.locator("main table").first).to_contain_text("全国合计")
    journey.shot(page, "open-data")
    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile(r"下载 \d{4} 年 CSV")).click()
    rows = list(csv.reader(io.StringIO(download.value.path().read_text(encoding="utf-8-sig"))))
    assert len(rows) > 1 and rows[0], rows[:3]


def _total(heading: str) -> int:
    """共 1,234 个标的，第 1–20 个 -> 1234"""
    return int(re.search(r"共 ([\d,]+) 个标的", heading).group(1).replace(",", ""))
