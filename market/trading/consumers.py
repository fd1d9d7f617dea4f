"""``/ws/lots/{id}/``: a lot's live trading state.

Updates arrive through ``market.core.fanout``: each server process receives a lot's update once
and writes it to its own sockets. On connect the client gets a snapshot (state, sequence number, server time, and its own part:
label, rank, deposit); then one message per change, each with the sequence number, so a client
that sees a gap refetches ``GET /api/v1/lots/{id}/state/``. A sealed tender publishes counts only.
Private messages (outbid, your proxy bid was used, you won) go to the user's own notification
socket, never to the lot's group.
"""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from listings.selectors import lot_visible_get
from market.core.fanout import hub


@database_sync_to_async
def _snapshot(user, lot_id: int):
    from market.accounts.selectors import membership_acting
    from market.trading.selectors import sale_current, sale_state_for

    lot = lot_visible_get(user, lot_id)
    if lot is None:
        return None, False
    sale = sale_current(lot.pk)
    org = None
    if user is not None and user.is_authenticated:
        membership = membership_acting(user=user)
        org = membership.organisation if membership else None
    return (sale_state_for(sale, org) if sale else None), True


class LotConsumer(AsyncJsonWebsocketConsumer):
    # No channel-layer channel per socket: updates come through the process's fan-out hub.
    channel_layer_alias = "no-channel-layer"

    async def connect(self):
        self.lot_id = int(self.scope["url_route"]["kwargs"]["pk"])
        self.group = None
        _state, visible = await _snapshot(self.scope.get("user"), self.lot_id)
        if not visible:
            await self.close(code=4404)
            return
        await self.accept()
        # Join this process's hub first, then read the snapshot: no update falls in between
        # (one that lands twice is older than the snapshot and the client drops it by its sequence).
        self.group = f"lot.{self.lot_id}"
        await hub.join(self.group, self)
        state, _visible = await _snapshot(self.scope.get("user"), self.lot_id)
        await self.send_json({"type": "snapshot", "state": state})

    async def disconnect(self, code):
        if self.group:
            await hub.leave(self.group, self)

    async def receive_json(self, content, **kwargs):
        kind = content.get("type")
        if kind == "ping":
            await self.send_json({"type": "pong"})
        elif kind == "snapshot":  # a client that saw a gap asks again
            await self.hub_resync()

    async def hub_resync(self):
        """A fresh snapshot: asked by the client after a gap, or sent by the hub after it lost Redis."""
        state, _visible = await _snapshot(self.scope.get("user"), self.lot_id)
        await self.send_json({"type": "snapshot", "state": state})
