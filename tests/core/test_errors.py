"""Uncaught errors: the database being away answers 503 with a code and a message (JSON under /api/,
a page elsewhere) and Retry-After; any other uncaught error answers 500 the same way, without
touching the database."""

import pytest
from django.db import OperationalError
from django.test import Client
from django.urls import path

from market.urls import urlpatterns as market_urls


def _db_gone(request):
    raise OperationalError('connection to server at "127.0.0.1", port 5432 failed: Connection refused')


def _bug(request):
    raise ZeroDivisionError("a bug")


urlpatterns = [
    path("api/v1/test-db-gone/", _db_gone),
    path("test-db-gone/", _db_gone),
    path("api/v1/test-bug/", _bug),
    path("test-bug/", _bug),
    *market_urls,
]
handler500 = "market.core.errors.server_error"


@pytest.fixture
def client_without_raising(settings):
    settings.ROOT_URLCONF = __name__
    return Client(raise_request_exception=False)


def test_the_api_answers_503_with_a_code_while_the_database_is_away(client_without_raising):
    response = client_without_raising.get("/api/v1/test-db-gone/")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    body = response.json()
    assert body["code"] == "service_unavailable" and "数据库暂时不可用" in body["message"]


def test_a_page_answers_503_with_the_bare_error_page(client_without_raising):
    response = client_without_raising.get("/test-db-gone/")
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert "市场正在恢复" in response.content.decode()


def test_another_uncaught_error_is_a_500_in_the_api_s_shape_and_a_page_elsewhere(client_without_raising):
    api = client_without_raising.get("/api/v1/test-bug/")
    assert api.status_code == 500 and api.json()["code"] == "server_error"
    page = client_without_raising.get("/test-bug/")
    assert page.status_code == 500 and "服务器出了点问题" in page.content.decode()


def test_without_the_exception_at_hand_a_database_that_does_not_answer_still_means_503(rf, monkeypatch):
    """Under ASGI, Django calls the handler on another thread, where the exception is not at hand."""
    from market.core import errors

    monkeypatch.setattr(errors, "database_answers", lambda: False)
    response = errors.server_error(rf.get("/api/v1/lots/1/state/"))
    assert response.status_code == 503 and response["Retry-After"] == "5"
    monkeypatch.setattr(errors, "database_answers", lambda: True)
    assert errors.server_error(rf.get("/api/v1/lots/1/state/")).status_code == 500


def test_database_answers_is_true_when_it_does(db):
    from market.core.errors import database_answers

    assert database_answers() is True
