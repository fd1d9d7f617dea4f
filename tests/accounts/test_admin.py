"""Operators verify and reject in the Django admin; the audit log there is read-only."""

import pytest

from market.accounts.models import VerificationStatus
from market.core.models import AuditEntry
from tests.factories import make_organisation, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    operator = make_user(email="ops@market.test", is_staff=True, is_superuser=True)
    client.force_login(operator)
    client.operator = operator
    return client


def test_verify_action(staff_client):
    org = make_organisation(status=VerificationStatus.PENDING)
    response = staff_client.post(
        "/admin/accounts/organisation/",
        {"action": "verify_selected", "_selected_action": [org.pk]},
        follow=True,
    )
    assert response.status_code == 200
    org.refresh_from_db()
    assert org.status == VerificationStatus.VERIFIED
    entry = AuditEntry.objects.get(action="organisation.verify", target_id=str(org.pk))
    assert entry.actor == staff_client.operator
    assert entry.ip == "127.0.0.1"


def test_reject_action_asks_for_a_reason_first(staff_client):
    org = make_organisation(status=VerificationStatus.PENDING)
    page = staff_client.post(
        "/admin/accounts/organisation/", {"action": "reject_selected", "_selected_action": [org.pk]}
    )
    assert page.status_code == 200
    assert "reason" in page.content.decode()
    org.refresh_from_db()
    assert org.status == VerificationStatus.PENDING  # nothing happens without a reason

    staff_client.post(
        "/admin/accounts/organisation/",
        {"action": "reject_selected", "_selected_action": [org.pk], "apply": "1", "reason": "营业执照已过期"},
    )
    org.refresh_from_db()
    assert (org.status, org.status_reason) == (VerificationStatus.REJECTED, "营业执照已过期")


def test_a_refused_move_is_reported_not_crashed(staff_client):
    org = make_organisation(status=VerificationStatus.VERIFIED)
    response = staff_client.post(
        "/admin/accounts/organisation/",
        {"action": "verify_selected", "_selected_action": [org.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "不能从" in response.content.decode()


def test_audit_log_is_read_only_in_the_admin(staff_client):
    org = make_organisation(status=VerificationStatus.PENDING)
    staff_client.post(
        "/admin/accounts/organisation/", {"action": "verify_selected", "_selected_action": [org.pk]}
    )
    entry = AuditEntry.objects.first()
    assert staff_client.get("/admin/core/auditentry/").status_code == 200
    assert staff_client.get("/admin/core/auditentry/add/").status_code == 403
    response = staff_client.post(f"/admin/core/auditentry/{entry.pk}/change/", {"reason": "edited"})
    assert response.status_code in (403, 200)
    entry.refresh_from_db()
    assert entry.reason != "edited"
    assert staff_client.post(f"/admin/core/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEntry.objects.filter(pk=entry.pk).exists()
