"""Notices: stored rows for the bell, a live message and an e-mail after the commit."""

import pytest
from django.core import mail

from market.accounts.models import MemberRole, Membership
from market.accounts.selectors import trading_members
from market.core.models import Notification
from market.core.notify import notify_users
from tests.factories import make_member, make_organisation, make_user

pytestmark = pytest.mark.django_db


def test_a_notice_to_an_organisations_traders_is_stored_once_each_and_sent_after_commit(
    django_capture_on_commit_callbacks,
):
    admin = make_user()
    org = make_organisation(admin=admin)
    trader = make_user()
    make_member(org, role=MemberRole.TRADER, user=trader)
    viewer = make_user()
    make_member(org, role=MemberRole.VIEWER, user=viewer)
    Notification.objects.create(user=trader, title="更早的一条")
    with django_capture_on_commit_callbacks(execute=False) as after_commit:
        notify_users(trading_members(org.pk), title="您的出价已被超过", url="/lots/1/", kind="outbid")
        stored = {n.user_id for n in Notification.objects.filter(kind="outbid")}
    assert stored == {admin.pk, trader.pk}  # viewers are not told about trading
    assert Membership.objects.filter(organisation=org).count() == 3
    assert len(after_commit) == 1 and not mail.outbox  # nothing sent before the commit


def test_a_notice_to_a_query_of_users_by_their_own_ids_reaches_each_once():
    """Operators are named by a query of users (``pk``), not of memberships (``user_id``)."""
    from market.accounts.models import User

    first, second = make_user(), make_user()
    User.objects.filter(pk__in=[first.pk, second.pk]).update(is_staff=True)
    operators = User.objects.filter(is_staff=True, is_active=True).values_list("pk", flat=True)
    notify_users(operators, title="新单位待审核", email=False)
    assert sorted(
        Notification.objects.filter(title="新单位待审核").values_list("user_id", flat=True)
    ) == sorted(operators)


def test_a_notice_to_the_traders_of_no_organisation_tells_nobody(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as after_commit:
        notify_users(trading_members(), title="无人接收")
    assert not Notification.objects.filter(title="无人接收").exists() and not after_commit


def test_the_live_message_carries_each_users_unread_count_with_the_new_notice(
    monkeypatch, django_capture_on_commit_callbacks
):
    """The bell is set from the message: the count includes the new notice and the user's other
    unread ones, not the read ones, whether the users came as a query or as ids."""
    from market.core import notify

    sent = []
    monkeypatch.setattr(notify, "fanout_publish", lambda group, message: sent.append((group, message)))
    org = make_organisation()
    trader, other = make_user(), make_user()
    make_member(org, role=MemberRole.TRADER, user=trader)
    Notification.objects.create(user=trader, title="未读的一条")
    Notification.objects.create(user=trader, title="已读的一条", read_at="2026-01-01T00:00:00+08:00")
    Notification.objects.create(user=other, title="别人的未读")
    with django_capture_on_commit_callbacks(execute=True):
        notify_users(trading_members(org.pk), title="您的出价已被超过", kind="outbid", email=False)
    with django_capture_on_commit_callbacks(execute=True):
        notify_users([trader.pk, other.pk], title="成交通知", kind="won", email=False)
    unread = [(group, message["title"], message["unread"]) for group, message in sent]
    assert unread == [
        (f"user.{trader.pk}", "您的出价已被超过", 2),
        (f"user.{trader.pk}", "成交通知", 3),
        (f"user.{other.pk}", "成交通知", 2),
    ]
