"""Running the WSGI application for a request and writing its response.

A whole response whose body is a list (what werkzeug returns) goes out in
one ``send``; streamed bodies are sent as they come, chunked when their
length is unknown. Unlike eventlet.wsgi's writer, nothing is rebuilt per
request (closures, header capitalisation, the date string).
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterable
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

from nameko_like._eventlet import eventlet
from nameko_like.green_sockets import raw_socket, send_all
import eventlet.wsgi  # after _eventlet silenced its import warning

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import WSGIApplication, WSGIEnvironment

_log = logging.getLogger(__name__)

_REASONS = {
    400: "Bad Request",
    408: "Request Timeout",
    413: "Content Too Large",
    414: "URI Too Long",
    417: "Expectation Failed",
    431: "Request Header Fields Too Large",
    501: "Not Implemented",
    505: "HTTP Version Not Supported",
}

#: ``[second, its Date header line]``, shared by every response of the process.
_date_cache: list[Any] = [0, ""]
#: Whether a response with each status seen has no body (1xx, 204, 304).
_bodyless_statuses: dict[str, bool] = {}
#: Response header names (lowered) the writer reads.
_READ_HEADERS = frozenset(("content-length", "date", "connection"))
_STATE_CLOSE = eventlet.wsgi.STATE_CLOSE


def http_date() -> str:
    """The current time as an HTTP ``Date`` value, formatted once a second."""
    return _date_line()[6:-2]


def _date_line() -> str:
    now = int(time.time())
    if now != _date_cache[0]:
        _date_cache[:] = [now, f"Date: {formatdate(now, usegmt=True)}\r\n"]
    line: str = _date_cache[1]
    return line


def _is_bodyless(status: str) -> bool:
    bodyless = _bodyless_statuses.get(status)
    if bodyless is None:
        code = int(status[:3])
        bodyless = code < 200 or code in (204, 304)
        if len(_bodyless_statuses) < 256:  # (an application may make up reasons)
            _bodyless_statuses[status] = bodyless
    return bodyless


class _Response:
    """The state of one response while the application produces it."""

    __slots__ = (
        "bodyless", "chunked", "close", "head_sent", "headers", "length",
        "protocol", "status", "version", "written",
    )

    def __init__(self, protocol: ResponseWriter, method: str, version: str,
                 close: bool) -> None:
        self.protocol = protocol
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.head_sent = False
        self.chunked = False
        self.length: int | None = None
        self.written = 0
        self.bodyless = method == "HEAD"
        self.version = version
        #: Whether the connection ends after this response.
        self.close = close

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
        status = self.status
        if status is None:
            raise AssertionError("the application sent a body before calling start_response")
        if type(status) is not str:
            # the f-strings below would write b'200 OK' into the head
            raise TypeError(f"a WSGI status is a str, got {status!r}")
        bodyless = _bodyless_statuses.get(status)
        if bodyless is None:
            bodyless = _is_bodyless(status)
        if bodyless:
            self.bodyless = True
        # One item per line, each ending with the one CRLF put there.
        lines = [f"HTTP/1.1 {status}\r\n"]
        has_date = False
        for name, value in self.headers:
            if type(name) is not str or type(value) is not str:
                raise TypeError(f"WSGI header names and values are str, got {name!r}: {value!r}")
            lines.append(f"{name}: {value}\r\n")
            lowered = name.lower()
            if lowered in _READ_HEADERS:
                if lowered == "content-length":
                    self.length = int(value)
                elif lowered == "date":
                    has_date = True
                elif "close" in value.lower():
                    self.close = True
        if not has_date:
            date = _date_cache
            lines.append(date[1] if int(time.time()) == date[0] else _date_line())
        if self.length is None and not self.bodyless:
            if body_length is not None:
                self.length = body_length
                lines.append(f"Content-Length: {body_length}\r\n")
            elif self.version == "HTTP/1.1":
                self.chunked = True
                lines.append("Transfer-Encoding: chunked\r\n")
            else:
                self.close = True  # the end of the body is the end of the stream
        if self.close or self.protocol.state[2] == _STATE_CLOSE:
            self.close = True
            lines.append("Connection: close\r\n")
        elif self.version == "HTTP/1.0":
            lines.append("Connection: keep-alive\r\n")
        lines.append("\r\n")
        head = "".join(lines)
        # A CR or LF inside the status or a header would let the
        # application inject headers: exactly one of each per line.
        if head.count("\n") != len(lines) or head.count("\r") != len(lines):
            raise ValueError("line break inside the response status or a header")
        self.head_sent = True
        return head.encode("latin-1")

    def write(self, data: bytes) -> None:
        """Send part of the body (also the legacy WSGI ``write`` callable)."""
        if isinstance(data, str):
            data = data.encode("latin-1")
        out = b"" if self.head_sent else self._head(None)
        if data and not self.bodyless:
            if self.length is not None and self.written + len(data) > self.length:
                # More than the application's Content-Length: the rest would
                # be read as the next response on a kept-alive connection.
                data = data[:max(self.length - self.written, 0)]
                self.close = True
            self.written += len(data)
            out += b"%x\r\n%s\r\n" % (len(data), data) if self.chunked else data
        if out:
            self.protocol.send(out)

    def send_whole(self, body: bytes) -> None:
        """Send the head and a body known in full, in one go."""
        out = self._head(len(body))
        if not self.bodyless:
            self.written = len(body)
            out += body
        self.protocol.send(out)

    def finish(self) -> None:
        """Complete a streamed body."""
        if not self.head_sent:
            self.send_whole(b"")
        elif self.chunked:
            self.protocol.send(b"0\r\n\r\n")
        if self.length is not None and not self.bodyless and self.written < self.length:
            # The client still waits for bytes that will never come.
            self.close = True


def _taken_over() -> bool:
    # eventlet.websocket flags (in a greenthread-local) a connection it took
    # over. Read only when the application never called start_response, as
    # these locals are slow; no reset is needed: such a connection is over.
    return getattr(eventlet.wsgi.WSGI_LOCAL, "already_handled", False)


def _join(parts: list[bytes | str]) -> bytes:
    return b"".join(part.encode("latin-1") if isinstance(part, str) else part for part in parts)


class ResponseWriter:
    """Runs the WSGI application for each request of a connection and
    writes the responses to its socket.

    Args:
        sock: the client socket.
        state: the connection's ``[address, socket, STATE_*]``: once the
            server marks it ``STATE_CLOSE`` (it is stopping), responses say
            ``Connection: close``.

    An application error before the head is sent is answered with an empty
    500 (the traceback goes to the log only); after, the connection is closed.
    """

    def __init__(self, sock: socket.socket, state: list[Any]) -> None:
        self.sock = sock
        self.state = state
        # eventlet's green socket wraps a non-blocking socket: a response
        # the socket buffer takes at once goes straight to it, without the
        # green socket's layers (a time-out exception made per send, ...).
        # (Only a plain green socket: a TLS one must encrypt what it sends.)
        self._raw: Any = raw_socket(sock)

    def send(self, data: bytes) -> None:
        """Send all of ``data``, waiting (green) only if the socket buffer is full."""
        send_all(self._raw, self.sock, data)

    def respond(self, application: WSGIApplication, environ: WSGIEnvironment,
                keep_alive: bool) -> bool:
        """Answer the request of ``environ``; whether the connection may serve another."""
        response = _Response(self, environ["REQUEST_METHOD"], environ["SERVER_PROTOCOL"],
                             not keep_alive)
        result: Iterable[bytes] | None = None
        try:
            result = application(environ, response.start_response)
            if response.status is None and _taken_over():
                # eventlet.websocket answered on the socket itself, and
                # closed the connection when it was done.
                return False
            if isinstance(result, list):
                # (send_whole's work, inlined: this is every @http response's path)
                body = result[0] if len(result) == 1 and type(result[0]) is bytes \
                    else _join(result)
                out = response._head(len(body))
                if not response.bodyless:
                    if response.length != len(body):
                        # The application's Content-Length is wrong: send no
                        # more than it said, and end the connection (the
                        # client would otherwise wait for, or misread, bytes).
                        body = body[:response.length]
                        response.close = True
                    response.written = len(body)
                    out += body
                self.send(out)
            else:
                for data in result:
                    if data:
                        response.write(data)
                response.finish()
        except OSError:
            raise
        except Exception:  # noqa: BLE001 - an application error is answered, never raised
            _log.exception("error in the WSGI application for %r", request_line(environ))
            response.close = True
            if not response.head_sent:
                response.start_response("500 Internal Server Error", [("Content-Length", "0")])
                response.send_whole(b"")
        finally:
            # (no getattr on a plain list: a missing attribute costs an
            # exception made and dropped, per request)
            if type(result) is not list:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
            hooks = environ["eventlet.posthooks"]
            if hooks:
                for hook, args, kwargs in hooks:
                    hook(environ, *args, **kwargs)
        return not response.close

    def write_error(self, status: int, detail: str) -> None:
        """Answer a refused request with a short plain-text error, and end."""
        reason = _REASONS.get(status, "Error")
        body = f"{status} {reason}: {detail}\n".encode("latin-1")
        self.sock.sendall(
            b"HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
            % (status, reason.encode("ascii"), len(body), body)
        )


def request_line(environ: WSGIEnvironment) -> str:
    """``GET /path?query HTTP/1.1`` of a request, for logs."""
    query = environ.get("QUERY_STRING")
    target = environ.get("RAW_PATH_INFO", "") + ("?" + query if query else "")
    return f"{environ.get('REQUEST_METHOD')} {target} {environ.get('SERVER_PROTOCOL')}"
