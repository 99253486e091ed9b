"""One client connection of the HTTP engine: read a request, answer it, repeat.

:class:`HttpConnection` joins a :class:`~nameko_like.web.reader.RequestReader`
and a :class:`~nameko_like.web.writer.ResponseWriter` over the same socket
and serves requests in order (keep-alive, pipelining) until the client or
the server closes, a request is refused, or the connection switches to
another protocol (a websocket).
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from nameko_like._eventlet import eventlet
from nameko_like.web.body import RequestRejected
from nameko_like.web.reader import RequestReader
from nameko_like.web.writer import ResponseWriter, request_line

import eventlet.wsgi  # after _eventlet silenced its import warning

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from nameko_like.web.limits import RequestLimits

_log = logging.getLogger(__name__)
#: Access log: one INFO line per request (client, request line, status,
#: seconds). Silence it by setting this logger's level to WARNING; a
#: disabled logger costs one level check per request.
access_log = logging.getLogger("nameko_like.web.access")
#: Requests a connection is answered in a row, without waiting for the
#: client in between, before the other connections' greenthreads get a turn
#: (their own requests in between).
REQUESTS_PER_TURN = 4
STATE_IDLE = eventlet.wsgi.STATE_IDLE
STATE_REQUEST = eventlet.wsgi.STATE_REQUEST
STATE_CLOSE = eventlet.wsgi.STATE_CLOSE


def connection_environ(state: list[Any], base: WSGIEnvironment) -> WSGIEnvironment:
    """The environ keys every request of the connection ``state`` shares."""
    environ = base.copy()
    sock = state[1]
    sockname = sock.getsockname()
    environ["SERVER_NAME"], environ["SERVER_PORT"] = str(sockname[0]), str(sockname[1])
    client = state[0]
    if isinstance(client, tuple):
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = str(client[0]), str(client[1])

    def set_idle() -> None:
        # A websocket never returns to the request loop; marking it idle
        # lets a stopping server shut it down like a keep-alive connection.
        state[2] = STATE_IDLE

    environ["eventlet.set_idle"] = set_idle
    return environ


class HttpConnection:
    """Serves the requests of one client connection.

    Args:
        state: the connection's ``[address, socket, STATE_*]`` (from
            :class:`~nameko_like.web.limits.ConnectionLimits`).
        application: the WSGI application.
        limits: size and time limits of a request.
        base_environ: environ keys of the server, shared by every request.
    """

    def __init__(self, state: list[Any], application: WSGIApplication, limits: RequestLimits,
                 base_environ: WSGIEnvironment) -> None:
        self.state = state
        self.sock: socket.socket = state[1]
        self.application = application
        self.limits = limits
        self.reader = RequestReader(self.sock, limits, connection_environ(state, base_environ),
                                    state)
        self.writer = ResponseWriter(self.sock, state)

    def serve(self) -> None:
        """Answer requests until the connection is to close."""
        try:
            self._serve()
        finally:
            self.reader.release()

    def _serve(self) -> None:
        state, reader, writer = self.state, self.reader, self.writer
        # Requests answered since this greenthread last let the others run.
        in_turn = 0
        waits = reader.waits
        while True:
            try:
                environ = reader.next_request()
            except RequestRejected as rejected:
                self._reject(rejected)
                return
            if environ is None:
                return
            if state[2] != STATE_CLOSE:
                # (a stopping server marked it: the answer says it closes)
                state[2] = STATE_REQUEST
            application = self.application
            if access_log.isEnabledFor(logging.INFO):
                application = _logging_app(application, time.monotonic())
            if not writer.respond(application, environ, environ["nameko_like.keep_alive"]) \
                    or state[2] == STATE_CLOSE:
                return
            state[2] = STATE_IDLE
            if reader.waits != waits:
                # it waited for this request: the others had their turn then
                waits, in_turn = reader.waits, 1
                continue
            in_turn += 1
            if in_turn >= REQUESTS_PER_TURN:
                # A client that sends its next request as soon as it has
                # the answer could keep this greenthread from ever waiting
                # on its socket, and the other connections waiting on it.
                eventlet.sleep(0)
                in_turn = 0

    def _reject(self, rejected: RequestRejected) -> None:
        _log.debug("rejected request from %s with %s: %s",
                   self.state[0], rejected.status, rejected.detail)
        try:
            self.writer.write_error(rejected.status, rejected.detail)
            self._linger()
        except OSError:
            pass

    def _linger(self) -> None:
        # Closing a socket with unread input makes the kernel send a reset,
        # which can destroy our answer before the client reads it. Stop
        # writing, then read and drop what the client still sends, briefly.
        sock = self.sock
        self.reader.release()  # read through eventlet's wait now
        sock.shutdown(socket.SHUT_WR)
        with eventlet.Timeout(self.limits.linger_seconds, False):
            while sock.recv(65536):
                pass


def _logging_app(app: WSGIApplication, started: float) -> WSGIApplication:
    """Wrap ``app`` to log one access line at INFO once it answered."""

    def logged(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        def capture(status: str, headers: list[tuple[str, str]],
                    exc_info: OptExcInfo | None = None) -> Callable[[bytes], object]:
            access_log.info(
                '%s "%s" %s %.6f', environ.get("REMOTE_ADDR"), request_line(environ),
                status.split(" ", 1)[0], time.monotonic() - started,
            )
            return start_response(status, headers, exc_info)

        return app(environ, capture)

    return logged
