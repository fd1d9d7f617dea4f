"""Journey 5 (second half): a recycler signs up, registers its enterprise (a unified social credit
code with a valid check character) and uploads its hazardous-waste licence; the operator is told of
the new enterprise at once."""

import random
import re
import time
from datetime import date, timedelta

from PIL import Image
from playwright.sync_api import expect

from market.accounts.uscc import uscc_make


def test_a_recycler_signs_up_registers_its_enterprise_and_uploads_a_licence(journey):
    stamp = time.strftime("%H%M%S")
    email = f"e2e-{stamp}-{random.randrange(10**6)}@recycler.test"
    uscc = uscc_make("420115", f"{random.randrange(10**8):08d}3")  # 武汉市江夏区
    legal_name = f"武汉江城再生资源回收利用有限公司（端到端 {stamp}）"

    # The operator's open page, to hear of the new enterprise.
    operator = journey.page("operator@demo.market")
    unread = journey.unread(operator)

    # Sign up from the header.
    page = journey.page()
    page.goto("/")
    page.get_by_role("banner").get_by_role("link", name="免费注册").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("注册账户")
    page.get_by_label("邮箱").fill(email)
    page.get_by_label("姓名").fill("周建华")
    page.get_by_label("手机号").fill("13907150000")
    page.get_by_label(re.compile(r"^密码")).fill("Jiangcheng-Recycle-2026")
    page.get_by_label("确认密码").fill("Jiangcheng-Recycle-2026")
    page.get_by_role("button", name="注册", exact=True).click()
    expect(page.get_by_role("button", name="退出登录")).to_be_visible()
    expect(page.get_by_role("heading", name="您还没有加入任何单位")).to_be_visible()
    journey.shot(page, "signed-up")

    # Register the enterprise.
    page.locator("main").get_by_role("link", name="登记我的单位").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("登记单位")
    page.get_by_label("单位名称").fill(legal_name)
    page.get_by_label("简称").fill("江城再生")
    page.get_by_label("统一社会信用代码").fill(uscc)
    page.get_by_label("单位类型").select_option(label="回收利用单位")
    page.get_by_label("省份", exact=True).select_option(label="湖北省")
    page.get_by_label("城市", exact=True).select_option(label="武汉市")
    page.get_by_label("区县", exact=True).select_option(label="江夏区")
    page.get_by_label("详细地址").fill("武汉市江夏区郑店街道再生资源产业园 3 号")
    page.get_by_label("联系人").fill("周建华")
    page.get_by_label("联系电话").fill("027-87650000")
    page.get_by_label("单位简介").fill("废铅酸蓄电池、废矿物油的收集和贮存，年处理能力 5000 吨。")
    journey.shot(page, "organisation-form")
    page.get_by_role("button", name="提交审核").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(legal_name)
    expect(page.locator("section[aria-labelledby=verification-title]")).to_contain_text("待审核")
    expect(page.locator("main")).to_contain_text(uscc)

    # Upload the hazardous-waste licence with its scan.
    scan = journey.folder / "licence.png"
    journey.folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (1240, 1754), (250, 248, 240)).save(scan, "PNG")
    number = f"鄂环危许可〔2026〕{stamp}号"
    licences = page.locator("#licences")
    licences.get_by_label("资质类型").select_option(label="危险废物经营许可证")
    licences.get_by_label("证书编号").fill(number)
    licences.get_by_label("发证机关").fill("湖北省生态环境厅")
    licences.get_by_label("有效期起").fill(date.today().isoformat())
    licences.get_by_label("有效期至").fill((date.today() + timedelta(days=3 * 365)).isoformat())
    licences.get_by_label("经营危险废物类别").fill("HW08, HW31")
    licences.get_by_label("年经营规模（吨）").fill("5000")
    licences.get_by_label("证书扫描件").set_input_files(scan)
    licences.get_by_role("button", name="上传").click()
    row = page.locator("#licences tbody tr").filter(has_text=number)
    expect(row).to_contain_text("危险废物经营许可证")
    expect(row).to_contain_text("HW08")
    expect(row).to_contain_text("HW31")
    expect(row).to_contain_text("待审核")
    journey.shot(page, "licence-uploaded")

    # The scan is there for the members to download.
    with page.expect_download() as download:
        row.get_by_role("link", name="下载").click()
    assert download.value.path().read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # The operator hears of the new enterprise, live.
    journey.expect_unread_above(operator, unread)
    expect(journey.toast(operator, f"新单位待审核：{legal_name}")).to_be_visible()
    journey.shot(operator, "operator-told")
