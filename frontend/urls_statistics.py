"""Routes of the statistics pages; appended to ``frontend.urls`` (namespace ``frontend``)."""

from django.urls import path

from frontend import views_statistics as views

urlpatterns = [
    path("statistics/", views.statistics_explorer, name="statistics"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("dashboard/export.csv", views.dashboard_csv, name="dashboard_csv"),
    path("dashboard/export.xlsx", views.dashboard_xlsx, name="dashboard_xlsx"),
    path("open-data/", views.open_data, name="open_data"),
    path("open-data/volume.csv", views.open_data_csv, name="open_data_csv"),
]
