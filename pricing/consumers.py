"""``/ws/indices/``: the indicative intraday values, pushed on every eligible trade after commit.
Public (the indices are open data). ``?series=<code>`` subscribes to one series only."""

from urllib.parse import parse_qs

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from pricing.indices import INDICES_GROUP, _group_safe


class IndicesConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        query = parse_qs(self.scope.get("query_string", b"").decode())
        series = (query.get("series") or [""])[0][:96]
        self.group = f"{INDICES_GROUP}.{_group_safe(series)}" if series else INDICES_GROUP
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "hello", "series": series or None})

    async def disconnect(self, code):
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        if content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def index_tick(self, event):
        await self.send_json({"type": "tick", **event["tick"]})
