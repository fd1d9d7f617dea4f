"""The listings pages: drafting a lot with spec fields, its lifecycle and media, the search hall
with facets and saved searches, my lots, wanted listings and offers."""

import io
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from listings.models import Category, Lot, LotMedia, LotStatus, SavedSearch, WantedListing, WantedOffer
from market.accounts.models import MemberRole, VerificationStatus
from tests.factories import COUNTY_SUZHOU, COUNTY_TANGSHAN, make_member, make_organisation, make_user

pytestmark = pytest.mark.django_db

SCHEMA = [
    {
        "key": "fe_pct",
        "label": "铁含量",
        "label_en": "Fe content",
        "type": "number",
        "unit": "%",
        "min": 0,
        "max": 100,
        "required": True,
    },
    {
        "key": "thickness_mm",
        "label": "厚度",
        "label_en": "Thickness",
        "type": "number",
        "unit": "mm",
        "min": 0,
        "max": 500,
    },
    {
        "key": "grade",
        "label": "等级",
        "label_en": "Grade",
        "type": "choice",
        "choices": [["a", "一级"], ["b", "二级", "Grade B"]],
    },
    {"key": "oily", "label": "含油", "label_en": "Oily", "type": "bool"},
]


def html(response) -> str:
    return response.content.decode()


def png(size=(80, 60)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (90, 90, 100)).save(buffer, format="PNG")
    return buffer.getvalue()


def index(*lots) -> None:
    """What the after-commit task does (tests run inside a transaction that never commits)."""
    from listings.search import get_backend

    get_backend().index_lots([lot.pk for lot in lots])


@pytest.fixture
def categories(db):
    root = Category.objects.create(
        code="zz", name="测试废钢", name_en="Test ferrous", tonnes_per_unit=1, spec_schema=SCHEMA
    )
    scrap = Category.objects.create(
        code="zz.scrap", parent=root, name="测试重废", name_en="Test heavy scrap", tonnes_per_unit=1
    )
    oil = Category.objects.create(
        code="zz.oil", parent=root, name="测试废矿物油", name_en="Test waste oil", tonnes_per_unit=1,
        hazardous=True, hw_code="HW08", spec_schema=[{"key": "fe_pct", "label": "铁含量", "type": "number", "min": 0, "max": 100}],
    )  # fmt: skip
    tv = Category.objects.create(
        code="zz.tv", parent=root, name="测试电视机", name_en="Test TV sets", unit="piece"
    )
    return {"root": root, "scrap": scrap, "oil": oil, "tv": tv}


@pytest.fixture
def seller(db):
    admin = make_user(full_name="卖方管理员")
    org = make_organisation(role="generator", admin=admin, name="唐山测试钢铁有限公司")
    return org, admin


@pytest.fixture
def recycler(db):
    admin = make_user(full_name="买方管理员")
    org = make_organisation(
        role="recycler", admin=admin, region=COUNTY_SUZHOU, name="苏州测试再生资源有限公司"
    )
    return org, admin


def lot_form(**overrides) -> dict:
    today = timezone.localdate()
    data = {
        "category": "zz.scrap",
        "title": "转炉车间重型废钢 500 吨",
        "quantity": "500",
        "unit": "t",
        "spec_fe_pct": "98.5",
        "spec_thickness_mm": "8",
        "spec_grade": "b",
        "spec_oily": "false",
        "region": COUNTY_TANGSHAN,
        "address": "唐山市路北区钢铁路8号",
        "available_from": today.isoformat(),
        "pickup_by": (today + timedelta(days=30)).isoformat(),
        "packaging": "bulk",
        "description": "厚度 6 mm 以上，无封闭容器。",
    }
    data.update(overrides)
    return data


def lot_make(org, admin, *, publish=True, **overrides) -> Lot:
    from listings import services

    today = timezone.localdate()
    values = {
        "category": "zz.scrap",
        "title": "重型废钢 300 吨",
        "quantity": "300",
        "unit": "t",
        "specs": {"fe_pct": "97"},
        "region": COUNTY_TANGSHAN,
        "address": "钢铁路8号",
        "available_from": today,
        "pickup_by": today + timedelta(days=20),
    }
    values.update(overrides)
    lot = services.lot_create(actor=admin, organisation=org, **values)
    if publish:
        lot = services.lot_submit(actor=admin, lot=lot)
        if lot.status != LotStatus.PUBLISHED:
            operator = make_user(is_staff=True)
            lot = services.lot_publish(actor=operator, lot=lot)
        index(lot)
    return lot


# --- drafting a lot -------------------------------------------------------------------------


def test_spec_fields_partial_renders_the_categorys_schema(client, categories):
    response = client.get("/lots/spec-fields/", {"category": "zz.scrap", "spec_fe_pct": "91"})
    assert response.status_code == 200
    page = html(response)
    # Inherited from the parent: every field of the effective schema, named spec_<key>.
    fe = re.search(r'<input[^>]*name="spec_fe_pct"[^>]*>', page).group(0)
    assert 'type="number"' in fe and 'min="0"' in fe and 'max="100"' in fe and 'value="91"' in fe
    assert 'aria-required="true"' in fe
    assert 'name="spec_thickness_mm"' in page and ">mm<" in page and ">%<" in page
    assert re.search(r'<select[^>]*name="spec_grade"', page) and "二级" in page
    assert re.search(r'<select[^>]*name="spec_oily"', page)
    assert "铁含量" in page and "范围 0–100 %" in page
    # The unit of the category is swapped in out of band.
    assert 'id="lot-unit"' in page and 'hx-swap-oob="true"' in page and 'name="unit" value="t"' in page

    page = html(client.get("/lots/spec-fields/", {"category": "zz.tv"}))
    assert 'name="spec_fe_pct"' in page and 'name="unit" value="piece"' in page and "件" in page
    page = html(client.get("/lots/spec-fields/", {"category": "nope"}))
    assert "spec_" not in page and "选择品类后" in page


def test_spec_labels_follow_the_language(client, categories):
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    page = html(client.get("/lots/spec-fields/", {"category": "zz.scrap"}))
    assert "Fe content" in page and "Grade B" in page


def test_lot_form_shows_spec_errors_then_creates_a_draft(client, categories, seller):
    org, admin = seller
    client.force_login(admin)
    response = client.get("/lots/new/?category=zz.scrap")
    assert response.status_code == 200
    page = html(response)
    assert 'hx-get="/lots/spec-fields/"' in page
    assert 'name="spec_fe_pct"' in page
    assert '<optgroup label="测试废钢">' in page and "测试重废" in page
    assert 'value="zz"' not in page  # only leaf categories can be listed

    response = client.post("/lots/new/", lot_form(spec_fe_pct="120"))
    assert response.status_code == 400
    page = html(response)
    assert re.search(r'<input[^>]*name="spec_fe_pct"[^>]*aria-invalid="true"', page)
    assert "铁含量 不能大于 100 %。" in page
    response = client.post("/lots/new/", lot_form(spec_fe_pct=""))
    assert response.status_code == 400 and "请填写 铁含量。" in html(response)
    assert not Lot.objects.exists()

    response = client.post("/lots/new/", lot_form())
    assert response.status_code == 302
    lot = Lot.objects.get()
    assert response["Location"] == f"/lots/{lot.pk}/#media"
    assert lot.status == LotStatus.DRAFT and lot.seller == org
    assert lot.specs == {"fe_pct": "98.5", "thickness_mm": "8", "grade": "b", "oily": False}

    page = html(client.get(f"/lots/{lot.pk}/"))
    assert "badge-draft" in page and "提交审核" in page
    assert "铁含量" in page and "98.5" in page and "二级" in page
    assert "交易方式（竞价、招标、一口价或询价）和价格将在挂牌交易时公布。" in page
    assert f'data-upload-url="/api/v1/lots/{lot.pk}/media/"' in page


def test_lot_form_unit_must_match_the_category(client, categories, seller):
    org, admin = seller
    client.force_login(admin)
    response = client.post("/lots/new/", lot_form(category="zz.tv", unit="t"))
    assert response.status_code == 400
    page = html(response)
    # Shown beside the quantity, and the unit of the chosen category is now offered.
    assert re.search(r'<input[^>]*name="quantity"[^>]*aria-invalid="true"', page)
    assert "“测试电视机”以“件”计量。" in page
    assert 'name="unit" value="piece"' in page
    assert client.post("/lots/new/", lot_form(category="zz.tv", unit="piece")).status_code == 302


def test_lot_form_refresh_without_javascript_rerenders_spec_fields(client, categories, seller):
    org, admin = seller
    client.force_login(admin)
    response = client.post("/lots/new/", {**lot_form(category="zz.oil"), "refresh": "1"})
    assert response.status_code == 200
    page = html(response)
    # The oil's own fe_pct (optional) replaces the inherited required one.
    fe = re.search(r'<input[^>]*name="spec_fe_pct"[^>]*>', page).group(0)
    assert "aria-required" not in fe and 'name="unit" value="t"' in page
    assert not Lot.objects.exists()


def test_only_a_sellers_traders_may_draft(client, categories, seller, recycler):
    org, admin = seller
    client.force_login(recycler[1])
    response = client.get("/lots/new/")
    assert response.status_code == 403 and "求购" in html(response)
    viewer = make_member(org, MemberRole.VIEWER).user
    client.force_login(viewer)
    assert client.get("/lots/new/").status_code == 403
    client.logout()
    assert client.get("/lots/new/").status_code == 302  # to the login page


def test_edit_a_draft(client, categories, seller):
    org, admin = seller
    lot = lot_make(org, admin, publish=False)
    client.force_login(admin)
    page = html(client.get(f"/lots/{lot.pk}/edit/"))
    assert 'value="重型废钢 300 吨"' in page and 'value="300"' in page and 'value="97"' in page
    response = client.post(f"/lots/{lot.pk}/edit/", lot_form(title="重型废钢 280 吨", quantity="280"))
    assert response.status_code == 302
    lot.refresh_from_db()
    assert (lot.title, lot.quantity) == ("重型废钢 280 吨", 280)
    response = client.post(f"/lots/{lot.pk}/edit/", lot_form(spec_thickness_mm="900"))
    assert response.status_code == 400 and "厚度 不能大于 500 mm。" in html(response)


# --- lifecycle, visibility, search, my lots -------------------------------------------------


def test_submit_publishes_and_the_lot_appears_in_search_and_my_lots(client, categories, seller):
    org, admin = seller
    client.force_login(admin)
    client.post("/lots/new/", lot_form())
    lot = Lot.objects.get()
    page = html(client.get("/my/lots/"))
    assert "badge badge-draft" in page and "补充照片后提交审核" in page

    response = client.post(f"/lots/{lot.pk}/submit/", follow=True)
    assert response.status_code == 200
    lot.refresh_from_db()
    assert lot.status == LotStatus.PUBLISHED
    assert "标的已挂牌" in html(response)
    index(lot)

    page = html(client.get("/my/lots/"))
    assert "badge badge-published" in page and "挂牌中" in page
    assert 'href="?status=published"' in page
    assert "转炉车间重型废钢" not in html(client.get("/my/lots/?status=draft"))

    client.logout()
    page = html(client.get("/lots/"))
    assert "转炉车间重型废钢 500 吨" in page and f'href="/lots/{lot.pk}/"' in page
    assert "唐山测试钢铁有限公司" in page and "badge-verified" in page
    assert "500 吨" in page and "河北省唐山市路北区" in page
    page = html(client.get("/lots/", {"q": "重型废钢"}))
    assert "转炉车间重型废钢 500 吨" in page
    page = html(client.get("/lots/", {"q": "电解铜"}))
    assert "转炉车间重型废钢" not in page and "没有符合条件的标的" in page and "去掉“关键词：电解铜”" in page


def test_a_draft_is_404_for_other_organisations(client, categories, seller, recycler):
    org, admin = seller
    lot = lot_make(org, admin, publish=False)
    client.force_login(recycler[1])
    assert client.get(f"/lots/{lot.pk}/").status_code == 404
    assert client.get(f"/lots/{lot.pk}/edit/").status_code == 404
    assert client.post(f"/lots/{lot.pk}/submit/").status_code == 404
    client.logout()
    assert client.get(f"/lots/{lot.pk}/").status_code == 404
    colleague = make_member(org, MemberRole.VIEWER).user
    client.force_login(colleague)
    page = html(client.get(f"/lots/{lot.pk}/"))
    # A viewer sees the status, not the actions.
    assert "挂牌状态" in page and f'action="/lots/{lot.pk}/submit/"' not in page and "撤回标的" not in page


def test_hazardous_lot_waits_for_review_and_shows_the_licence_notice(client, categories, seller, recycler):
    org, admin = seller
    client.force_login(admin)
    client.post("/lots/new/", lot_form(category="zz.oil", spec_grade="", spec_oily="", spec_thickness_mm=""))
    lot = Lot.objects.get()
    client.post(f"/lots/{lot.pk}/submit/")
    lot.refresh_from_db()
    assert lot.status == LotStatus.SUBMITTED
    page = html(client.get(f"/lots/{lot.pk}/"))
    assert "badge-submitted" in page and "等待平台审核" in page
    assert "危险废物经营许可证" in page and "HW08" in page
    assert "等待平台审核" in html(client.get("/my/lots/"))


def test_withdraw_with_a_reason(client, categories, seller):
    org, admin = seller
    lot = lot_make(org, admin)
    client.force_login(admin)
    response = client.post(f"/lots/{lot.pk}/withdraw/", {"reason": "货物已另行处置"}, follow=True)
    assert "标的已撤回" in html(response)
    lot.refresh_from_db()
    assert (lot.status, lot.status_reason) == (LotStatus.WITHDRAWN, "货物已另行处置")
    page = html(client.get(f"/lots/{lot.pk}/"))
    assert "badge-withdrawn" in page and "货物已另行处置" in page and "撤回标的" not in page


def test_media_upload_without_javascript_and_removal(client, categories, seller):
    org, admin = seller
    lot = lot_make(org, admin, publish=False)
    client.force_login(admin)
    upload = SimpleUploadedFile("现场.png", png(), content_type="image/png")
    response = client.post(f"/lots/{lot.pk}/media/", {"kind": "photo", "file": upload})
    assert response.status_code == 302 and response["Location"] == f"/lots/{lot.pk}/#media"
    media = LotMedia.objects.get()
    page = html(client.get(f"/lots/{lot.pk}/"))
    assert f'src="/api/v1/lots/{lot.pk}/media/{media.pk}/file/?thumbnail=1"' in page
    assert f'href="/api/v1/lots/{lot.pk}/media/{media.pk}/file/"' in page
    partial = html(client.get(f"/lots/{lot.pk}/media/list/"))
    assert partial.lstrip().startswith('<div id="lot-media"') and f"/media/{media.pk}/file/" in partial

    fake = SimpleUploadedFile("photo.jpg", b"%PDF-1.4 not a photo\n%%EOF\n")
    response = client.post(f"/lots/{lot.pk}/media/", {"kind": "photo", "file": fake})
    assert response.status_code == 400
    assert re.search(r"photo\.jpg：", html(response))
    assert LotMedia.objects.count() == 1

    response = client.post(f"/lots/{lot.pk}/media/{media.pk}/remove/")
    assert response.status_code == 302 and not LotMedia.objects.exists()


def test_search_results_show_thumbnail_price_and_countdown(client, categories, seller):
    org, admin = seller
    lot = lot_make(org, admin, publish=False)
    from listings import services

    services.lot_media_add(actor=admin, lot=lot, file=SimpleUploadedFile("a.png", png()))
    lot = lot_make(org, admin, publish=False, title="另一批重废")
    services.lot_media_add(actor=admin, lot=lot, file=SimpleUploadedFile("b.png", png()))
    lot = services.lot_submit(actor=admin, lot=lot)
    closes = timezone.now() + timedelta(hours=5)
    Lot.objects.filter(pk=lot.pk).update(trade_mode="auction", current_price="2450.00", closes_at=closes)
    index(lot)
    page = html(client.get("/lots/"))
    media = lot.media.get()
    assert f"/api/v1/lots/{lot.pk}/media/{media.pk}/file/?thumbnail=1" in page
    assert "¥2,450.00" in page and "竞价" in page
    assert f'data-deadline="{int(closes.timestamp())}"' in page
    assert "重型废钢 300 吨" not in page  # the draft is not found


def test_search_with_bad_parameters_shows_errors_not_500(client, categories):
    response = client.get("/lots/", {"qmin": "abc", "region": "999999", "page": "0"})
    assert response.status_code == 400
    page = html(response)
    assert "请输入数字。" in page and "行政区划代码不存在。" in page and "页码：数值超出范围。" in page
    assert re.search(r'<input[^>]*name="qmin"[^>]*aria-invalid="true"', page)
    assert "搜索条件有误" in page
    assert client.get("/lots/", {"sort": "cheapest"}).status_code == 400
    assert client.get("/lots/", {"qmin": "10", "qmax": "5"}).status_code == 400


def _links(page: str) -> dict[str, str]:
    """Link text -> href inside the facets."""
    facets = page[page.index('class="facets"') : page.index('class="results"')]
    return {
        text.strip(): href.replace("&amp;", "&")
        for href, text in re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', facets)
    }


def test_facets_link_to_the_filtered_search(client, categories, seller):
    org, admin = seller
    hebei = lot_make(org, admin, title="河北重废")
    other_admin = make_user()
    other = make_organisation(role="generator", admin=other_admin, region=COUNTY_SUZHOU)
    jiangsu = lot_make(
        other,
        other_admin,
        title="江苏电视机",
        category="zz.tv",
        unit="piece",
        quantity="40",
        region=COUNTY_SUZHOU,
        specs={"fe_pct": "10"},
    )

    page = html(client.get("/lots/", {"q": "", "sort": "newest"}))
    links = _links(page)
    assert "河北省" in links and "江苏省" in links and "测试废钢" in links
    href = links["河北省"]
    assert parse_qs(urlsplit(href).query) == {"region": ["130000"], "sort": ["newest"]}
    page = html(client.get(href))
    assert "河北重废" in page and "江苏电视机" not in page
    # The active filter is a chip that removes it.
    assert 'href="/lots/?sort=newest"' in page

    # Under a chosen category the facet goes one level down.
    page = html(client.get(links["测试废钢"]))
    links = _links(page)
    assert "测试重废" in links and "测试电视机" in links
    page = html(client.get(links["测试电视机"]))
    assert "江苏电视机" in page and "河北重废" not in page
    assert hebei.pk != jiangsu.pk


def test_pagination_keeps_the_parameters(client, categories, seller):
    org, admin = seller
    for n in range(3):
        lot_make(org, admin, title=f"重废第{n}批")
    page = html(client.get("/lots/", {"page_size": "2", "category": "zz"}))
    assert 'rel="next"' in page
    href = re.search(r'<a href="([^"]+)" rel="next"', page).group(1).replace("&amp;", "&")
    assert parse_qs(urlsplit(href).query) == {"category": ["zz"], "page_size": ["2"], "page": ["2"]}
    page = html(client.get(href))
    assert 'aria-current="page">2<' in page and 'rel="prev"' in page
    # The hidden page size survives a new search from the form.
    assert '<input type="hidden" name="page_size" value="2">' in page


def test_saved_search_can_be_saved_run_and_deleted(client, categories, recycler):
    org, admin = recycler
    client.force_login(admin)
    page = html(client.get("/lots/", {"q": "废钢", "region": "130000"}))
    assert 'action="/my/searches/new/"' in page
    query = (
        re.search(r'<input type="hidden" name="query" value="([^"]*)"', page).group(1).replace("&amp;", "&")
    )
    assert parse_qs(query) == {"q": ["废钢"], "region": ["130000"]}

    response = client.post("/my/searches/new/", {"name": "", "query": query, "alerts": "on"})
    assert response.status_code == 400 and "请为搜索命名" in html(response) or "必填" in html(response)
    response = client.post("/my/searches/new/", {"name": "河北废钢", "query": query, "alerts": "on"})
    assert response.status_code == 302 and response["Location"] == "/my/searches/"
    saved = SavedSearch.objects.get()
    assert (saved.name, saved.query, saved.alerts, saved.organisation) == (
        "河北废钢",
        {"q": "废钢", "region": "130000"},
        True,
        org,
    )

    page = html(client.get("/my/searches/"))
    assert "河北废钢" in page and "河北省" in page
    link = re.search(r'<a href="(/lots/\?[^"]+)">河北废钢</a>', page).group(1).replace("&amp;", "&")
    assert parse_qs(urlsplit(link).query) == {"q": ["废钢"], "region": ["130000"]}
    assert client.get(link).status_code == 200

    stranger = make_user()
    make_organisation(admin=stranger)
    client.force_login(stranger)
    assert client.post(f"/my/searches/{saved.pk}/delete/").status_code == 404
    client.force_login(admin)
    response = client.post(f"/my/searches/{saved.pk}/delete/")
    assert response.status_code == 302 and not SavedSearch.objects.exists()
    assert "还没有保存的搜索" in html(client.get("/my/searches/"))


def test_saved_search_with_bad_query_is_refused(client, categories, recycler):
    client.force_login(recycler[1])
    response = client.post("/my/searches/new/", {"name": "坏条件", "query": "qmin=abc"})
    assert response.status_code == 400 and "请输入数字。" in html(response)
    assert not SavedSearch.objects.exists()


def test_empty_my_lots_links_to_new_lot(client, seller):
    client.force_login(seller[1])
    page = html(client.get("/my/lots/"))
    assert "还没有挂牌的标的" in page and 'href="/lots/new/"' in page


def test_nav_links(client, seller):
    page = html(client.get("/"))
    assert 'href="/lots/"' in page and 'href="/wanted/"' in page and 'href="/my/lots/"' not in page
    client.force_login(seller[1])
    page = html(client.get("/lots/"))
    assert 'href="/my/lots/"' in page
    assert re.search(r'<a href="/lots/" aria-current="page">货源大厅</a>', page)


# --- wanted listings and offers -------------------------------------------------------------


def wanted_form(**overrides) -> dict:
    data = {
        "category": "zz.scrap",
        "title": "求购重型废钢 1000 吨",
        "quantity": "1000",
        "unit": "t",
        "region": "130000",
        "price_min": "2300",
        "price_max": "2500",
        "deadline": (timezone.localtime() + timedelta(days=5)).strftime("%Y-%m-%dT%H:%M"),
        "description": "要求铁含量 97% 以上。",
    }
    data.update(overrides)
    return data


def test_recycler_posts_wanted_and_a_seller_offers(client, categories, seller, recycler):
    buyer_org, buyer = recycler
    seller_org, seller_admin = seller
    client.force_login(seller_admin)
    assert client.get("/wanted/new/").status_code == 403  # generators offer, recyclers post

    client.force_login(buyer)
    assert client.get("/wanted/new/").status_code == 200
    response = client.post("/wanted/new/", wanted_form(price_min="2600"))
    assert response.status_code == 400 and "最高价不能低于最低价。" in html(response)
    response = client.post("/wanted/new/", wanted_form())
    assert response.status_code == 302
    wanted = WantedListing.objects.get()
    assert response["Location"] == f"/wanted/{wanted.pk}/"
    assert (wanted.buyer, wanted.region_id) == (buyer_org, "130000")

    page = html(client.get("/wanted/"))
    assert "求购重型废钢 1000 吨" in page and "¥2,300.00–¥2,500.00" in page
    assert "提交报价" not in page  # the buyer cannot offer
    assert "求购重型废钢" not in html(client.get("/wanted/", {"region": "320000"}))
    assert "求购重型废钢" in html(client.get("/wanted/", {"category": "zz"}))
    assert client.get("/wanted/", {"region": "999999"}).status_code == 400

    client.force_login(seller_admin)
    page = html(client.get("/wanted/"))
    assert f'action="/wanted/{wanted.pk}/offers/"' in page and "提交报价" in page
    response = client.post(f"/wanted/{wanted.pk}/offers/", {"quantity": "500", "unit_price": "0"})
    assert response.status_code == 400 and "价格必须大于零。" in html(response)
    response = client.post(
        f"/wanted/{wanted.pk}/offers/", {"quantity": "500", "unit_price": "2450", "message": "可立即装车"}
    )
    assert response.status_code == 302
    offer = WantedOffer.objects.get()
    assert (offer.seller, offer.unit_price) == (seller_org, 2450)
    page = html(client.get(f"/wanted/{wanted.pk}/"))
    assert "您已报价" in page and "¥2,450.00" in page
    response = client.post(f"/wanted/{wanted.pk}/offers/", {"quantity": "100", "unit_price": "2400"})
    assert response.status_code == 400 and "您已对该求购信息报价" in html(response)

    other_admin = make_user()
    make_organisation(role="generator", admin=other_admin)
    client.force_login(other_admin)
    page = html(client.get(f"/wanted/{wanted.pk}/"))
    assert "可立即装车" not in page and "提交报价" in page

    client.force_login(buyer)
    page = html(client.get(f"/wanted/{wanted.pk}/"))
    assert "收到的报价（1）" in page and "可立即装车" in page and seller_org.display_name in page
    response = client.post(f"/wanted/{wanted.pk}/withdraw/", follow=True)
    assert "求购信息已撤回" in html(response)
    wanted.refresh_from_db()
    assert wanted.status == "withdrawn"
    assert "求购重型废钢" not in html(client.get("/wanted/"))


def test_unverified_buyer_sees_why_it_cannot_post(client, categories):
    admin = make_user()
    make_organisation(role="recycler", admin=admin, status=VerificationStatus.PENDING)
    client.force_login(admin)
    assert "通过平台认证后才能发布求购信息" in html(client.get("/wanted/new/"))
    response = client.post("/wanted/new/", wanted_form())
    assert response.status_code == 400 and "通过平台认证后才能发布求购信息" in html(response)


def test_search_page_queries_do_not_grow_with_results(
    client, categories, seller, django_assert_max_num_queries
):
    from listings import services

    org, admin = seller
    lots = [lot_make(org, admin, publish=False, title=f"重废第{n}批") for n in range(2)]
    for lot in lots:
        services.lot_media_add(actor=admin, lot=lot, file=SimpleUploadedFile("a.png", png()))
        services.lot_submit(actor=admin, lot=lot)
    index(*lots)
    client.get("/lots/")  # warm per-process caches
    with django_assert_max_num_queries(12) as few:
        assert client.get("/lots/").status_code == 200
    baseline = len(few.captured_queries)  # read now: the next request resets the query log
    more = [lot_make(org, admin, title=f"重废追加{n}批") for n in range(6)]
    assert len(more) == 6
    client.get("/lots/")  # new lots void the cached facet counts: warm them again, as before
    with django_assert_max_num_queries(baseline):
        assert client.get("/lots/").status_code == 200
