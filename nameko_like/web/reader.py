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

A plain (not TLS) green socket is read directly from its non-blocking OS
socket, and waited on with a :class:`~nameko_like.web.read_watch.ReadWatch`
(a registration and a timer kept from one wait to the next); any other
socket through its own ``recv`` under a socket time-out.
"""

from __future__ import annotations

import errno
import time
from typing import TYPE_CHECKING, Any

from nameko_like._eventlet import eventlet
from nameko_like.web.body import RequestRejected
from nameko_like.web.parser import RequestParser
from nameko_like.green_sockets import raw_socket
from nameko_like.web.read_watch import ReadWatch

import eventlet.wsgi  # after _eventlet silenced its import warning

if TYPE_CHECKING:
    import socket

    from _typeshed.wsgi import WSGIEnvironment

    from nameko_like.web.limits import RequestLimits

#: Bytes asked of the socket at once (a few pipelined requests, or a body part).
RECEIVE_SIZE = 65536
# Errors of a recv that mean the peer is gone: the end of the input, not an
# error to log (ENOTCONN and ESHUTDOWN after a shutdown on our side).
_CLOSED_ERRNOS = frozenset((errno.ECONNRESET, errno.ENOTCONN, errno.ESHUTDOWN))


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
        self._raw = raw_socket(sock)
        #: the kept wait of a socket read directly (None: read through ``sock``)
        self.watch = ReadWatch(sock) if self._raw is not None else None
        #: how many times the reader waited for the client (it then let
        #: the other greenthreads run)
        self.waits = 0
        self.parser = RequestParser(limits, sock, base_environ, self.release)

    def release(self) -> None:
        """Let other code read the socket (eventlet's waits): drop the kept wait."""
        if self.watch is not None:
            self.watch.close()

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
            data = self._receive() if self._raw is not None else self._receive_green()
            if not data:
                if parser.in_body:
                    raise RequestRejected(400, "request body cut short")
                if parser.started is not None:
                    raise RequestRejected(400, "request head cut short")
                return None
            parser.feed(data)

    def _deadline(self) -> float:
        """When the wait about to start gives up (``time.monotonic``)."""
        parser, limits = self.parser, self.limits
        if parser.in_body:
            # a body on its way is a request, not an idle connection (a
            # stopping server must let it finish), even when the head came
            # without a wait
            self.state[2] = eventlet.wsgi.STATE_REQUEST
            return time.monotonic() + limits.request_timeout
        if parser.started is not None:
            self.state[2] = eventlet.wsgi.STATE_REQUEST
            return parser.started + limits.request_timeout
        return time.monotonic() + limits.idle_timeout

    def _timed_out(self) -> bytes:
        parser = self.parser
        if parser.in_body:
            raise RequestRejected(408, "the request body was not received in time")
        if parser.started is not None:
            raise RequestRejected(408, "the request was not received in time")
        # Only a client that started a request is owed an answer; an idle
        # connection is just closed.
        return b""

    def _receive(self) -> bytes:
        raw = self._raw
        deadline = None
        while True:
            try:
                return raw.recv(RECEIVE_SIZE)  # type: ignore[no-any-return]
            except BlockingIOError:
                pass
            except OSError as exc:
                if exc.errno in _CLOSED_ERRNOS:
                    return b""
                raise
            if deadline is None:
                deadline = self._deadline()
            self.waits += 1
            if deadline <= time.monotonic() or not self.watch.wait(deadline):  # type: ignore[union-attr]
                return self._timed_out()

    def _receive_green(self) -> bytes:
        parser, limits, sock = self.parser, self.limits, self.sock
        if parser.in_body:
            self.state[2] = eventlet.wsgi.STATE_REQUEST  # (see _deadline)
            timeout = limits.request_timeout
        elif parser.started is not None:
            self.state[2] = eventlet.wsgi.STATE_REQUEST
            timeout = parser.started + limits.request_timeout - time.monotonic()
            if timeout <= 0:
                return self._timed_out()
        else:
            timeout = limits.idle_timeout
        sock.settimeout(timeout)
        try:
            return sock.recv(RECEIVE_SIZE)
        except TimeoutError:
            return self._timed_out()
        finally:
            sock.settimeout(limits.request_timeout)
