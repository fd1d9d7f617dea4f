"""The ASGI application of the fan-out benchmark: the product's, plus one route whose consumer
receives updates the plain way (channels-redis ``group_send``), for the baseline. Never deployed."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "market.settings_test")

from channels.auth import AuthMiddlewareStack
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import ProtocolTypeRouter, URLRouter
from django.urls import path

from market.asgi import application as market_application
from market.routing import websocket_urlpatterns


class GroupConsumer(AsyncWebsocketConsumer):
    """Baseline: every socket is its own channel in a channel-layer group."""

    async def connect(self):
        self.group = f"fanoutbench.{self.scope['url_route']['kwargs']['pk']}"
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def bench_message(self, event):
        await self.send(text_data=event["text"])


application = ProtocolTypeRouter(
    {
        "http": market_application.application_mapping["http"],
        "websocket": AuthMiddlewareStack(
            URLRouter([path("ws/bench-group/<int:pk>/", GroupConsumer.as_asgi()), *websocket_urlpatterns])
        ),
    }
)
