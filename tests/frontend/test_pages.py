"""The foundation pages: home, sign-up, login and lock-out, password reset, organisations, members,
licences, invitations, the acting organisation, error pages and CSRF."""

import io
import re
from datetime import timedelta

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from market.accounts import services
from market.accounts.middleware import SESSION_KEY
from market.accounts.models import (
    GovernmentOffice,
    GovernmentOfficer,
    Licence,
    MemberRole,
    Membership,
    Organisation,
    User,
    VerificationStatus,
)
from market.accounts.uscc import uscc_make
from tests.factories import COUNTY_TANGSHAN, PASSWORD

pytestmark = pytest.mark.django_db

SETLANG_FORM = 'action="/i18n/setlang/"'


def html(response) -> str:
    return response.content.decode()


def png_upload(name="licence.png") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 12), (20, 120, 60)).save(buffer, "PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


def licence_data(document, **overrides) -> dict:
    today = timezone.localdate()
    data = {
        "kind": "hazardous_waste",
        "number": "冀危废经第1302030001号",
        "issuer": "河北省生态环境厅",
        "valid_from": (today - timedelta(days=30)).isoformat(),
        "valid_to": (today + timedelta(days=365)).isoformat(),
        "hw_codes": "HW08, HW49",
        "annual_capacity_t": "5000",
        "document": document,
    }
    data.update(overrides)
    return data


def government_user(user_factory, jurisdiction="130200"):
    user = user_factory(full_name="政府用户")
    office = GovernmentOffice.objects.create(name="唐山市商务局", jurisdiction_id=jurisdiction)
    GovernmentOfficer.objects.create(user=user, office=office)
    return user


# --- home and languages ---------------------------------------------------------------------


def test_home_renders_chinese_by_default(client):
    response = client.get("/")
    assert response.status_code == 200
    page = html(response)
    assert '<html lang="zh-hans">' in page
    assert "再生资源交易市场" in page
    assert "工业固体废物" in page
    assert SETLANG_FORM in page
    # No index is published yet: no ticker at all, never a fake one (test_index_pages has the real one).
    assert 'id="index-ticker"' not in page


def test_language_switch_to_english_and_back(client):
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    assert response.status_code == 302
    page = html(client.get("/"))
    assert '<html lang="en">' in page
    assert SETLANG_FORM in page
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    assert '<html lang="zh-hans">' in html(client.get("/"))


def test_language_switcher_on_every_page(client, user_factory, org_factory):
    user = user_factory()
    org = org_factory(admin=user)
    anonymous_pages = [
        "/",
        "/login/",
        "/signup/",
        "/password-reset/",
        f"/organisations/{org.pk}/",
        "/no-such-page/",
    ]
    for url in anonymous_pages:
        assert SETLANG_FORM in html(client.get(url)), url
    client.force_login(user)
    for url in [
        "/",
        "/organisations/",
        "/organisations/new/",
        f"/organisations/{org.pk}/",
        f"/organisations/{org.pk}/edit/",
    ]:
        response = client.get(url)
        assert response.status_code == 200, url
        assert SETLANG_FORM in html(response), url


def test_home_signed_in_lists_organisations_and_invitations(client, user_factory, org_factory):
    user = user_factory(email="member@market.test")
    org_factory(admin=user, name="唐山钢铁集团有限公司", status=VerificationStatus.PENDING)
    other_admin = user_factory()
    other = org_factory(admin=other_admin, name="苏州再生资源有限公司")
    services.member_invite(actor=other_admin, organisation=other, email=user.email, role=MemberRole.TRADER)
    client.force_login(user)
    page = html(client.get("/"))
    assert "唐山钢铁集团有限公司" in page
    assert 'class="badge badge-pending"' in page
    assert "待接受的邀请" in page and "苏州再生资源有限公司" in page


def test_home_signed_in_without_organisation_shows_empty_state(client, user_factory):
    client.force_login(user_factory())
    page = html(client.get("/"))
    assert "您还没有加入任何单位" in page
    assert reverse("frontend:organisation_register") in page


# --- sign-up, login, lock-out, logout, password reset ---------------------------------------


def signup_data(**overrides):
    data = {
        "email": "new.trader@market.test",
        "full_name": "李四",
        "phone": "13800000000",
        "password1": PASSWORD,
        "password2": PASSWORD,
    }
    data.update(overrides)
    return data


def test_signup_creates_user_and_logs_in(client):
    response = client.post("/signup/", signup_data())
    assert response.status_code == 302
    user = User.objects.get(email="new.trader@market.test")
    assert user.full_name == "李四" and user.phone == "13800000000"
    assert client.session["_auth_user_id"] == str(user.pk)
    assert "李四" in html(client.get("/"))


def test_signup_duplicate_email_shows_field_error(client, user_factory):
    user_factory(email="taken@market.test")
    response = client.post("/signup/", signup_data(email="Taken@market.test"))
    assert response.status_code == 400
    page = html(response)
    assert 'id="id_email_error"' in page
    assert "该邮箱已注册" in page
    assert 'aria-invalid="true"' in page
    assert User.objects.filter(email__iexact="taken@market.test").count() == 1


def test_signup_password_mismatch_and_weak_password(client):
    page = html(client.post("/signup/", signup_data(password2="something-else-2026")))
    assert "两次输入的密码不一致" in page
    response = client.post("/signup/", signup_data(password1="12345678", password2="12345678"))
    assert response.status_code == 400
    assert 'id="id_password1_error"' in html(response)
    assert not User.objects.filter(email="new.trader@market.test").exists()


@override_settings(RATE_LIMITS={"login": "20/m", "signup": "2/h"})
def test_signup_rate_limited(client):
    for n in range(2):
        client.post("/signup/", signup_data(email=f"bad{n}@market.test", password2="x"))
    response = client.post("/signup/", signup_data())
    assert response.status_code == 429
    assert "操作过于频繁" in html(response)
    assert not User.objects.filter(email="new.trader@market.test").exists()


def test_login_works(client, user_factory):
    user = user_factory(email="login@market.test")
    response = client.post("/login/", {"username": "LOGIN@market.test", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == reverse("frontend:home")
    assert client.session["_auth_user_id"] == str(user.pk)


def test_login_wrong_password_shows_error(client, user_factory):
    user_factory(email="login@market.test")
    response = client.post("/login/", {"username": "login@market.test", "password": "wrong-password"})
    assert response.status_code == 400
    assert "邮箱或密码不正确" in html(response)


def test_five_wrong_passwords_lock_out(client, user_factory):
    user_factory(email="victim@market.test")
    statuses = [
        client.post("/login/", {"username": "victim@market.test", "password": f"wrong-{n}"}).status_code
        for n in range(5)
    ]
    assert statuses[:4] == [400, 400, 400, 400]
    response = client.post("/login/", {"username": "victim@market.test", "password": PASSWORD})
    assert response.status_code == 429
    page = html(response)
    assert "登录失败次数过多" in page
    assert SETLANG_FORM in page
    assert "_auth_user_id" not in client.session


# An hourly window: django-ratelimit windows are aligned to the clock, so a per-minute one could
# reset in the middle of the test.
@override_settings(RATE_LIMITS={"login": "3/h", "signup": "10/h"})
def test_login_rate_limited(client, user_factory):
    user_factory(email="login@market.test")
    for _n in range(3):
        client.post("/login/", {"username": "someone@market.test", "password": "x"})
    response = client.post("/login/", {"username": "login@market.test", "password": PASSWORD})
    assert response.status_code == 429
    assert "操作过于频繁" in html(response)


def test_logout_is_post_only(client, user_factory):
    client.force_login(user_factory())
    assert client.get("/logout/").status_code == 405
    assert client.post("/logout/").status_code == 302
    assert "_auth_user_id" not in client.session


def test_password_reset_flow(client, user_factory):
    user = user_factory(email="forgot@market.test")
    response = client.post("/password-reset/", {"email": "forgot@market.test"})
    assert response.status_code == 302
    assert response["Location"] == reverse("frontend:password_reset_done")
    assert len(mail.outbox) == 1
    link = re.search(r"http://testserver(/password-reset/\S+/)", mail.outbox[0].body).group(1)
    response = client.get(link, follow=True)
    assert response.status_code == 200
    assert 'name="new_password1"' in html(response)
    set_url = response.redirect_chain[-1][0]
    new_password = "Another-Scrap-Market-2027!"
    response = client.post(set_url, {"new_password1": new_password, "new_password2": new_password})
    assert response.status_code == 302
    assert response["Location"] == reverse("frontend:password_reset_complete")
    user.refresh_from_db()
    assert user.check_password(new_password)


# --- organisations --------------------------------------------------------------------------


def organisation_data(**overrides):
    data = {
        "legal_name": "唐山市路北区再生资源回收有限公司",
        "short_name": "路北再生",
        "uscc": uscc_make(COUNTY_TANGSHAN, "123456789"),
        "role": "recycler",
        "region": COUNTY_TANGSHAN,
        "address": "唐山市路北区建设北路100号",
        "contact_name": "王五",
        "contact_phone": "0315-2345678",
        "contact_email": "contact@lubei.test",
        "description": "废钢、废有色金属回收加工。",
    }
    data.update(overrides)
    return data


def test_organisation_register_bad_uscc_shows_field_error(client, user_factory):
    client.force_login(user_factory())
    good = uscc_make(COUNTY_TANGSHAN, "123456789")
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    response = client.post("/organisations/new/", organisation_data(uscc=bad))
    assert response.status_code == 400
    page = html(response)
    assert 'id="id_uscc_error"' in page
    assert "校验位不正确" in page
    assert not Organisation.objects.exists()


def test_organisation_register_unknown_region_shows_field_error(client, user_factory):
    client.force_login(user_factory())
    response = client.post("/organisations/new/", organisation_data(region="999999"))
    assert response.status_code == 400
    page = html(response)
    assert 'id="id_region_error"' in page
    assert "行政区划代码不存在" in page


def test_organisation_register_creates_pending_org_with_admin(client, user_factory):
    user = user_factory()
    client.force_login(user)
    response = client.post("/organisations/new/", organisation_data())
    org = Organisation.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("frontend:organisation", args=[org.pk])
    assert org.status == VerificationStatus.PENDING
    assert Membership.objects.get(user=user, organisation=org).role == MemberRole.ADMIN
    assert client.session[SESSION_KEY] == org.pk
    page = html(client.get(response["Location"]))
    assert "待审核" in page
    assert "河北省唐山市路北区" in page
    # The header shows the acting organisation with its verification badge.
    header = page.split('<main id="main"')[0]
    assert "路北再生" in header and 'class="badge badge-pending"' in header


def test_organisation_register_needs_login(client):
    response = client.get("/organisations/new/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("frontend:login"))


def test_profile_public_part_for_anonymous_and_hidden_pending(client, org_factory, user_factory):
    org = org_factory(admin=user_factory(), name="公开的钢铁公司")
    page = html(client.get(f"/organisations/{org.pk}/"))
    assert "公开的钢铁公司" in page and "河北省唐山市路北区" in page
    assert "登记信息与联系方式" not in page and org.uscc not in page
    pending = org_factory(status=VerificationStatus.PENDING)
    response = client.get(f"/organisations/{pending.pk}/")
    assert response.status_code == 404
    assert "页面不存在" in html(response)


def add_licence(org, admin, **overrides):
    return services.licence_add(
        actor=admin,
        organisation=org,
        kind="hazardous_waste",
        number=overrides.pop("number", "冀危废1302030001"),
        issuer="河北省生态环境厅",
        valid_from=timezone.localdate() - timedelta(days=10),
        valid_to=timezone.localdate() + timedelta(days=300),
        document=png_upload(),
        hw_codes=["HW08"],
        annual_capacity_t=1000,
        **overrides,
    )


def test_other_member_sees_no_private_part_and_404_on_document(client, user_factory, org_factory):
    outsider = user_factory()
    org_factory(admin=outsider)
    owner = user_factory()
    org = org_factory(admin=owner, role="recycler")
    licence = add_licence(org, owner)
    client.force_login(outsider)
    page = html(client.get(f"/organisations/{org.pk}/"))
    assert "登记信息与联系方式" not in page
    assert org.uscc not in page
    assert f"/licences/{licence.pk}/document/" not in page
    assert client.get(f"/organisations/{org.pk}/licences/{licence.pk}/document/").status_code == 404
    client.logout()
    assert client.get(f"/organisations/{org.pk}/licences/{licence.pk}/document/").status_code == 404


def test_member_downloads_licence_document(client, user_factory, org_factory):
    owner = user_factory()
    org = org_factory(admin=owner, role="recycler")
    licence = add_licence(org, owner)
    client.force_login(owner)
    page = html(client.get(f"/organisations/{org.pk}/"))
    assert "登记信息与联系方式" in page and org.uscc in page
    response = client.get(f"/organisations/{org.pk}/licences/{licence.pk}/document/")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"].startswith("attachment")
    assert b"".join(response.streaming_content).startswith(b"\x89PNG")


def test_viewer_sees_no_upload_form_and_gets_403(client, user_factory, org_factory):
    org = org_factory(admin=user_factory(), role="recycler")
    viewer = user_factory()
    Membership.objects.create(user=viewer, organisation=org, role=MemberRole.VIEWER)
    client.force_login(viewer)
    page = html(client.get(f"/organisations/{org.pk}/"))
    assert "登记信息与联系方式" in page
    assert reverse("frontend:licence_add", args=[org.pk]) not in page
    assert reverse("frontend:member_invite", args=[org.pk]) not in page
    response = client.post(reverse("frontend:licence_add", args=[org.pk]), licence_data(png_upload()))
    assert response.status_code == 403
    assert "查看者不能办理业务" in html(response)
    assert not Licence.objects.exists()


def test_government_user_reads_private_part_without_forms(client, user_factory, org_factory):
    org = org_factory(admin=user_factory(), status=VerificationStatus.PENDING)
    official = government_user(user_factory)
    client.force_login(official)
    response = client.get(f"/organisations/{org.pk}/")
    assert response.status_code == 200
    page = html(response)
    assert "登记信息与联系方式" in page and "只读" in page
    assert f'action="/organisations/{org.pk}/' not in page
    assert "enctype" not in page
    response = client.post(reverse("frontend:licence_add", args=[org.pk]), licence_data(png_upload()))
    assert response.status_code == 403
    assert client.get("/organisations/new/").status_code == 403


def test_licence_upload_png_works(client, user_factory, org_factory):
    admin = user_factory()
    org = org_factory(admin=admin, role="recycler")
    client.force_login(admin)
    page = html(client.get(f"/organisations/{org.pk}/"))
    assert "还没有上传资质证书" in page and "危险废物经营许可证" in page
    response = client.post(reverse("frontend:licence_add", args=[org.pk]), licence_data(png_upload()))
    assert response.status_code == 302
    licence = Licence.objects.get()
    assert licence.document_type == "image/png"
    assert licence.hw_codes == ["HW08", "HW49"]
    assert licence.status == "pending"
    page = html(client.get(response["Location"]))
    assert "资质证书已上传" in page and "冀危废经第1302030001号" in page


def test_licence_upload_text_renamed_pdf_refused(client, user_factory, org_factory):
    admin = user_factory()
    org = org_factory(admin=admin, role="recycler")
    client.force_login(admin)
    fake = SimpleUploadedFile(
        "licence.pdf", "这不是 PDF 文件。\n".encode() * 20, content_type="application/pdf"
    )
    response = client.post(reverse("frontend:licence_add", args=[org.pk]), licence_data(fake))
    assert response.status_code == 400
    page = html(response)
    assert 'id="id_document_error"' in page
    assert "文件类型不受支持" in page
    assert not Licence.objects.exists()


def test_licence_form_missing_hw_codes_shows_service_error(client, user_factory, org_factory):
    admin = user_factory()
    org = org_factory(admin=admin, role="recycler")
    client.force_login(admin)
    response = client.post(
        reverse("frontend:licence_add", args=[org.pk]), licence_data(png_upload(), hw_codes="")
    )
    assert response.status_code == 400
    page = html(response)
    assert 'id="id_hw_codes_error"' in page and "HW08" in page


def test_audit_trail_for_admin_only(client, user_factory, org_factory):
    admin = user_factory()
    client.force_login(admin)
    client.post("/organisations/new/", organisation_data())
    org = Organisation.objects.get()
    page = html(client.get(f"/organisations/{org.pk}/"))
    assert "操作记录" in page and "登记单位" in page
    trader = user_factory()
    Membership.objects.create(user=trader, organisation=org, role=MemberRole.TRADER)
    client.force_login(trader)
    assert "操作记录" not in html(client.get(f"/organisations/{org.pk}/"))


def test_operator_sees_everything_read_only(client, operator, user_factory, org_factory):
    org = org_factory(admin=user_factory(), status=VerificationStatus.PENDING)
    client.force_login(operator)
    page = html(client.get(f"/organisations/{org.pk}/"))
    assert "登记信息与联系方式" in page and "操作记录" in page
    assert reverse("admin:accounts_organisation_change", args=[org.pk]) in page
    assert reverse("frontend:licence_add", args=[org.pk]) not in page
    assert "/admin/accounts/organisation/" in html(client.get("/organisations/"))


def test_edit_by_admin_sends_verified_org_back_to_review(client, user_factory, org_factory):
    admin = user_factory()
    org = org_factory(admin=admin)
    client.force_login(admin)
    response = client.get(f"/organisations/{org.pk}/edit/")
    assert response.status_code == 200
    assert f'value="{org.legal_name}"' in html(response)
    data = organisation_data(legal_name="改名后的有限公司")
    del data["uscc"]
    response = client.post(f"/organisations/{org.pk}/edit/", data, follow=True)
    org.refresh_from_db()
    assert org.legal_name == "改名后的有限公司"
    assert org.status == VerificationStatus.PENDING
    assert "需要平台重新审核" in html(response)


def test_edit_forbidden_for_trader(client, user_factory, org_factory):
    org = org_factory(admin=user_factory())
    trader = user_factory()
    Membership.objects.create(user=trader, organisation=org, role=MemberRole.TRADER)
    client.force_login(trader)
    response = client.get(f"/organisations/{org.pk}/edit/")
    assert response.status_code == 403
    assert "只有本单位的管理员可以执行此操作" in html(response)


def test_organisation_list_empty_state(client, user_factory):
    client.force_login(user_factory())
    page = html(client.get("/organisations/"))
    assert "您还没有加入任何单位" in page


# --- members and invitations ----------------------------------------------------------------


def test_invite_accept_flow(client, user_factory, org_factory):
    admin = user_factory()
    org = org_factory(admin=admin)
    client.force_login(admin)
    response = client.post(
        reverse("frontend:member_invite", args=[org.pk]), {"email": "Colleague@market.test", "role": "trader"}
    )
    assert response.status_code == 302
    invitation = org.invitations.get()
    assert "colleague@market.test" in html(client.get(f"/organisations/{org.pk}/"))

    colleague = user_factory(email="colleague@market.test")
    client.force_login(colleague)
    url = reverse("frontend:invitation_accept", args=[invitation.token])
    page = html(client.get(url))
    assert org.legal_name in page and "接受邀请" in page
    response = client.post(url)
    assert response.status_code == 302
    assert Membership.objects.get(user=colleague, organisation=org).role == MemberRole.TRADER
    assert client.session[SESSION_KEY] == org.pk
    # A second try: the link is used up.
    response = client.post(url)
    assert response.status_code == 400
    assert "邀请链接无效或已过期" in html(response)


def test_invitation_for_someone_else_is_403(client, user_factory, org_factory):
    admin = user_factory()
    org = org_factory(admin=admin)
    invitation = services.member_invite(actor=admin, organisation=org, email="a@market.test", role="viewer")
    client.force_login(user_factory(email="b@market.test"))
    url = reverse("frontend:invitation_accept", args=[invitation.token])
    assert "请使用受邀邮箱登录后接受" in html(client.get(url))
    response = client.post(url)
    assert response.status_code == 403
    assert "a@market.test" in html(response)


def test_invitation_needs_login(client, user_factory, org_factory):
    admin = user_factory()
    org = org_factory(admin=admin)
    invitation = services.member_invite(actor=admin, organisation=org, email="a@market.test", role="viewer")
    response = client.get(reverse("frontend:invitation_accept", args=[invitation.token]))
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_invite_existing_member_shows_field_error(client, user_factory, org_factory):
    admin = user_factory(email="boss@market.test")
    org = org_factory(admin=admin)
    client.force_login(admin)
    response = client.post(
        reverse("frontend:member_invite", args=[org.pk]), {"email": admin.email, "role": "trader"}
    )
    assert response.status_code == 400
    page = html(response)
    assert 'id="id_email_error"' in page and "此人已是本单位成员" in page


def test_revoke_invitation(client, user_factory, org_factory):
    admin = user_factory()
    org = org_factory(admin=admin)
    invitation = services.member_invite(actor=admin, organisation=org, email="x@market.test", role="viewer")
    client.force_login(admin)
    response = client.post(reverse("frontend:invitation_revoke", args=[org.pk, invitation.pk]))
    assert response.status_code == 302
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None


def test_role_change_and_last_admin_guard(client, user_factory, org_factory):
    admin = user_factory()
    org = org_factory(admin=admin)
    trader = Membership.objects.create(user=user_factory(), organisation=org, role=MemberRole.TRADER)
    client.force_login(admin)
    client.post(reverse("frontend:member_role_change", args=[org.pk, trader.pk]), {"role": "viewer"})
    trader.refresh_from_db()
    assert trader.role == MemberRole.VIEWER
    own = Membership.objects.get(user=admin, organisation=org)
    response = client.post(
        reverse("frontend:member_role_change", args=[org.pk, own.pk]), {"role": "viewer"}, follow=True
    )
    assert "单位至少需要一名管理员" in html(response)
    own.refresh_from_db()
    assert own.role == MemberRole.ADMIN


def test_member_removal_by_admin_and_forbidden_for_trader(client, user_factory, org_factory):
    admin = user_factory()
    org = org_factory(admin=admin)
    trader = Membership.objects.create(user=user_factory(), organisation=org, role=MemberRole.TRADER)
    viewer = Membership.objects.create(user=user_factory(), organisation=org, role=MemberRole.VIEWER)
    client.force_login(trader.user)
    assert client.post(reverse("frontend:member_remove", args=[org.pk, viewer.pk])).status_code == 403
    client.force_login(admin)
    assert client.post(reverse("frontend:member_remove", args=[org.pk, viewer.pk])).status_code == 302
    assert not Membership.objects.filter(pk=viewer.pk).exists()


# --- acting organisation, errors, CSRF ------------------------------------------------------


def test_acting_organisation_switch(client, user_factory, org_factory):
    user = user_factory()
    first = org_factory(admin=user, name="第一单位有限公司")
    second = org_factory(admin=user, name="第二单位有限公司")
    stranger = org_factory(admin=user_factory())
    client.force_login(user)
    page = html(client.get("/"))
    assert 'name="organisation"' in page and reverse("frontend:acting_switch") in page
    response = client.post("/acting/", {"organisation": second.pk, "next": "/organisations/"})
    assert response.status_code == 302 and response["Location"] == "/organisations/"
    assert client.session[SESSION_KEY] == second.pk
    assert client.post("/acting/", {"organisation": stranger.pk}).status_code == 403
    assert client.session[SESSION_KEY] == second.pk
    # An unsafe next is ignored.
    response = client.post("/acting/", {"organisation": first.pk, "next": "https://evil.example/"})
    assert response["Location"] == reverse("frontend:home")


def test_404_page(client):
    response = client.get("/organisations/999999/")
    assert response.status_code == 404
    assert "页面不存在" in html(response)


def test_csrf_is_enforced(user_factory, org_factory):
    user = user_factory()
    org = org_factory(admin=user)
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(user)
    response = csrf_client.post("/acting/", {"organisation": org.pk})
    assert response.status_code == 403
    assert "页面已过期" in html(response)
    response = csrf_client.post("/signup/", signup_data())
    assert response.status_code == 403


def test_operator_home_points_to_review_queue(client, operator):
    client.force_login(operator)
    page = html(client.get("/"))
    assert "待审核的单位" in page
    assert "您还没有加入任何单位" not in page


def test_static_bundle_is_referenced_not_cdn(client):
    page = html(client.get("/"))
    assert "/static/frontend/build/app.js" in page
    assert "/static/frontend/css/market.css" in page
    assert "cdn" not in page.lower()


def test_500_page_renders_without_a_request():
    from django.template.loader import render_to_string

    page = render_to_string("500.html")
    assert "服务器出了点问题" in page and "market.css" in page
