"""Journeys 4 and 5: the platform's operator at work, and a generator listing a lot.

A battery maker (恒源电池, battery@) drafts a hazardous lot with a photo and submits it; the operator
(operator@) approves it in the back office while the maker watches its lot page, whose bell rings
live; the lot is then in the market. The operator verifies the enterprise awaiting verification
(武汉江夏新材料, whose member watches the news arrive) and settles the demo's weight dispute on the
deal's page. The back office (/admin/) is used where there is no front-end page.
"""

import re
import time

from PIL import Image
from playwright.sync_api import expect


def _admin_action(page, row_text: str, action: str) -> None:
    """Tick the changelist row that shows ``row_text``, choose ``action`` and run it."""
    row = page.locator("#result_list tbody tr").filter(has_text=row_text)
    expect(row).to_have_count(1)
    row.locator("input.action-select").check()
    page.locator("select[name=action]").select_option(label=action)
    page.get_by_role("button", name="执行").click()


def test_a_generator_lists_a_hazardous_lot_with_a_photo_and_an_operator_approves_it(journey):
    seller = journey.page("battery@demo.market")
    title = f"废铅酸蓄电池 36 吨 · 端到端 {time.strftime('%H%M%S')}"

    # The draft, through the form (the spec fields follow the category).
    seller.get_by_role("navigation", name="主导航").get_by_role("link", name="我的挂牌").click()
    expect(seller.get_by_role("heading", level=1)).to_have_text("我的挂牌")
    seller.locator("main").get_by_role("link", name="发布标的").click()
    expect(seller.get_by_role("heading", level=1)).to_have_text("发布标的")
    seller.get_by_label("品类").select_option(label="废铅酸蓄电池")
    seller.get_by_label("已倒酸").select_option(label="是")  # appears with the category
    seller.get_by_label("铅含量").fill("62")
    seller.get_by_label("标题").fill(title)
    seller.get_by_label("数量").fill("36")
    seller.get_by_label("包装方式").select_option(index=1)
    seller.get_by_label("提货地址").fill("安徽省界首市田营循环经济工业区 8 号仓库")
    seller.get_by_label("描述").fill("汽车启动用铅酸蓄电池，已倒酸，托盘打包，厂内叉车装车。")
    journey.shot(seller, "lot-form-filled")
    seller.get_by_role("button", name="保存草稿").click()
    expect(seller.get_by_role("heading", level=1)).to_contain_text(title)
    owner = seller.locator(".owner-panel")
    expect(owner).to_contain_text("草稿")
    expect(seller.locator(".hazardous-notice")).to_contain_text("危险废物")

    # A photo of the goods, uploaded from the lot's page.
    photo = journey.folder / "photo.jpg"
    journey.folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (800, 600), (96, 112, 104)).save(photo, "JPEG", quality=80)
    seller.get_by_label("类型").select_option(label="现场照片")
    seller.get_by_label("选择文件").set_input_files(photo)
    seller.locator("[data-uploader]").get_by_role("button", name="上传").click()
    expect(seller.get_by_role("img", name=f"{title} 现场照片 1")).to_be_visible()
    seller.get_by_role("button", name="提交审核").click()
    expect(owner).to_contain_text("待审核")
    expect(owner).to_contain_text("等待平台审核")
    journey.shot(seller, "lot-submitted")
    unread = journey.unread(seller)

    # The operator approves it in the back office.
    operator = journey.page("operator@demo.market")
    operator.get_by_role("navigation", name="主导航").get_by_role("link", name="运营后台").click()
    expect(operator).to_have_url(re.compile(r"/admin/$"))
    operator.goto("/admin/listings/lot/?status__exact=submitted")
    _admin_action(operator, title, "审核通过并挂牌所选标的")
    expect(operator.locator(".messagelist")).to_contain_text("1")
    expect(operator.locator("#changelist")).not_to_contain_text(title)  # no longer awaiting review
    journey.shot(operator, "admin-lot-approved")

    # The seller's open page hears of it at once; reloaded, the lot is on the market.
    journey.expect_unread_above(seller, unread)
    expect(journey.toast(seller, f"标的“{title}”已通过审核并挂牌")).to_be_visible()
    journey.shot(seller, "lot-approved-live")
    seller.reload()
    expect(owner).to_contain_text("已挂牌")
    expect(seller.get_by_role("img", name=f"{title} 现场照片 1")).to_be_visible()

    # Anyone finds it in the lot search, with its photo. The search index follows a published lot
    # through the worker, after the commit: search again until it is there, as a person would.
    visitor = journey.page()
    visitor.goto("/lots/")
    visitor.get_by_label("关键词").fill(title.split(" · ")[1])
    card = visitor.locator(".lot-card").filter(has_text=title)
    deadline = time.monotonic() + 30
    while True:
        visitor.get_by_role("button", name="搜索", exact=True).click()
        try:
            expect(card).to_have_count(1, timeout=2_000)
            break
        except AssertionError:
            if time.monotonic() > deadline:
                raise
    expect(card.locator(".badge-hazardous")).to_contain_text("危险废物")
    expect(card.locator("img")).to_be_visible()
    journey.shot(visitor, "lot-found-in-search")


def test_an_operator_verifies_an_organisation_and_settles_a_weight_dispute(journey):
    facts = journey.server.facts
    assert facts["pending_org"] and facts["dispute"], facts
    org = facts["pending_org"]

    # The new enterprise's admin watches its organisation page.
    member = journey.page("wuhan@demo.market")
    member.goto(f"/organisations/{org['id']}/")
    expect(member.get_by_role("heading", level=1)).to_contain_text(org["name"])
    expect(member.locator("main")).to_contain_text("待审核")
    unread = journey.unread(member)

    # The operator verifies it from the home page's shortcut.
    operator = journey.page("operator@demo.market")
    operator.goto("/")
    operator.get_by_role("link", name="待审核的单位").click()
    expect(operator).to_have_url(re.compile(r"/admin/accounts/organisation/\?status__exact=pending"))
    journey.shot(operator, "admin-pending-organisations")
    _admin_action(operator, org["name"], "认证通过所选单位")
    expect(operator.locator(".messagelist")).to_contain_text("已处理 1 项。")
    expect(operator.locator("#changelist")).not_to_contain_text(org["name"])
    journey.shot(operator, "admin-organisation-verified")

    journey.expect_unread_above(member, unread)
    member.reload()
    expect(member.locator("main")).to_contain_text("已认证")
    journey.shot(member, "organisation-verified")

    # The disputed deal: listed in the back office, settled on the deal's page.
    deal = facts["dispute"]
    operator.goto("/admin/deals/deal/?status__exact=disputed")
    expect(operator.locator("#result_list")).to_contain_text(deal["number"])
    operator.goto(f"/deals/{deal['id']}/")
    expect(operator.get_by_role("heading", level=1)).to_contain_text("争议处理中")
    expect(operator.locator("main")).to_contain_text("请平台核对两张磅单")
    form = operator.locator("#resolve-form")
    form.get_by_label("按裁定净重结算").check()
    form.get_by_label("裁定净重（吨）").fill("4962")
    form.get_by_label("裁定不利方").select_option(label="买方")
    form.get_by_label("裁定理由").fill("调取双方地磅记录与视频，卖方磅单可信，按 4,962 吨结算。")
    journey.shot(operator, "deal-dispute-resolution")
    form.get_by_role("button", name="提交裁定").click()
    expect(operator.locator(".messages, .messagelist, [role=status]").first).to_contain_text("争议已裁定")
    expect(operator.get_by_role("heading", level=1)).to_contain_text("已结算")
    expect(operator.locator("main")).to_contain_text("平台已裁定")
    expect(operator.locator("main")).to_contain_text("4,962.000")
    amounts = operator.locator("section[aria-labelledby=amounts-title]")
    expect(amounts).to_contain_text("¥421,770.00")  # 4,962 t at ¥85.00
    expect(operator.locator("main")).to_contain_text("¥3,230.00")  # the difference, refunded
    journey.shot(operator, "deal-dispute-resolved")


def test_an_operator_publishes_an_index_correction(journey):
    """A trade behind a published value was found wrong and voided (the probe's set-up: no page
    voids an imported trade); the operator opens the value's page, follows "发布更正", gives the
    reason, confirms and publishes; the index page then shows the correction beside the first value."""
    correction = journey.server.facts["correction"]
    assert correction, journey.server.facts
    day, code, name = correction["day"], correction["series"], correction["name"]

    visitor = journey.page()
    visitor.goto(f"/indices/{code}/")
    expect(visitor.get_by_role("heading", level=1)).to_have_text(name)
    row = visitor.locator("table.index-values tbody tr").filter(has_text=day)
    expect(row).to_have_count(1)
    level, first = row.locator("td[data-label=指数]"), row.locator("td[data-label=首次发布]")
    published = level.inner_text().strip()
    never_corrected = first.inner_text().strip() == "—"  # (a kept database may hold earlier runs')
    notices = visitor.locator("section.index-corrections li")
    before = notices.count()
    journey.shot(visitor, "index-before-correction")

    # A visitor's value page offers no correction; the operator's does.
    visitor.goto(f"/indices/{code}/{day}/")
    expect(visitor.get_by_role("link", name="发布更正")).to_have_count(0)
    operator = journey.page("operator@demo.market")
    operator.goto(f"/indices/{code}/")
    operator.locator("table.index-values tbody tr").filter(has_text=day).get_by_role(
        "link", name="成交明细"
    ).click()
    expect(operator).to_have_url(re.compile(rf"/indices/{re.escape(code)}/{day}/$"))
    operator.get_by_role("link", name="发布更正").click()
    expect(operator.get_by_role("heading", level=1)).to_have_text(f"发布更正：{day}")
    expect(operator.locator("main")).to_contain_text(published)  # the value as it stands
    expect(operator.locator("main")).to_contain_text("更正期限")

    # Without a reason or the confirmation, nothing is published.
    journey.expect_console_error(
        rf"status of 400 .*?/indices/{re.escape(code)}/{day}/correct/", "a form with errors answers 400"
    )
    form = operator.locator("#correction-form")
    form.get_by_role("button", name="发布更正").click()
    expect(form.get_by_role("alert")).to_contain_text("提交的内容有误")
    expect(form).to_contain_text("请填写更正原因")
    expect(form).to_contain_text("请勾选确认后再发布更正")
    journey.shot(operator, "correction-form-errors")

    reason = "一笔成交单价录入有误，已撤销；按规范重新计算当日指数。"
    form.get_by_label("更正原因").fill(reason)
    form.get_by_label(re.compile("我已核对")).check()
    journey.shot(operator, "correction-form-filled")
    form.get_by_role("button", name="发布更正").click()
    expect(operator).to_have_url(re.compile(rf"/indices/{re.escape(code)}/$"))
    expect(operator.locator(".messages [role=status]").first).to_contain_text(f"已发布 {day} 的")
    expect(operator.get_by_role("heading", name="更正公告")).to_be_visible()
    journey.shot(operator, "correction-published")

    visitor.goto(f"/indices/{code}/")
    expect(visitor.get_by_role("heading", name="更正公告")).to_be_visible()
    expect(notices).to_have_count(before + 1)
    notice = notices.filter(has_text=f"由 {published} 更正为")
    expect(notice).to_contain_text(f"{day} 的指数已更正")
    expect(notice).to_contain_text(reason)
    expect(level).not_to_have_text(published)
    if never_corrected:
        expect(first).to_have_text(published)  # the value as first published, beside the corrected one
    journey.shot(visitor, "index-corrected")
