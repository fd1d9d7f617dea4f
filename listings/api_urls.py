from django.urls import path

from listings import api

urlpatterns = [
    path("categories/", api.CategoryListView.as_view(), name="api-categories"),
    path("categories/<str:code>/", api.CategoryDetailView.as_view(), name="api-category"),
    path("lots/", api.LotListView.as_view(), name="api-lots"),
    path("lots/<int:pk>/", api.LotDetailView.as_view(), name="api-lot"),
    path("lots/<int:pk>/submit/", api.LotSubmitView.as_view(), name="api-lot-submit"),
    path("lots/<int:pk>/publish/", api.LotPublishView.as_view(), name="api-lot-publish"),
    path("lots/<int:pk>/return/", api.LotReturnView.as_view(), name="api-lot-return"),
    path("lots/<int:pk>/withdraw/", api.LotWithdrawView.as_view(), name="api-lot-withdraw"),
    path("lots/<int:pk>/relist/", api.LotRelistView.as_view(), name="api-lot-relist"),
    path("lots/<int:pk>/media/", api.LotMediaListView.as_view(), name="api-lot-media"),
    path(
        "lots/<int:pk>/media/<int:media_id>/", api.LotMediaDetailView.as_view(), name="api-lot-media-detail"
    ),
    path(
        "lots/<int:pk>/media/<int:media_id>/file/", api.LotMediaFileView.as_view(), name="api-lot-media-file"
    ),
    path("wanted/", api.WantedListView.as_view(), name="api-wanted"),
    path("wanted/<int:pk>/", api.WantedDetailView.as_view(), name="api-wanted-detail"),
    path("wanted/<int:pk>/withdraw/", api.WantedWithdrawView.as_view(), name="api-wanted-withdraw"),
    path("wanted/<int:pk>/offers/", api.WantedOfferListView.as_view(), name="api-wanted-offers"),
    path("saved-searches/", api.SavedSearchListView.as_view(), name="api-saved-searches"),
    path("saved-searches/<int:pk>/", api.SavedSearchDetailView.as_view(), name="api-saved-search"),
]
