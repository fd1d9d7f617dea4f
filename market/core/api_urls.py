from django.urls import path

from market.core import api

urlpatterns: list = [
    path("regions/", api.RegionListView.as_view(), name="api-regions"),
    path("regions/<str:code>/", api.RegionDetailView.as_view(), name="api-region"),
    path("economic-zones/", api.EconomicZoneListView.as_view(), name="api-economic-zones"),
]
