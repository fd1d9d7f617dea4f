from django.urls import path

from market.core import api

urlpatterns: list = [
    path("regions/", api.RegionListView.as_view(), name="api-regions"),
    path("regions/<str:code>/", api.RegionDetailView.as_view(), name="api-region"),
    path("economic-zones/", api.EconomicZoneListView.as_view(), name="api-economic-zones"),
    path("notifications/", api.NotificationListView.as_view(), name="api-notifications"),
    path("notifications/read/", api.NotificationReadView.as_view(), name="api-notifications-read"),
]
