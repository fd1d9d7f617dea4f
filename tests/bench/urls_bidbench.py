"""The project's routes plus the bid benchmark's baseline views (only in the benchmark's server).

The baselines go through the same server, middleware stack and connection settings as the bid
API, and do the database work the bid path cannot avoid:

- ``hot/``: lock one row, update it, insert one row (the shape of one bid on one hot lot);
- ``insert/``: insert one row (the least a write request costs).
"""

from django.db import connection, transaction
from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from market.urls import urlpatterns as project_urlpatterns


@csrf_exempt
@require_POST
def hot_row(request, row: int):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT n FROM bidbench_hot WHERE id = %s FOR UPDATE", [row])
        (n,) = cursor.fetchone()
        cursor.execute("UPDATE bidbench_hot SET n = n + 1 WHERE id = %s", [row])
        cursor.execute("INSERT INTO bidbench_event (hot_id, n, at) VALUES (%s, %s, now())", [row, n + 1])
    return JsonResponse({"row": row, "n": n + 1}, status=201)


@csrf_exempt
@require_POST
def plain_insert(request, row: int):
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO bidbench_event (hot_id, n, at) VALUES (%s, 0, now())", [row])
    return JsonResponse({"row": row}, status=201)


urlpatterns = [
    path("bench/hot/<int:row>/", hot_row),
    path("bench/insert/<int:row>/", plain_insert),
    *project_urlpatterns,
]
