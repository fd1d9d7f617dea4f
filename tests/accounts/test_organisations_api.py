"""Organisations, members and decisions through /api/v1/, as the people involved would use it."""

import pytest
from django.core import mail

from market.accounts.models import (
    GovernmentOffice,
    GovernmentOfficer,
    Invitation,
    MemberRole,
    Membership,
    Organisation,
    VerificationStatus,
)
from market.accounts.uscc import uscc_make
from market.core.models import AuditEntry
from tests.factories import COUNTY_SUZHOU, COUNTY_TANGSHAN, make_member, make_organisation, make_user

pytestmark = pytest.mark.django_db


def _register_payload(**overrides):
    payload = {
        "legal_name": "唐山钢渣综合利用有限公司",
        "uscc": uscc_make(COUNTY_TANGSHAN, "MA0A1B2C3"),
        "region": COUNTY_TANGSHAN,
        "address": "唐山市路北区钢铁路8号",
        "contact_name": "李工",
        "contact_phone": "0315-2345678",
        "role": "generator",
    }
    payload.update(overrides)
    return payload


def test_register_makes_a_pending_organisation_with_the_caller_as_admin(api):
    user = make_user()
    api.force_authenticate(user)
    response = api.post("/api/v1/organisations/", _register_payload(), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "pending"
    assert body["my_role"] == "admin"
    assert body["region_name"].endswith("路北区")
    org = Organisation.objects.get(pk=body["id"])
    assert Membership.objects.get(organisation=org).user == user
    assert AuditEntry.objects.filter(action="organisation.register", target_id=str(org.pk)).exists()


def test_wrong_uscc_is_a_field_error_with_code(api):
    api.force_authenticate(make_user())
    good = _register_payload()["uscc"]
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    response = api.post("/api/v1/organisations/", _register_payload(uscc=bad), format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert body["fields"]["uscc"][0]["code"] == "uscc_checksum"
    assert "校验位" in body["fields"]["uscc"][0]["message"]


def test_one_code_registers_one_organisation(api):
    api.force_authenticate(make_user())
    assert api.post("/api/v1/organisations/", _register_payload(), format="json").status_code == 201
    api.force_authenticate(make_user())
    response = api.post("/api/v1/organisations/", _register_payload(legal_name="另一家"), format="json")
    assert response.status_code == 400
    assert response.json()["fields"]["uscc"][0]["code"] == "uscc_taken"


def test_region_must_be_a_county(api):
    api.force_authenticate(make_user())
    response = api.post("/api/v1/organisations/", _register_payload(region="130200"), format="json")
    assert response.status_code == 400
    assert response.json()["fields"]["region"][0]["code"] == "region_not_county"


def test_anonymous_cannot_register(api):
    assert api.post("/api/v1/organisations/", _register_payload(), format="json").status_code in (401, 403)


def test_public_list_shows_only_verified_organisations(api):
    verified = make_organisation(status=VerificationStatus.VERIFIED)
    pending = make_organisation(status=VerificationStatus.PENDING)
    ids = {o["id"] for o in api.get("/api/v1/organisations/").json()["results"]}
    assert verified.pk in ids
    assert pending.pk not in ids
    assert api.get(f"/api/v1/organisations/{pending.pk}/").status_code == 404


def test_other_members_see_only_the_public_profile_and_no_private_lists(api):
    owner = make_user()
    org = make_organisation(admin=owner)
    stranger = make_user()
    make_organisation(admin=stranger)
    api.force_authenticate(stranger)
    body = api.get(f"/api/v1/organisations/{org.pk}/").json()
    assert "contact_phone" not in body and "legal_name" in body
    for path in ("members", "invitations", "licences"):
        response = api.get(f"/api/v1/organisations/{org.pk}/{path}/")
        assert response.status_code == 403, path
        assert response.json()["code"] == "permission_denied"
    assert api.patch(f"/api/v1/organisations/{org.pk}/", {"address": "x"}, format="json").status_code == 403
    assert (
        api.post(
            f"/api/v1/organisations/{org.pk}/members/", {"email": "a@b.cn", "role": "trader"}
        ).status_code
        == 403
    )
    org.refresh_from_db()
    assert org.address != "x"


def test_member_sees_private_profile_and_admin_edits_it(api):
    admin = make_user()
    org = make_organisation(admin=admin)
    api.force_authenticate(admin)
    body = api.get(f"/api/v1/organisations/{org.pk}/").json()
    assert body["contact_phone"] == org.contact_phone
    response = api.patch(f"/api/v1/organisations/{org.pk}/", {"contact_phone": "0315-7654321"}, format="json")
    assert response.status_code == 200
    assert response.json()["contact_phone"] == "0315-7654321"
    assert response.json()["status"] == "verified"  # contact details do not need re-verification


def test_changing_the_legal_name_sends_a_verified_organisation_back_to_verification(api):
    admin = make_user()
    org = make_organisation(admin=admin)
    api.force_authenticate(admin)
    response = api.patch(f"/api/v1/organisations/{org.pk}/", {"legal_name": "新名称有限公司"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "pending"


def test_uscc_cannot_be_changed(api):
    admin = make_user()
    org = make_organisation(admin=admin)
    api.force_authenticate(admin)
    response = api.patch(
        f"/api/v1/organisations/{org.pk}/", {"uscc": uscc_make(COUNTY_SUZHOU, "000000001")}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "read_only"


def test_viewer_cannot_act(api):
    org = make_organisation(admin=make_user())
    viewer = make_member(org, MemberRole.VIEWER).user
    api.force_authenticate(viewer)
    assert api.get(f"/api/v1/organisations/{org.pk}/members/").status_code == 200
    assert api.patch(f"/api/v1/organisations/{org.pk}/", {"address": "x"}, format="json").status_code == 403
    assert (
        api.post(
            f"/api/v1/organisations/{org.pk}/members/", {"email": "a@b.cn", "role": "viewer"}
        ).status_code
        == 403
    )
    response = api.post(f"/api/v1/organisations/{org.pk}/licences/", {"kind": "renewable_record"})
    assert response.status_code == 403
    assert "查看者" in response.json()["message"]


def test_government_user_reads_its_jurisdiction_and_changes_nothing(api):
    office = GovernmentOffice.objects.create(name="唐山市商务局", jurisdiction_id="130200")
    official = make_user()
    GovernmentOfficer.objects.create(user=official, office=office)
    local = make_organisation(region=COUNTY_TANGSHAN, admin=make_user(), status=VerificationStatus.PENDING)
    elsewhere = make_organisation(region=COUNTY_SUZHOU, admin=make_user())
    api.force_authenticate(official)

    assert api.get(f"/api/v1/organisations/{local.pk}/").json()["contact_phone"] == local.contact_phone
    assert api.get(f"/api/v1/organisations/{local.pk}/licences/").status_code == 200
    assert "contact_phone" not in api.get(f"/api/v1/organisations/{elsewhere.pk}/").json()
    assert api.get(f"/api/v1/organisations/{elsewhere.pk}/members/").status_code == 403

    assert api.patch(f"/api/v1/organisations/{local.pk}/", {"address": "x"}, format="json").status_code == 403
    assert api.post("/api/v1/organisations/", _register_payload(), format="json").status_code == 403
    assert api.post(f"/api/v1/organisations/{local.pk}/decisions/", {"decision": "verify"}).status_code == 403
    local.refresh_from_db()
    assert local.status == VerificationStatus.PENDING


def test_operator_decisions_are_audited_and_members_told(api, operator):
    admin = make_user()
    org = make_organisation(admin=admin, status=VerificationStatus.PENDING)
    api.force_authenticate(operator)

    response = api.post(f"/api/v1/organisations/{org.pk}/decisions/", {"decision": "reject"})
    assert response.status_code == 400
    assert response.json()["fields"]["reason"][0]["code"] == "required"

    mail.outbox.clear()
    with pytest.MonkeyPatch.context():
        response = api.post(
            f"/api/v1/organisations/{org.pk}/decisions/",
            {"decision": "reject", "reason": "营业执照照片不清晰"},
        )
    assert response.status_code == 200
    assert response.json()["status"] == "rejected"
    assert response.json()["status_reason"] == "营业执照照片不清晰"
    entry = AuditEntry.objects.get(action="organisation.reject", target_id=str(org.pk))
    assert (entry.actor, entry.from_state, entry.to_state, entry.reason) == (
        operator,
        "pending",
        "rejected",
        "营业执照照片不清晰",
    )

    # Rejected -> verified directly is not in the table: the organisation must resubmit first.
    response = api.post(f"/api/v1/organisations/{org.pk}/decisions/", {"decision": "verify"})
    assert response.status_code == 409
    assert response.json()["code"] == "transition_not_allowed"

    api.force_authenticate(admin)
    assert (
        api.patch(
            f"/api/v1/organisations/{org.pk}/", {"address": "唐山市路北区新址9号"}, format="json"
        ).json()["status"]
        == "pending"
    )
    api.force_authenticate(operator)
    assert (
        api.post(f"/api/v1/organisations/{org.pk}/decisions/", {"decision": "verify"}).json()["status"]
        == "verified"
    )


def test_audit_entries_cannot_be_edited_or_deleted(operator):
    org = make_organisation(status=VerificationStatus.PENDING)
    from market.accounts.services import organisation_decide

    organisation_decide(actor=operator, organisation=org, decision="verify")
    entry = AuditEntry.objects.get(target_id=str(org.pk))
    entry.reason = "tampered"
    with pytest.raises(PermissionError):
        entry.save()
    with pytest.raises(PermissionError):
        entry.delete()


def test_invitation_flow(api, django_capture_on_commit_callbacks):
    admin = make_user()
    org = make_organisation(admin=admin)
    api.force_authenticate(admin)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api.post(
            f"/api/v1/organisations/{org.pk}/members/", {"email": "New.Trader@Example.cn", "role": "trader"}
        )
    assert response.status_code == 201
    assert callbacks, "the invitation email is queued after commit"
    invitation = Invitation.objects.get(organisation=org)
    assert invitation.email == "new.trader@example.cn"

    # Somebody else cannot use the link.
    api.force_authenticate(make_user())
    assert api.post(f"/api/v1/invitations/{invitation.token}/accept/").status_code == 403

    invitee = make_user(email="new.trader@example.cn")
    api.force_authenticate(invitee)
    assert [i["organisation"] for i in api.get("/api/v1/me/").json()["invitations"]] == [org.pk]
    response = api.post(f"/api/v1/invitations/{invitation.token}/accept/")
    assert response.status_code == 201
    assert response.json()["role"] == "trader"
    assert api.get("/api/v1/me/").json()["memberships"][0]["organisation"] == org.pk
    # The link works once.
    response = api.post(f"/api/v1/invitations/{invitation.token}/accept/")
    assert response.status_code == 400
    assert response.json()["code"] == "invitation_invalid"


def test_invitation_email_task_sends_the_link():
    from market.accounts.services import member_invite
    from market.accounts.tasks import invitation_email_send

    admin = make_user()
    org = make_organisation(admin=admin)
    invitation = member_invite(actor=admin, organisation=org, email="x@example.cn", role="viewer")
    mail.outbox.clear()
    assert invitation_email_send(invitation_id=invitation.pk) is True
    assert mail.outbox[0].to == ["x@example.cn"]
    assert f"http://127.0.0.1:8000/invitations/{invitation.token}/" in mail.outbox[0].body  # a full link


def test_last_admin_cannot_leave_or_be_demoted(api):
    admin = make_user()
    org = make_organisation(admin=admin)
    trader = make_member(org, MemberRole.TRADER)
    membership = Membership.objects.get(user=admin, organisation=org)
    api.force_authenticate(admin)
    response = api.patch(f"/api/v1/organisations/{org.pk}/members/{membership.pk}/", {"role": "viewer"})
    assert response.status_code == 400
    assert response.json()["fields"]["role"][0]["code"] == "last_admin"
    assert (
        api.delete(f"/api/v1/organisations/{org.pk}/members/{membership.pk}/").json()["code"] == "last_admin"
    )
    # Promote the trader, then the first admin may step down.
    assert (
        api.patch(f"/api/v1/organisations/{org.pk}/members/{trader.pk}/", {"role": "admin"}).status_code
        == 200
    )
    assert api.delete(f"/api/v1/organisations/{org.pk}/members/{membership.pk}/").status_code == 204
    assert not Membership.objects.filter(pk=membership.pk).exists()


def test_a_trader_cannot_remove_others_but_may_leave(api):
    org = make_organisation(admin=make_user())
    trader = make_member(org, MemberRole.TRADER)
    other = make_member(org, MemberRole.VIEWER)
    api.force_authenticate(trader.user)
    assert api.delete(f"/api/v1/organisations/{org.pk}/members/{other.pk}/").status_code == 403
    assert api.delete(f"/api/v1/organisations/{org.pk}/members/{trader.pk}/").status_code == 204


def test_government_user_cannot_be_invited(api):
    office = GovernmentOffice.objects.create(name="江苏省发展改革委", jurisdiction_id="320000")
    official = make_user(email="gov@js.gov.cn")
    GovernmentOfficer.objects.create(user=official, office=office)
    admin = make_user()
    org = make_organisation(admin=admin)
    api.force_authenticate(admin)
    response = api.post(
        f"/api/v1/organisations/{org.pk}/members/", {"email": "gov@js.gov.cn", "role": "trader"}
    )
    assert response.status_code == 400
    assert response.json()["fields"]["email"][0]["code"] == "government_user"


def test_openapi_schema_is_served(api):
    response = api.get("/api/schema/")
    assert response.status_code == 200
    assert (
        b"/api/v1/organisations/{id}/members/" in response.content
        or b"/api/v1/organisations/{pk}/members/" in response.content
    )
