"""Routes of the statistics pages; appended to ``frontend.urls`` (namespace ``frontend``).

Every page here reads rollups and indices only: with a read replica configured they read it
(``market.core.db_router.replica_reads``)."""

from django.urls import path

from frontend import views_statistics as views
from market.core.db_router import replica_reads

urlpatterns = [
    path("statistics/", replica_reads(views.statistics_explorer), name="statistics"),
    path("dashboard/", replica_reads(views.dashboard), name="dashboard"),
    path("dashboard/export.csv", replica_reads(views.dashboard_csv), name="dashboard_csv"),
    path("dashboard/export.xlsx", replica_reads(views.dashboard_xlsx), name="dashboard_xlsx"),
    path("open-data/", replica_reads(views.open_data), name="open_data"),
    path("open-data/volume.csv", replica_reads(views.open_data_csv), name="open_data_csv"),
]
