"""Celery application.

With ``REDIS_URL`` the broker is Redis and ``celery -A market worker`` / ``celery -A market beat``
run as their own processes. Without it (the embedded default of ``make run``) the broker is a SQLite
file through kombu's SQLAlchemy transport and ``manage.py serve`` runs a worker and beat in-process.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "market.settings")

app = Celery("market")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def _embedded_broker_polls_often(sender, **kwargs):
    """The SQLite-file broker of the embedded mode is polled, once a second by default, which drains
    the few hundred jobs that loading the demo leaves in minutes. Its transport passes every
    transport option to SQLAlchemy, so the interval is set on the transport class instead."""
    if str(sender.conf.broker_url or "").startswith("sqla+"):
        from kombu.transport.sqlalchemy import Transport

        Transport.polling_interval = 0.1
