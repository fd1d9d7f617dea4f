from django.urls import path

from market.deals import api

urlpatterns = [
    path("deals/", api.DealListView.as_view(), name="api-deals"),
    path("deals/<int:pk>/", api.DealView.as_view(), name="api-deal"),
    path("deals/<int:pk>/payments/", api.PaymentListView.as_view(), name="api-deal-payments"),
    path(
        "deals/<int:pk>/payments/<int:payment_id>/slip/",
        api.PaymentSlipView.as_view(),
        name="api-deal-payment-slip",
    ),
    path(
        "deals/<int:pk>/payments/<int:payment_id>/confirm/",
        api.PaymentConfirmView.as_view(),
        name="api-deal-payment-confirm",
    ),
    path("deals/<int:pk>/pickups/", api.PickupListView.as_view(), name="api-deal-pickups"),
    path("deals/<int:pk>/weighings/", api.WeighingListView.as_view(), name="api-deal-weighings"),
    path("deals/<int:pk>/confirm/", api.ConfirmView.as_view(), name="api-deal-confirm"),
    path("deals/<int:pk>/dispute/", api.DisputeView.as_view(), name="api-deal-dispute"),
    path("deals/<int:pk>/dispute/resolve/", api.ResolveView.as_view(), name="api-deal-resolve"),
    path("deals/<int:pk>/reverse/", api.ReverseView.as_view(), name="api-deal-reverse"),
    path("deals/<int:pk>/manifest/", api.ManifestView.as_view(), name="api-deal-manifest"),
    path("deals/<int:pk>/ratings/", api.RatingListView.as_view(), name="api-deal-ratings"),
    path("trace/<str:code>/", api.TraceView.as_view(), name="api-trace"),
]
