"""The PostgreSQL backend's health check (``market.core.postgresql``): no query to a connection with
nothing pending; a connection the server has closed is found and replaced before a request uses it."""

import time

import pytest
from django.db import connections

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def own():
    """A connection of its own to the test database, with health checks as in production."""
    wrapper = connections.create_connection("default")
    wrapper.settings_dict["CONN_HEALTH_CHECKS"] = True
    wrapper.health_check_enabled = True
    wrapper.ensure_connection()
    yield wrapper
    wrapper.close()


def _pid(wrapper) -> int:
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_a_healthy_connection_is_checked_without_a_query(own, monkeypatch):
    assert own.vendor == "postgresql" and type(own).__module__ == "market.core.postgresql.base"
    _pid(own)
    sent = []
    real_cursor = type(own.connection).cursor
    monkeypatch.setattr(
        type(own.connection), "cursor", lambda self, *a, **k: sent.append(a) or real_cursor(self, *a, **k)
    )
    assert own.is_usable()
    assert sent == []


def test_a_socket_numbered_past_selects_limit_is_polled_too(own, monkeypatch):
    """A server process with a thousand websockets holds sockets numbered past 1024, where
    ``select`` fails: the check must still find a healthy connection healthy, without a query."""
    import os
    import resource

    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] <= 1500:
        resource.setrlimit(
            resource.RLIMIT_NOFILE, (2048, max(2048, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
        )
    _pid(own)
    high = os.dup2(own.connection.fileno(), 1500)
    try:
        monkeypatch.setattr(type(own.connection), "fileno", lambda self: high)
        sent = []
        real_cursor = type(own.connection).cursor
        monkeypatch.setattr(
            type(own.connection), "cursor", lambda self, *a, **k: sent.append(a) or real_cursor(self, *a, **k)
        )
        assert own.is_usable() and sent == []
    finally:
        os.close(high)


def test_a_connection_the_server_closed_is_replaced_before_the_next_request_uses_it(own):
    pid = _pid(own)
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    deadline = time.monotonic() + 5
    while own.is_usable() and time.monotonic() < deadline:  # the server's goodbye reaches the socket
        time.sleep(0.01)
    assert not own.is_usable()
    own.health_check_done = False  # as at the start of every request
    assert _pid(own) != pid  # reconnected: the request's first query succeeds
