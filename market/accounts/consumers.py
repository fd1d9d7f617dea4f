"""Live notifications for a signed-in user at ``/ws/notifications/``.

Messages come through ``market.core.fanout`` on the user's own group (``user.<id>``), which only
this user's authenticated sockets join: one Redis publish per notice, written by each server
process to its own sockets, instead of one channel-layer message per socket.
"""

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from market.core.fanout import hub
from market.core.realtime import user_group


class NotificationConsumer(AsyncJsonWebsocketConsumer):
    # No channel-layer channel per socket: notices come through the process's fan-out hub.
    channel_layer_alias = "no-channel-layer"

    async def connect(self):
        self.group = None
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        await self.accept()
        self.group = user_group(user.pk)
        await hub.join(self.group, self)

    async def disconnect(self, code):
        if self.group:
            await hub.leave(self.group, self)

    async def receive_json(self, content, **kwargs):
        if content.get("type") == "ping":
            await self.send_json({"type": "pong"})
