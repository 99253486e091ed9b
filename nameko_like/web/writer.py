"""Writing a WSGI application's response to the client.

This replaces eventlet.wsgi's response writer (``handle_one_response``),
which rebuilds several closures, re-capitalises every header name and
formats the date for every request. Here a whole response whose body is a
list (what werkzeug returns) goes out in one ``send``; streamed bodies are
sent as they come, chunked when their length is unknown.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterable
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

from nameko_like._eventlet import eventlet
import eventlet.wsgi  # after _eventlet silenced its import warning

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import WSGIApplication, WSGIEnvironment

_log = logging.getLogger(__name__)

#: ``[second, its formatted date]``, shared by every response of the process.
_date_cache: list[Any] = [0, ""]


def http_date() -> str:
    """The current time as an HTTP ``Date`` value, formatted once a second."""
    now = int(time.time())
    if now != _date_cache[0]:
        _date_cache[:] = [now, formatdate(now, usegmt=True)]
    date: str = _date_cache[1]
    return date


class _Response:
    """The state of one response while the application produces it."""

    __slots__ = (
        "bodyless", "chunked", "head_sent", "headers", "length",
        "protocol", "status", "written",
    )

    def __init__(self, protocol: ResponseWriter) -> None:
        self.protocol = protocol
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.head_sent = False
        self.chunked = False
        self.length: int | None = None
        self.written = 0
        self.bodyless = protocol.command == "HEAD"

    def start_response(self, status: str, headers: list[tuple[str, str]],
                       exc_info: OptExcInfo | None = None) -> Callable[[bytes], object]:
        """The WSGI ``start_response`` callable."""
        if exc_info is not None and self.head_sent:
            error = exc_info[1]
            if error is None:
                raise TypeError("start_response after the head was sent, with an empty exc_info")
            raise error.with_traceback(exc_info[2])
        self.status = status
        self.headers = headers
        return self.write

    def _head(self, body_length: int | None) -> bytes:
        """The status line and headers; ``body_length`` is known up front or None."""
        protocol = self.protocol
        status = self.status
        if status is None:
            raise AssertionError("the application sent a body before calling start_response")
        code = int(status[:3])
        if code < 200 or code in (204, 304):
            self.bodyless = True
        lines = [protocol.protocol_version, " ", status, "\r\n"]
        has_date = False
        for name, value in self.headers:
            lowered = name.lower()
            if lowered == "content-length":
                self.length = int(value)
            elif lowered == "date":
                has_date = True
            elif lowered == "connection" and "close" in value.lower():
                protocol.close_connection = True
            lines += (name, ": ", str(value), "\r\n")
        # Lines the application gave (status and headers), then ours.
        expected_lines = 1 + len(self.headers)
        if not has_date:
            lines += ("Date: ", http_date(), "\r\n")
            expected_lines += 1
        if self.length is None and not self.bodyless:
            if body_length is not None:
                self.length = body_length
                lines += ("Content-Length: ", str(body_length), "\r\n")
                expected_lines += 1
            elif protocol.request_version == "HTTP/1.1":
                self.chunked = True
                lines.append("Transfer-Encoding: chunked\r\n")
                expected_lines += 1
            else:
                protocol.close_connection = True  # the end of the body is the end of the stream
        if protocol.conn_state[2] == eventlet.wsgi.STATE_CLOSE:
            protocol.close_connection = True
        if protocol.close_connection:
            lines.append("Connection: close\r\n")
            expected_lines += 1
        elif protocol.request_version == "HTTP/1.0":
            lines.append("Connection: keep-alive\r\n")
            expected_lines += 1
        lines.append("\r\n")
        head = "".join(lines)
        # Every line ends with the one CRLF put there: a CR or LF inside the
        # status or a header would let the application inject headers.
        if head.count("\n") != expected_lines + 1 or head.count("\r") != expected_lines + 1:
            raise ValueError("line break inside the response status or a header")
        self.head_sent = True
        return head.encode("latin-1")

    def write(self, data: bytes) -> None:
        """Send part of the body (also the legacy WSGI ``write`` callable)."""
        if isinstance(data, str):
            data = data.encode("latin-1")
        out = b"" if self.head_sent else self._head(None)
        if data and not self.bodyless:
            self.written += len(data)
            out += b"%x\r\n%s\r\n" % (len(data), data) if self.chunked else data
        if out:
            self.protocol.connection.sendall(out)

    def send_whole(self, body: bytes) -> None:
        """Send the head and a body known in full, in one go."""
        out = self._head(len(body))
        if not self.bodyless:
            self.written = len(body)
            out += body
        self.protocol.connection.sendall(out)

    def finish(self) -> None:
        """Complete a streamed body."""
        if not self.head_sent:
            self.send_whole(b"")
        elif self.chunked:
            self.protocol.connection.sendall(b"0\r\n\r\n")
        if self.length is not None and not self.bodyless and self.written < self.length:
            # The client still waits for bytes that will never come.
            self.protocol.close_connection = True


def _taken_over() -> bool:
    # eventlet.websocket flags (in a greenthread-local) a connection it took
    # over. Read only when the application never called start_response, as
    # these locals are slow; no reset is needed: such a connection is over.
    return getattr(eventlet.wsgi.WSGI_LOCAL, "already_handled", False)


def _join(parts: list[bytes | str]) -> bytes:
    if len(parts) == 1 and isinstance(parts[0], bytes):
        return parts[0]
    return b"".join(part.encode("latin-1") if isinstance(part, str) else part for part in parts)


class ResponseWriter:
    """Mixin for :class:`~nameko_like.web.protocol.HttpProtocol`: runs the
    WSGI application and writes its response.

    An application error before the head is sent is answered with an empty
    500 (the traceback goes to the log only); after, the connection is closed.
    """

    # Provided by the protocol class this is mixed into (declared, not set).
    environ: WSGIEnvironment
    application: WSGIApplication
    requestline: str
    command: str
    protocol_version: str
    request_version: str
    close_connection: bool
    #: eventlet's ``[client address, socket, STATE_*]`` of the connection
    conn_state: list[Any]
    connection: socket.socket

    def handle_one_response(self) -> None:
        """Call the application with ``self.environ`` and send its response."""
        environ = self.environ
        response = _Response(self)
        result: Iterable[bytes] | None = None
        try:
            result = self.application(environ, response.start_response)
            if response.status is None and _taken_over():
                # eventlet.websocket answered on the socket itself, and
                # closed the connection when it was done.
                self.close_connection = True
                return
            if isinstance(result, list):
                response.send_whole(_join(result))
            else:
                for data in result:
                    if data:
                        response.write(data)
                response.finish()
        except OSError:
            raise
        except Exception:  # noqa: BLE001 - an application error is answered, never raised
            _log.exception("error in the WSGI application for %r", self.requestline)
            self.close_connection = True
            if not response.head_sent:
                response.start_response("500 Internal Server Error", [("Content-Length", "0")])
                response.send_whole(b"")
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
            for hook, args, kwargs in environ["eventlet.posthooks"]:
                hook(environ, *args, **kwargs)
