"""DRF conventions shared by every app's api.py: error format, pagination, domain errors.

Every error is JSON: ``{"code": ..., "message": ..., "fields": {name: [{"code", "message"}]}}``.
Kept apart from api.py because DRF's generic views read ``DEFAULT_PAGINATION_CLASS`` at import time.
"""

import logging

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import exceptions, pagination, status
from rest_framework.views import exception_handler as drf_exception_handler

from market.core.state import TransitionNotAllowed

logger = logging.getLogger(__name__)


class Pagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 200


def paginated(serializer_class, name: str, **extra_fields):
    """The schema of one page of ``serializer_class`` rows as ``Pagination`` answers it, for the
    views that paginate by hand (drf-spectacular only sees the pagination of generic views)."""
    from drf_spectacular.utils import inline_serializer
    from rest_framework import serializers

    return inline_serializer(
        name,
        {
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": serializer_class(many=True),
            **extra_fields,
        },
    )


class DomainError(exceptions.APIException):
    """A rule of the market refused the request: 400 with a stable code."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid"
    nothing_written = False
    """True when the service that raised it wrote nothing and left its transaction usable (then
    ``market.core.idempotency`` keeps the refusal in that transaction instead of rolling it back)."""

    def __init__(self, message, code=None, status_code=None):
        super().__init__(detail=message, code=code or self.default_code)
        self.code = code or self.default_code
        if status_code:
            self.status_code = status_code


class Refusal(DomainError):
    """A rule of an app refused the request, by a stable code: subclasses give ``REFUSALS``, a table
    ``{code: (HTTP status, message marked with gettext_noop)}``; the message is translated into the
    user's language when raised, its ``%(name)s`` parameters shown by ``display``."""

    REFUSALS: dict[str, tuple[int, str]] = {}

    def __init__(self, code: str, **params):
        http, template = self.REFUSALS[code]
        shown = {k: self.display(v) for k, v in params.items()}
        super().__init__(_(template) % shown if shown else _(template), code, http)
        self.params = params

    @staticmethod
    def display(value):
        return value


def _field_errors(detail) -> dict:
    fields = {}
    for name, errors in detail.items():
        if isinstance(errors, dict):
            for sub, sub_errors in _field_errors(errors).items():
                fields[f"{name}.{sub}"] = sub_errors
            continue
        if not isinstance(errors, list):
            errors = [errors]
        items = []
        for err in errors:
            if isinstance(err, dict):
                for sub, sub_errors in _field_errors(err).items():
                    fields[f"{name}.{sub}"] = sub_errors
                continue
            items.append({"code": getattr(err, "code", "invalid"), "message": str(err)})
        if items:
            fields[name] = items
    return fields


def _details(errors) -> list:
    out = []
    for err in errors:
        for message in err.messages:
            out.append(exceptions.ErrorDetail(message, code=err.code or "invalid"))
    return out


def django_validation_detail(exc: DjangoValidationError) -> dict:
    """A Django ValidationError as DRF detail, keeping each error's code."""
    if hasattr(exc, "error_dict"):
        return {
            ("non_field_errors" if name == "__all__" else name): _details(errors)
            for name, errors in exc.error_dict.items()
        }
    return {"non_field_errors": _details(exc.error_list)}


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(django_validation_detail(exc))
    elif isinstance(exc, TransitionNotAllowed):
        exc = DomainError(exc.message, code=exc.code, status_code=status.HTTP_409_CONFLICT)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(_("未找到。"))
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    elif isinstance(exc, DataError):
        # The database refused a value the request carried (a NUL character, a number out of its
        # column's range): the client's mistake, told as one, never a 500.
        logger.warning("database refused a request value: %s", exc)
        exc = DomainError(
            _("提交的内容含有无法保存或查询的值（例如 NUL 字符或超出范围的数字）。"), code="invalid_value"
        )

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail = getattr(exc, "detail", None)
    if isinstance(exc, exceptions.ValidationError):
        if isinstance(detail, dict):
            fields = _field_errors(detail)
            non_field = fields.pop("non_field_errors", [])
        else:
            fields = {}
            non_field = [{"code": getattr(d, "code", "invalid"), "message": str(d)} for d in (detail or [])]
        body = {
            "code": non_field[0]["code"] if non_field and not fields else "invalid",
            "message": non_field[0]["message"] if non_field else _("提交的内容有误，请检查标出的字段。"),
            "fields": fields,
        }
    else:
        code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
        body = {"code": code, "message": str(detail) if detail is not None else str(exc), "fields": {}}
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            body["retry_after"] = int(exc.wait)
    response.data = body
    return response
