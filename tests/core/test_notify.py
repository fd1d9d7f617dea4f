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


def test_a_notices_email_waits_in_the_outbox_and_is_sent_once(django_capture_on_commit_callbacks):
    from market.core.tasks import notifications_email

    org = make_organisation()
    trader, gone = make_user("trader@example.cn"), make_user("gone@example.cn")
    make_member(org, role=MemberRole.TRADER, user=trader)
    make_member(org, role=MemberRole.TRADER, user=gone)
    gone.is_active = False
    gone.save()
    with django_capture_on_commit_callbacks(execute=True):
        notify_users(
            trading_members(org.pk), title="您的出价已被超过", body="当前价 ¥2,010.00。", url="/lots/7/"
        )
        notify_users([trader.pk], title="成交通知\n（第二行）", url="/awards/")
        notify_users([trader.pk], title="只在站内", email=False)
    pending = set(Notification.objects.filter(email_pending=True).values_list("title", flat=True))
    assert pending == {"您的出价已被超过", "成交通知\n（第二行）"} and not mail.outbox

    assert notifications_email() == 2  # the inactive user's notice leaves the outbox unsent
    assert sorted((m.to[0], m.subject) for m in mail.outbox) == [
        ("trader@example.cn", "[再生资源交易市场] 您的出价已被超过"),
        ("trader@example.cn", "[再生资源交易市场] 成交通知 （第二行）"),  # no line break in a header
    ]
    outbid = next(m for m in mail.outbox if "超过" in m.subject)
    assert outbid.body == "当前价 ¥2,010.00。\n\nhttp://127.0.0.1:8000/lots/7/"
    assert not Notification.objects.filter(email_pending=True).exists()
    assert notifications_email() == 0 and len(mail.outbox) == 2  # nothing sent twice


def test_a_mail_server_that_is_down_leaves_the_rest_for_the_next_sweep(monkeypatch):
    from django.core.mail import EmailMessage

    from market.core.tasks import notifications_email

    users = [make_user(f"u{i}@example.cn") for i in range(3)]
    notify_users([u.pk for u in users], title="流标通知")
    real_send, calls = EmailMessage.send, []

    def second_fails(self, *args, **kwargs):
        calls.append(self.to[0])
        if len(calls) == 2:
            raise ConnectionRefusedError("mail server down")
        return real_send(self, *args, **kwargs)

    monkeypatch.setattr(EmailMessage, "send", second_fails)
    assert notifications_email() == 1
    assert Notification.objects.filter(email_pending=True, email_leased_until__isnull=True).count() == 2
    assert notifications_email() == 2
    assert sorted(m.to[0] for m in mail.outbox) == ["u0@example.cn", "u1@example.cn", "u2@example.cn"]


def test_a_notice_refused_for_good_neither_blocks_the_outbox_nor_is_sent_again(monkeypatch):
    import smtplib

    from django.core.mail import EmailMessage

    from market.core.tasks import notifications_email

    users = [make_user(f"r{i}@example.cn") for i in range(3)]
    notify_users([u.pk for u in users], title="中标通知")
    real_send = EmailMessage.send

    def refuse_r1(self, *args, **kwargs):
        if self.to == ["r1@example.cn"]:
            raise smtplib.SMTPRecipientsRefused({"r1@example.cn": (550, b"no such mailbox")})
        return real_send(self, *args, **kwargs)

    monkeypatch.setattr(EmailMessage, "send", refuse_r1)
    assert notifications_email() == 2
    assert notifications_email() == 0  # the refused one is not tried again, nor the others sent again
    assert sorted(m.to[0] for m in mail.outbox) == ["r0@example.cn", "r2@example.cn"]
    assert not Notification.objects.filter(email_pending=True).exists()


def test_a_claim_in_progress_is_left_alone_and_a_lapsed_one_is_sent():
    """A sweep killed while sending leaves its claim: it lapses, and the e-mail goes then."""
    from datetime import timedelta

    from django.utils import timezone

    from market.core.tasks import notifications_email

    users = [make_user(f"l{i}@example.cn") for i in range(2)]
    notify_users([u.pk for u in users], title="保证金退还")
    first, second = Notification.objects.filter(title="保证金退还").order_by("pk")
    Notification.objects.filter(pk=first.pk).update(email_leased_until=timezone.now() + timedelta(minutes=5))
    Notification.objects.filter(pk=second.pk).update(email_leased_until=timezone.now() - timedelta(seconds=1))
    assert notifications_email() == 1
    assert [m.to[0] for m in mail.outbox] == ["l1@example.cn"]
    assert list(Notification.objects.filter(email_pending=True).values_list("pk", flat=True)) == [first.pk]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_sweeps_at_once_send_different_notices():
    """A notice being claimed by one sweep (its row locked) is skipped by another, not sent twice."""
    import threading

    from django.db import connections, transaction

    from market.core.tasks import notifications_email

    users = [make_user(f"s{i}@example.cn") for i in range(3)]
    notify_users([u.pk for u in users], title="截标提醒")
    first = Notification.objects.filter(title="截标提醒").order_by("pk").first()
    claimed, release = threading.Event(), threading.Event()

    def other_sweep_claiming_the_first():
        try:
            with transaction.atomic():
                Notification.objects.select_for_update().filter(pk=first.pk).get()
                claimed.set()
                release.wait(20)
        finally:
            connections.close_all()

    other = threading.Thread(target=other_sweep_claiming_the_first)
    other.start()
    try:
        assert claimed.wait(10)
        assert notifications_email() == 2  # without waiting for the locked one
    finally:
        release.set()
        other.join(20)
    assert sorted(m.to[0] for m in mail.outbox) == ["s1@example.cn", "s2@example.cn"]
    assert list(Notification.objects.filter(email_pending=True).values_list("pk", flat=True)) == [first.pk]
