"""What a locked-out client sees: a page for browsers, JSON for the API."""

from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _


def lockout_message() -> str:
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return _("登录失败次数过多，账户已临时锁定，请 %(minutes)d 分钟后再试。") % {"minutes": minutes}


def lockout_response(request, response=None, credentials=None, *args, **kwargs):
    message = lockout_message()
    if request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", ""):
        return JsonResponse({"code": "locked_out", "message": message, "fields": {}}, status=429)
    return render(request, "frontend/locked_out.html", {"message": message}, status=429)
