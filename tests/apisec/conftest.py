"""Fixtures of the API security tests: the two-organisation world, built once per module inside a
transaction that is rolled back when the module is done (each test runs in a savepoint inside it,
so what one test writes is gone before the next)."""

import pytest
from django.db import transaction

from tests.apisec.world import World, build_world


@pytest.fixture(scope="module")
def shared_world(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            yield build_world()
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


@pytest.fixture
def world(shared_world, db, settings) -> World:
    settings.STRIPE_SECRET_KEY = ""  # no call leaves the process: payments by bank transfer only
    return shared_world
