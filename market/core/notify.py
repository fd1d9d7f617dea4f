"""Telling people that something happened: a live message to their open pages and an email.

Both are side effects, so both run only after the current transaction commits.
"""

from django.conf import settings
from django.db import transaction

from market.core.realtime import publish, user_group


def notify_users(user_ids, *, title: str, body: str = "", url: str = "", email: bool = True) -> None:
    ids = sorted({int(i) for i in user_ids})
    if not ids:
        return
    title, body, url = str(title), str(body), str(url)

    def _send():
        for uid in ids:
            publish(user_group(uid), {"type": "notify", "title": title, "body": body, "url": url})
        if email:
            from market.core.tasks import email_send

            link = settings.SITE_URL + url if url.startswith("/") else url
            email_send.delay(user_ids=ids, subject=title, body=f"{body}\n\n{link}".strip())

    transaction.on_commit(_send)
