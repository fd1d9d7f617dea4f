"""The audit log: every privileged action is written with who, when, from where and why; operators
search it in the back office; nobody can change or delete a row, not even with SQL."""

import pytest
from django.db import IntegrityError, connection, transaction

from market.core.audit import audit_record
from market.core.models import AuditEntry
from tests.factories import make_organisation, make_user

pytestmark = pytest.mark.django_db


def test_an_audit_row_cannot_be_changed_or_deleted_through_the_orm_or_sql(operator):
    org = make_organisation()
    entry = audit_record(
        actor=operator, action="org.blacklist", target=org, reason="伪造危废许可证", ip="10.0.0.7"
    )
    with pytest.raises(PermissionError):
        entry.save()
    with pytest.raises(PermissionError):
        entry.delete()
    for sql in (
        "UPDATE core_auditentry SET reason = 'nothing happened' WHERE id = %s",
        "DELETE FROM core_auditentry WHERE id = %s",
    ):
        with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [entry.pk])
    entry.refresh_from_db()
    assert (entry.reason, entry.ip, entry.actor_label) == ("伪造危废许可证", "10.0.0.7", operator.email)


def test_operators_search_the_audit_log_by_who_what_and_why(client):
    operator = make_user(email="ops@market.test", is_staff=True, is_superuser=True)
    org = make_organisation(name="江南再生资源有限公司")
    audit_record(actor=operator, action="org.verify", target=org, reason="营业执照核验通过", ip="10.0.0.8")
    audit_record(actor=operator, action="org.blacklist", target=org, reason="伪造危废许可证", ip="10.0.0.9")
    client.force_login(operator)
    page = client.get("/admin/core/auditentry/", {"q": "伪造"})
    assert page.status_code == 200
    assert [e.action for e in page.context["cl"].result_list] == ["org.blacklist"]
    filtered = client.get("/admin/core/auditentry/", {"action": "org.verify"})
    assert [e.ip for e in filtered.context["cl"].result_list] == ["10.0.0.8"]
    assert "10.0.0.8" in filtered.content.decode()
    entry = AuditEntry.objects.get(action="org.verify")
    # the change form shows it, and saving or deleting it is not offered
    detail = client.get(f"/admin/core/auditentry/{entry.pk}/change/")
    assert detail.status_code == 200 and 'name="_save"' not in detail.content.decode()
    assert client.post(f"/admin/core/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_someone_who_is_not_an_operator_cannot_read_the_audit_log(client):
    client.force_login(make_user())
    assert client.get("/admin/core/auditentry/").status_code == 302
