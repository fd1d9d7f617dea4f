"""``/ws/indices/``: the indicative intraday values, pushed on every eligible trade after commit.
Public (the indices are open data). ``?series=<code>`` subscribes to one series only.

Ticks come through ``market.core.fanout``: one Redis publish per group and tick, written by each
server process to its own sockets (the home page's ticker has every visitor listening)."""

from urllib.parse import parse_qs

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from market.core.fanout import hub
from pricing.indices import INDICES_GROUP, _group_safe


class IndicesConsumer(AsyncJsonWebsocketConsumer):
    # No channel-layer channel per socket: ticks come through the process's fan-out hub.
    channel_layer_alias = "no-channel-layer"

    async def connect(self):
        query = parse_qs(self.scope.get("query_string", b"").decode())
        series = (query.get("series") or [""])[0][:96]
        self.group = None
        await self.accept()
        await self.send_json({"type": "hello", "series": series or None})
        self.group = f"{INDICES_GROUP}.{_group_safe(series)}" if series else INDICES_GROUP
        await hub.join(self.group, self)

    async def disconnect(self, code):
        if self.group:
            await hub.leave(self.group, self)

    async def receive_json(self, content, **kwargs):
        if content.get("type") == "ping":
            await self.send_json({"type": "pong"})
