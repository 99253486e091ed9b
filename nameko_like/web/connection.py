"""One websocket client connection and the frames pushed to it.

Used by :mod:`nameko_like.web.websocket` (which re-exports
:class:`Connection`) and :mod:`nameko_like.web.hub`.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterable
from typing import Any

from nameko_like._eventlet import eventlet

_log = logging.getLogger(__name__)


def event_frame(event: str, data: Any) -> str:
    """The JSON frame that pushes ``event`` with ``data`` to a client."""
    return json.dumps({"type": "event", "event": event, "data": data})


def kill_all(threads: Iterable[Any]) -> None:
    """Kill every one of ``threads``, even if the caller is killed meanwhile.

    ``GreenThread.kill()`` switches to the victim and resumes the caller
    later, so the caller can itself be killed inside it; that error is
    re-raised once every thread has been killed.
    """
    interrupted = None
    for thread in list(threads):
        try:
            thread.kill()
        except BaseException as exc:  # noqa: BLE001 - re-raised once all are killed
            interrupted = interrupted or exc
    if interrupted is not None:
        raise interrupted


class Connection:
    """One connected websocket client.

    Frames to the client go through a bounded outbox drained by a writer
    greenthread, so pushing to a slow client never blocks the pusher; a
    client that lets its outbox fill up is disconnected.
    """

    #: Frames queued for one client before it is considered stuck.
    outbox_size = 1000

    def __init__(self, socket_id: str, ws: Any, context_data: dict[str, Any]) -> None:
        self.socket_id = socket_id
        self.ws = ws
        self.context_data = context_data
        self.subscriptions: set[str] = set()
        self.outbox: Any = eventlet.queue.LightQueue()
        self.closed = False

    def send(self, frame: str) -> bool:
        """Queue ``frame`` for the client; ``False`` if it is (now) closed."""
        if self.closed:
            return False
        if self.outbox.qsize() >= self.outbox_size:
            _log.warning("websocket %s is not reading its frames; disconnecting it", self.socket_id)
            self.close(force=True)
            return False
        self.outbox.put(frame)
        return True

    def stop_reading(self) -> None:
        """End the client's frames; calls in flight still get their answers."""
        self._shutdown(socket.SHUT_RD)

    def close(self, force: bool = False) -> None:
        """Send nothing more after what is queued, and let the writer end.

        With ``force`` (a client that stopped reading, whose sends could
        block forever) the queue is dropped and the socket shut at once.
        """
        if not self.closed:
            self.closed = True
            self.outbox.put(None)
        if force:
            self._shutdown(socket.SHUT_RDWR)

    def _shutdown(self, how: int) -> None:
        try:
            self.ws.socket.shutdown(how)
        except OSError:
            pass

    def write_loop(self) -> None:
        """Send queued frames until the connection closes."""
        while True:
            frame = self.outbox.get()
            if frame is None:
                return
            try:
                self.ws.send(frame)
            except OSError:
                self.close(force=True)
                return
