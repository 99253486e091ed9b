"""Reading one connection's requests off its socket, in time.

:class:`RequestReader` receives bytes and feeds them to the
:class:`~nameko_like.web.parser.RequestParser`, under three clocks:

* a connection waiting for a request to begin (new, or kept alive between
  requests) gets ``idle_timeout``, after which it is closed silently;
* once a request began, its whole head must arrive within
  ``request_timeout`` (one deadline, so a slow-loris client trickling a
  byte at a time is answered 408 and disconnected);
* each read of a body may wait ``request_timeout`` (then 408).

The body is read in full before the application runs, so a slow upload
holds this connection's greenthread, never a service worker.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from nameko_like._eventlet import eventlet
from nameko_like.web.body import RequestRejected
from nameko_like.web.parser import RequestParser

import eventlet.wsgi  # after _eventlet silenced its import warning

if TYPE_CHECKING:
    import socket

    from _typeshed.wsgi import WSGIEnvironment

    from nameko_like.web.limits import RequestLimits

#: Bytes asked of the socket at once (a few pipelined requests, or a body part).
RECEIVE_SIZE = 65536


class RequestReader:
    """Yields the environs of the requests one client sends.

    Args:
        sock: the client socket.
        limits: size and time limits of a request.
        base_environ: environ keys all the connection's requests share.
        state: the connection's ``[address, socket, STATE_*]``; set to
            ``STATE_REQUEST`` while a request is being received.
    """

    def __init__(self, sock: socket.socket, limits: RequestLimits,
                 base_environ: WSGIEnvironment, state: list[Any]) -> None:
        self.sock = sock
        self.limits = limits
        self.state = state
        self.parser = RequestParser(limits, sock, base_environ)

    def next_request(self) -> WSGIEnvironment | None:
        """The next request's environ, or None once the client is done.

        Raises :class:`~nameko_like.web.body.RequestRejected` for a request
        to refuse (malformed, too large, too slow), and ``OSError`` if the
        connection fails.
        """
        parser = self.parser
        while True:
            if parser.ready:
                return parser.ready.popleft()
            if parser.error is not None:
                raise parser.error
            if parser.upgraded:
                return None  # the bytes that follow are another protocol's
            data = self._receive()
            if not data:
                if parser.in_body:
                    raise RequestRejected(400, "request body cut short")
                if parser.started is not None:
                    raise RequestRejected(400, "request head cut short")
                return None
            parser.feed(data)

    def _receive(self) -> bytes:
        parser, limits, sock = self.parser, self.limits, self.sock
        if parser.in_body:
            timeout = limits.request_timeout
        elif parser.started is not None:
            self.state[2] = eventlet.wsgi.STATE_REQUEST
            timeout = parser.started + limits.request_timeout - time.monotonic()
            if timeout <= 0:
                raise RequestRejected(408, "the request was not received in time")
        else:
            timeout = limits.idle_timeout
        sock.settimeout(timeout)
        try:
            return sock.recv(RECEIVE_SIZE)
        except TimeoutError:
            if parser.in_body:
                raise RequestRejected(408, "the request body was not received in time") from None
            if parser.started is not None:
                raise RequestRejected(408, "the request was not received in time") from None
            # Only a client that started a request is owed an answer; an
            # idle connection is just closed.
            return b""
        finally:
            sock.settimeout(limits.request_timeout)
