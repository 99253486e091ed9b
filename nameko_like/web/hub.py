"""``WebSocketHub``: what workers use to manage and push to websocket clients.

Workers get the hub through
:class:`~nameko_like.web.websocket.WebSocketHubProvider`. Its API is
Nameko's: ``subscribe`` a socket to a channel, ``broadcast`` to a channel,
``unicast`` to one socket, and the ``subscriptions`` mapping.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nameko_like.exceptions import ConnectionNotFound
from nameko_like.web.connection import Connection, event_frame

if TYPE_CHECKING:
    from nameko_like.web.websocket import WebSocketServer


class WebSocketHub:
    """Pushes events to connected clients and manages their subscriptions.

    Only :meth:`subscribe` insists that the socket is connected (it raises
    ``ConnectionNotFound`` otherwise): a socket that is gone has no
    subscriptions, is not unsubscribed from anything, and is not reached by
    :meth:`unicast`, which says so by returning ``False``. A socket leaves
    its channels when it disconnects.
    """

    def __init__(self, server: WebSocketServer) -> None:
        self._server = server

    @property
    def subscriptions(self) -> dict[str, set[str]]:
        """``{channel: {socket_id, ...}}`` for every channel with a subscriber."""
        return self._server.channels

    @property
    def connections(self) -> dict[str, Connection]:
        """``{socket_id: Connection}`` for every connected socket."""
        return self._server.sockets

    def get_subscriptions(self, socket_id: str) -> list[str]:
        """The channels ``socket_id`` is subscribed to, sorted (none if it is gone)."""
        connection = self._server.sockets.get(socket_id)
        if connection is None:
            return []
        return sorted(connection.subscriptions)

    def subscribe(self, socket_id: str, channel: str) -> None:
        """Subscribe ``socket_id`` to ``channel``; ``ConnectionNotFound`` if it is gone."""
        connection = self._server.sockets.get(socket_id)
        if connection is None:
            raise ConnectionNotFound(socket_id)
        connection.subscriptions.add(channel)
        self._server.channels.setdefault(channel, set()).add(socket_id)

    def unsubscribe(self, socket_id: str, channel: str) -> None:
        """Unsubscribe ``socket_id`` from ``channel`` (no error if it wasn't, or is gone)."""
        connection = self._server.sockets.get(socket_id)
        if connection is not None:
            connection.subscriptions.discard(channel)
        members = self._server.channels.get(channel)
        if members is not None:
            members.discard(socket_id)
            # Unlike Nameko, which keeps it: channel names may be made up
            # per client, and empty sets would pile up.
            if not members:
                del self._server.channels[channel]

    def broadcast(self, channel: str, event: str, data: Any) -> None:
        """Push ``event`` with ``data`` to every socket subscribed to ``channel``."""
        frame = event_frame(event, data)
        for socket_id in list(self._server.channels.get(channel, ())):
            connection = self._server.sockets.get(socket_id)
            if connection is not None:
                connection.send(frame)

    def unicast(self, socket_id: str, event: str, data: Any) -> bool:
        """Push ``event`` with ``data`` to one socket; ``False`` if it is gone."""
        connection = self._server.sockets.get(socket_id)
        if connection is None:
            return False
        return connection.send(event_frame(event, data))
