"""Telling people that something happened: a stored notification (the bell and its list), a live
message to their open pages and an email.

The rows are written in the caller's transaction, so a rolled-back action tells nobody; the live
message is a side effect and goes out only after the transaction commits. The email is durable: the
row itself is the outbox (``email_pending``), sent by ``notifications_email_send`` from the task
``market.core.tasks.notifications_email``, which beat runs every ``NOTIFY_EMAIL_DELAY_S`` (no Celery
message per notice on every contested bid, and nothing to lose between a commit and a publish).
"""

import logging
import smtplib
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.exceptions import EmptyResultSet
from django.db import connections, transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from market.core.fanout import fanout_publish
from market.core.models import Notification
from market.core.realtime import user_group
from market.core.statements import Statement, execute_many

logger = logging.getLogger(__name__)


def notify_users(
    user_ids, *, title: str, body: str = "", url: str = "", email: bool = True, kind: str = ""
) -> None:
    """``user_ids``: ids, or a query of them (one column: ``values_list("user_id", flat=True)`` or
    ``values_list("pk", flat=True)``), from which the rows are inserted in one statement (a bid's
    outbid notice runs on every contested bid; ``notify_users_statement``)."""
    if isinstance(user_ids, QuerySet):
        statement = notify_users_statement(user_ids, title=title, body=body, url=url, email=email, kind=kind)
        if statement is not None:
            execute_many([statement], using=user_ids.db)
        return
    title, body, url = _texts(title, body, url)
    ids = sorted({int(i) for i in user_ids})
    Notification.objects.bulk_create(
        [
            Notification(user_id=uid, title=title, body=body, url=url, kind=kind, email_pending=email)
            for uid in ids
        ],
        batch_size=1000,
    )
    _live_on_commit(ids, None, title=title, body=body, url=url, kind=kind)


def _texts(title, body, url) -> tuple[str, str, str]:
    return str(title)[:255], str(body), str(url)[:500]


def _live_on_commit(ids: list[int], counted: dict[int, int] | None, **message) -> None:
    """After the commit, the new notices to their users' open pages, with their unread counts
    (``counted``, or counted then)."""
    if not ids:
        return

    def _send():
        unread = counted if counted is not None else notifications_unread_counts(ids)
        for uid in ids:
            fanout_publish(user_group(uid), {"type": "notify", **message, "unread": unread[uid]})

    transaction.on_commit(_send, robust=True)


def notify_users_statement(
    user_ids: QuerySet | tuple[str, list],
    *,
    title: str,
    body: str = "",
    url: str = "",
    email: bool = True,
    kind: str = "",
    using: str = "default",
) -> Statement | None:
    """``notify_users`` for a query of user ids (a queryset, or its SQL and parameters as
    ``Prepared.sql`` gives them), compiled and not run, to be sent with other statements
    (``market.core.commit.execute_many_async``); None when the query names nobody.

    INSERT … SELECT: one notification per distinct user the query names, returning their ids and,
    on PostgreSQL, each one's unread count with the new notice (from the same statement: the
    subquery of its RETURNING sees the table as it was before the insert). Two transactions telling
    one user at once may then both count N+1 where the later could have said N+2: the bell is low by
    one until the user's next notice or page, never high."""
    title, body, url = _texts(title, body, url)
    if isinstance(user_ids, QuerySet):
        using = user_ids.db
        try:
            user_ids = user_ids.query.sql_with_params()
        except EmptyResultSet:  # e.g. members of no organisation: nobody to tell
            return None
    select, params = user_ids
    connection = connections[using]
    quote = connection.ops.quote_name
    meta = Notification._meta
    names = ["title", "body", "url", "kind", "email_pending", "created_at"]
    columns = ", ".join(quote(meta.get_field(n).column) for n in ["user", *names])
    placeholders = ", ".join(["%s"] * len(names))
    table, user_column = quote(meta.db_table), quote(meta.get_field("user").column)
    returning = user_column
    counting = connection.vendor == "postgresql"
    if counting:
        read_at = quote(meta.get_field("read_at").column)
        returning += (
            f", (SELECT COUNT(*) FROM {table} n WHERE n.{user_column} = {table}.{user_column}"  # noqa: S608
            f" AND n.{read_at} IS NULL) + 1"
        )
    # Identifiers from the model, values as parameters, the query compiled by Django.
    # q.*: the query selects one column, whatever its name (user_id, or pk for a query of users).
    sql = f"INSERT INTO {table} ({columns}) SELECT DISTINCT q.*, {placeholders} FROM ({select}) q RETURNING {returning}"  # noqa: S608

    def then(rows: list[tuple]) -> None:
        ids = sorted(row[0] for row in rows)
        counted = {row[0]: row[1] for row in rows} if counting else None
        _live_on_commit(ids, counted, title=title, body=body, url=url, kind=kind)

    return Statement(sql, [title, body, url, kind, email, timezone.now(), *params], then)


def notifications_unread_counts(user_ids) -> dict[int, int]:
    counts = dict.fromkeys(user_ids, 0)
    rows = (
        Notification.objects.filter(user_id__in=list(user_ids), read_at__isnull=True)
        .values_list("user_id")
        .order_by()
        .annotate(n=Count("pk"))
    )
    counts.update(dict(rows))
    return counts


def notifications_of(user) -> QuerySet[Notification]:
    return Notification.objects.filter(user=user)


def notifications_mark_read(user, ids=None) -> int:
    """Mark the user's notifications read (all, or those ``ids``); returns how many changed."""
    qs = Notification.objects.filter(user=user, read_at__isnull=True)
    if ids is not None:
        qs = qs.filter(pk__in=list(ids))
    changed = qs.update(read_at=timezone.now())
    if changed:
        unread = notifications_unread_counts([user.pk])[user.pk]
        transaction.on_commit(
            lambda: fanout_publish(user_group(user.pk), {"type": "unread", "unread": unread}), robust=True
        )
    return changed


# --- the e-mail outbox -----------------------------------------------------------------------

EMAIL_BATCH = 200
"""Notices claimed at a time."""
LEASE = timedelta(minutes=10)
"""How long a claim lasts: a sweep killed while sending leaves its notices to a later one then."""


def notifications_email_send(*, batches: int = 50) -> int:
    """Send the outbox's e-mails, oldest first, a batch at a time, up to ``batches`` batches (the
    next sweep takes the rest); returns how many were sent.

    A batch is claimed in a short transaction (``FOR UPDATE SKIP LOCKED``, then a lease), so two
    sweeps at once send different notices and nothing waits on the rows while the mail server talks.
    Each notice sent (or refused for good: a bad address, a recipient the server rejects) leaves the
    outbox; when the server is unreachable or answers "try later", the rest of the batch is released
    for the next sweep. A sweep killed in the middle leaves its claim to lapse: a notice may then be
    e-mailed twice, never lost."""
    sent = 0
    for _ in range(batches):
        count, more = _email_batch()
        sent += count
        if not more:
            break
    return sent


def _claim() -> list[tuple]:
    now = timezone.now()
    with transaction.atomic():
        rows = list(
            Notification.objects.select_for_update(skip_locked=True)
            .filter(Q(email_leased_until__isnull=True) | Q(email_leased_until__lt=now), email_pending=True)
            .order_by("pk")
            .values_list("pk", "user_id", "title", "body", "url")[:EMAIL_BATCH]
        )
        if rows:
            Notification.objects.filter(pk__in=[row[0] for row in rows]).update(
                email_leased_until=now + LEASE
            )
    return rows


def _transient(exc: Exception) -> bool:
    """A failure worth trying again later (the server unreachable, or a 4xx answer), as opposed to
    one that would fail again (a refused recipient, a malformed address or header)."""
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return False
    return isinstance(exc, OSError)


def _email_batch() -> tuple[int, bool]:
    rows = _claim()
    if not rows:
        return 0, False
    addresses = dict(
        get_user_model()
        .objects.filter(pk__in={row[1] for row in rows}, is_active=True)
        .values_list("pk", "email")
    )
    done, released, sent = [], [], 0
    connection = mail.get_connection()
    try:
        for pk, user_id, title, body, url in rows:
            if released:  # after a transient failure: left for the next sweep
                released.append(pk)
                continue
            address = addresses.get(user_id)
            if not address:  # an inactive user: the notice stays in the bell only
                done.append(pk)
                continue
            link = settings.SITE_URL + url if url.startswith("/") else url
            subject = " ".join(f"[{settings.MARKET_NAME}] {title}".split())  # no line breaks in a header
            message = mail.EmailMessage(
                subject, f"{body}\n\n{link}".strip(), None, [address], connection=connection
            )
            try:
                sent += message.send()
                done.append(pk)
            except Exception as exc:
                if _transient(exc):
                    logger.warning(
                        "e-mail of notice %s not sent (%s): the rest wait for the next sweep", pk, exc
                    )
                    released.append(pk)
                else:
                    logger.error("e-mail of notice %s refused for good: %s", pk, exc)
                    done.append(pk)
    finally:
        try:
            connection.close()
        except Exception:  # the messages went; a failing goodbye changes nothing
            logger.warning("closing the mail connection failed", exc_info=True)
        Notification.objects.filter(pk__in=done).update(email_pending=False, email_leased_until=None)
        if released:
            Notification.objects.filter(pk__in=released).update(email_leased_until=None)
    return sent, not released and len(rows) == EMAIL_BATCH
