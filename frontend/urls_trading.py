"""Routes of the trading pages; appended to ``frontend.urls`` (namespace ``frontend``)."""

from django.urls import path

from frontend import views_trading as views

urlpatterns = [
    path("lots/<int:pk>/sale/", views.sale_configure, name="lot_sale"),
    path("lots/<int:pk>/live/", views.lot_live, name="lot_live"),
    path("lots/<int:pk>/bid/", views.lot_bid, name="lot_bid"),
    path("lots/<int:pk>/buy/", views.lot_buy, name="lot_buy"),
    path("lots/<int:pk>/deposit/", views.lot_deposit, name="lot_deposit"),
    path("lots/<int:pk>/offers/", views.lot_offer_create, name="lot_offer_create"),
    path("lots/<int:pk>/offers/<int:offer_id>/accept/", views.lot_offer_accept, name="lot_offer_accept"),
    path("my/bids/", views.my_bids, name="my_bids"),
    path("my/awards/", views.my_awards, name="my_awards"),
    path("my/notifications/", views.notifications, name="notifications"),
    path("my/notifications/read/", views.notifications_read, name="notifications_read"),
]
