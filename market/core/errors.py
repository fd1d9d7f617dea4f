"""Answers for uncaught errors that carry no database query of their own.

Under WSGI Django calls ``server_error`` (``handler500``) inside the ``except`` block of the failed
request, so the exception is at hand; under ASGI it calls it on another thread, without it, and
then one ``SELECT 1`` tells whether the database answers. When the database is away (stopped,
restarting, failed over, out of connections) the answer is 503 with ``Retry-After`` and a clear message instead of a 500, as JSON under ``/api/`` and
as a bare page elsewhere. Neither touches the database, the session or the user (each would fail
again); Django's persistent connection is dropped at the request's end (it is unusable), and the
next request connects afresh once the server is back.
"""

import logging
import sys

from django.db import DatabaseError, InterfaceError, OperationalError, connection
from django.http import HttpResponse, JsonResponse
from django.template import loader
from django.utils.translation import gettext
from django.views.decorators.csrf import requires_csrf_token

logger = logging.getLogger("market.errors")

RETRY_AFTER_S = 5


def database_unavailable(exc: BaseException | None) -> bool:
    """The error is the database being unreachable or its connection broken (a lock timeout or a
    deadlock is an OperationalError too: also worth a retry, and also not the client's fault)."""
    while exc is not None:
        if isinstance(exc, OperationalError | InterfaceError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def database_answers() -> bool:
    """One ``SELECT 1`` on a connection of its own, closed again: under ASGI this runs on a shared
    executor thread, which must not keep an idle connection (``connect_timeout`` bounds the wait)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except DatabaseError:
        return False
    finally:
        connection.close()


@requires_csrf_token
def server_error(request, template_name="500.html"):
    exc = sys.exc_info()[1]
    api = request.path.startswith("/api/")
    if database_unavailable(exc) or (exc is None and not database_answers()):
        logger.warning("database unavailable for %s %s: %s", request.method, request.path, exc)
        message = gettext("数据库暂时不可用，请稍后重试；已经确认的操作不会丢失。")
        if api:
            response = JsonResponse({"code": "service_unavailable", "message": message}, status=503)
        else:
            body = loader.get_template("503.html").render({"message": message})
            response = _html(body, 503)
        response["Retry-After"] = str(RETRY_AFTER_S)
        return response
    if api:
        message = gettext("服务器内部错误，已记录。请稍后再试。")
        return JsonResponse({"code": "server_error", "message": message}, status=500)
    return _html(loader.get_template(template_name).render(), 500)


def _html(body: str, status: int) -> HttpResponse:
    return HttpResponse(body, status=status)
