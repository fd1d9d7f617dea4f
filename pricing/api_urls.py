from django.urls import path

from market.core.db_router import replica_reads
from pricing import api, api_indices

# The statistics and the open data read rollups and indices only: from the read replica when one is
# configured (market.core.db_router).

urlpatterns = [
    path("statistics/volume/", replica_reads(api.VolumeView.as_view()), name="api-statistics-volume"),
    path("open/volume/", replica_reads(api.OpenVolumeView.as_view()), name="api-open-volume"),
    path("indices/", api_indices.IndexListView.as_view(), name="api-indices"),
    path("indices/corrections/<str:day>/", api_indices.IndexCorrectView.as_view(), name="api-index-correct"),
    path("indices/<str:code>/", api_indices.IndexDetailView.as_view(), name="api-index"),
    path("indices/<str:code>/values/", api_indices.IndexValuesView.as_view(), name="api-index-values"),
    path(
        "indices/<str:code>/values/<str:day>/audit/",
        api_indices.IndexAuditView.as_view(),
        name="api-index-audit",
    ),
    path("open/indices/", replica_reads(api_indices.OpenIndicesView.as_view()), name="api-open-indices"),
]
