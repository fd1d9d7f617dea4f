from django.urls import path

from market.trading import api

urlpatterns = [
    path("lots/<int:pk>/sale/", api.SaleView.as_view(), name="api-lot-sale"),
    path("lots/<int:pk>/state/", api.StateView.as_view(), name="api-lot-state"),
    path("lots/<int:pk>/bids/", api.BidListView.as_view(), name="api-lot-bids"),
    path("lots/<int:pk>/buy/", api.BuyView.as_view(), name="api-lot-buy"),
    path("offers/", api.OfferListView.as_view(), name="api-offers"),
    path("offers/<int:pk>/accept/", api.OfferAcceptView.as_view(), name="api-offer-accept"),
    path(
        "wanted/<int:pk>/offers/<int:offer_id>/accept/",
        api.WantedOfferAcceptView.as_view(),
        name="api-wanted-offer-accept",
    ),
    path("deposits/", api.DepositListView.as_view(), name="api-deposits"),
    path("deposits/<int:pk>/confirm/", api.DepositConfirmView.as_view(), name="api-deposit-confirm"),
    path("awards/", api.AwardListView.as_view(), name="api-awards"),
]
