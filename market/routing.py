"""Websocket routes of every app."""

from django.urls import path

from market.accounts.consumers import NotificationConsumer
from market.trading.consumers import LotConsumer
from pricing.consumers import IndicesConsumer

websocket_urlpatterns = [
    path("ws/notifications/", NotificationConsumer.as_asgi()),
    path("ws/lots/<int:pk>/", LotConsumer.as_asgi()),
    path("ws/indices/", IndicesConsumer.as_asgi()),
]
