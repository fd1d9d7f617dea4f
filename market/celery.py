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
