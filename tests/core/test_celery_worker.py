"""A real Celery worker process, consuming from Redis and writing to the test database."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from market.accounts.models import Licence
from market.accounts.services import licence_add, licence_decide
from market.accounts.tasks import licences_expiry_sweep
from tests.accounts.test_licences import png_bytes
from tests.conftest import worker_wait
from tests.factories import make_organisation, make_user

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_expiry_sweep_runs_in_a_real_worker(celery_worker_process, operator):
    admin = make_user()
    org = make_organisation(role="recycler", admin=admin)
    today = timezone.localdate()
    licence = licence_add(
        actor=admin,
        organisation=org,
        kind="renewable_record",
        number="worker-test",
        issuer="唐山市商务局",
        valid_from=today - timedelta(days=300),
        valid_to=today + timedelta(days=3),
        document=SimpleUploadedFile("a.png", png_bytes()),
    )
    licence_decide(actor=operator, licence=licence, decision="verify")

    licences_expiry_sweep.delay()

    worker_wait(
        celery_worker_process,
        lambda: Licence.objects.filter(pk=licence.pk, expiry_warned_at__isnull=False).exists(),
        "the worker did not run the sweep",
    )
