"""What a received request is made of besides its environ keys.

The body is read in full by the connection's greenthread, within
``max_content_length`` (see :mod:`nameko_like.web.parser`), and handed to
WSGI as an in-memory stream: a slow or broken upload therefore never holds
(or even reaches) a service worker.
"""

from __future__ import annotations

import io
import socket

from nameko_like.exceptions import RequestError


class RequestRejected(RequestError):
    """A request the server answers itself, without running the application."""

    def __init__(self, status: int, detail: str) -> None:
        self.status = status
        self.detail = detail
        super().__init__(status, detail)


class RequestBody(io.BytesIO):
    """A request body received in full, served to WSGI as ``wsgi.input``.

    Also ``eventlet.input``, through which eventlet.websocket finds the
    client socket.
    """

    def __init__(self, data: bytes, sock: socket.socket) -> None:
        super().__init__(data)
        self._sock = sock

    def get_socket(self) -> socket.socket:
        """The client socket."""
        return self._sock
