"""What a received request is made of besides its environ keys.

The body is read in full by the connection's greenthread, within
``max_content_length`` (see :mod:`nameko_like.web.parser`), and handed to
WSGI as an in-memory stream: a slow or broken upload therefore never holds
(or even reaches) a service worker.
"""

from __future__ import annotations

import io
import socket
from collections.abc import Callable

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
    client socket. Made as a ``BytesIO`` of the body, without a constructor
    of its own (one is made per request): the parser then sets :attr:`sock`
    and :attr:`release`.
    """

    # (slots: no attribute dictionary made per request)
    __slots__ = ("release", "sock")

    #: the client socket
    sock: socket.socket | None
    #: called before :meth:`get_socket` hands the socket over
    release: Callable[[], object] | None

    def get_socket(self) -> socket.socket:
        """The client socket, for code that takes the connection over (a websocket).

        The server stops watching the socket for its next request first,
        as eventlet lets one greenthread at a time wait to read a socket.
        """
        if self.release is not None:
            self.release()
        return self.sock  # type: ignore[return-value]
