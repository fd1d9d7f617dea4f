"""Live notifications for a signed-in user at ``/ws/notifications/``."""

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from market.core.realtime import user_group


class NotificationConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.group = user_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        if content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def notify(self, event):
        await self.send_json(
            {
                "type": "notify",
                "title": event["title"],
                "body": event.get("body", ""),
                "url": event.get("url", ""),
                "kind": event.get("kind", ""),
                "unread": event.get("unread"),
            }
        )

    async def unread(self, event):
        await self.send_json({"type": "unread", "unread": event["unread"]})
