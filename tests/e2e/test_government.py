"""Journey 3: a city government (唐山市商务局, gov.tangshan@) reads its dashboard, drills into a
category and a county, exports Excel, and cannot look outside its jurisdiction."""

import re

from openpyxl import load_workbook
from playwright.sync_api import expect


def test_a_city_government_reads_drills_into_and_exports_its_dashboard(journey):
    page = journey.page("gov.tangshan@demo.market")
    expect(page.locator(".acting")).to_contain_text("唐山市商务局")

    # The dashboard of the city, from the navigation.
    page.get_by_role("navigation", name="主导航").get_by_role("link", name="监管看板").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("政府监管看板")
    expect(page.locator("main")).to_contain_text("唐山市商务局 · 管辖区域：唐山市")
    crumbs = page.get_by_role("navigation", name="查看范围")
    expect(crumbs.locator("[aria-current=page]")).to_have_text("唐山市")
    expect(page.locator(".stat-cards")).to_contain_text("近12个月成交额")
    expect(page.locator("[data-stat-chart=chart-monthly] svg").first).to_be_visible()  # ECharts drew it
    categories = page.locator("section[aria-labelledby=categories-title]")
    expect(categories.get_by_role("heading", level=2)).to_have_text("按品类")
    journey.shot(page, "dashboard-city")

    # Drill into a category: the board is counted again for 废钢铁 in the same city.
    categories.locator("tbody").get_by_role("link", name="废钢铁", exact=True).click()
    expect(page).to_have_url(re.compile(r"category=ferrous"))
    expect(crumbs.locator("p").nth(1).locator("[aria-current=page]")).to_have_text("废钢铁")
    expect(categories.get_by_role("heading", level=2)).to_have_text("废钢铁：按下级品类")
    expect(categories.locator("tbody tr").first).to_be_visible()
    journey.shot(page, "dashboard-city-ferrous")

    # Drill into the county with trades, keeping the category.
    regions = page.locator("section[aria-labelledby=regions-title]")
    regions.locator("tbody").get_by_role("link", name="丰南区", exact=True).click()
    expect(page).to_have_url(re.compile(r"region=130207"))
    expect(page).to_have_url(re.compile(r"category=ferrous"))
    expect(crumbs.locator("p").first.locator("[aria-current=page]")).to_have_text("丰南区")
    expect(crumbs.locator("p").first.get_by_role("link", name="唐山市")).to_be_visible()
    cards = page.locator(".stat-cards")
    expect(cards).to_contain_text("近12个月成交额")
    assert not re.search(r"近12个月成交笔数\s*0\b", cards.inner_text()), cards.inner_text()
    journey.shot(page, "dashboard-county-ferrous")

    # Export Excel: a workbook with the rows of what is on screen.
    with page.expect_download() as download_info:
        page.get_by_role("link", name="导出 Excel").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".xlsx"), download.suggested_filename
    saved = journey.folder / download.suggested_filename  # kept beside the screenshots
    download.save_as(saved)
    workbook = load_workbook(saved, read_only=True)
    cells = []
    for sheet in workbook.worksheets:
        rows = [[c for c in row if c is not None] for row in sheet.iter_rows(values_only=True)]
        rows = [r for r in rows if r]
        assert rows, f"sheet {sheet.title} is empty"
        cells += [str(c) for r in rows for c in r]
    text = " ".join(cells)
    assert "丰南区" in text and "唐山市商务局" in text, text[:500]
    assert len(cells) > 20, cells

    # Another province is not its to read.
    page.goto("/dashboard/?region=320000")
    expect(page.get_by_role("heading", level=1)).to_have_text("无权查看该区域")
    journey.expect_console_error(r"status of 403 .*?/dashboard/\?region=320000", "the refusal page is a 403")
    journey.shot(page, "dashboard-other-province-refused")
