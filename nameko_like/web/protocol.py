"""The HTTP/1.1 connection handler under :class:`~nameko_like.web.server.WebServer`.

eventlet.wsgi parses requests leniently: a header line without a colon is
ignored, a body cut short reaches the application truncated, a malformed
chunk size turns into a 500 (with the traceback in the response, unless its
``debug`` is off), two ``Content-Length`` headers or an unknown
``Transfer-Encoding`` leave bytes behind that are then read as a second
request, and errors on the request line are answered without a status line.
It has no deadline for a request head and no body-size limit either.

:class:`HttpProtocol` keeps eventlet's connection loop (one greenthread per
connection, keep-alive, close) and replaces the rest:

* a connection that sends nothing (new, or kept alive between requests)
  for ``idle_timeout`` is closed;
* the request line and headers are parsed strictly, within limits (URL
  length -> 414; header count and size -> 431; a second ``Host`` -> 400) and
  within one deadline for the whole head (a slow-loris client is
  disconnected);
* the body is read completely *before* the application runs, capped at
  ``max_content_length`` (:mod:`nameko_like.web.body`);
* every rejection is a short plain-text 4xx (or 505 for an unsupported HTTP
  version) with a proper status line, after which the connection is closed;
* responses are written by :mod:`nameko_like.web.writer`.
"""

from __future__ import annotations

import logging
import re
import socket
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from nameko_like._eventlet import eventlet
import eventlet.wsgi  # after _eventlet silenced its import warning

from nameko_like.constants import DEFAULT_WEB_MAX_REQUEST_CHUNKS
from nameko_like.exceptions import RequestError
from nameko_like.web.body import BodyReader, RequestRejected
from nameko_like.web.writer import ResponseWriter

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

_log = logging.getLogger(__name__)
#: Access log: one INFO line per request (client, request line, status,
#: seconds). Silence it by setting this logger's level to WARNING; a
#: disabled logger costs one level check per request.
access_log = logging.getLogger("nameko_like.web.access")

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VERSION = re.compile(rb"HTTP/([0-9])\.([0-9])")
# Control characters other than horizontal tab are never valid in a value.
_BAD_VALUE_CHAR = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# Spaces and controls are not allowed in a request target, and every "%"
# must start a two-digit hex escape.
_BAD_TARGET = re.compile(rb"[\x00-\x20\x7f]|%(?![0-9A-Fa-f]{2})")

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


class _RequestTimedOut(RequestError):
    """The client took longer than the request timeout to send its request."""


# eventlet ships no type information: its classes (bases here and of WsgiServer) are Any.
class HttpProtocol(ResponseWriter, BodyReader, eventlet.wsgi.HttpProtocol):  # type: ignore[misc]
    """Serves one client connection: strict, bounded request parsing.

    Limits are class attributes so a subclass can change them; the body
    limit and timeout come from the server (see :class:`WsgiServer`).
    """

    #: Longest request line, in bytes (longer: 414).
    max_request_line = 8192
    #: Longest single header line, in bytes (longer: 431).
    max_header_line = 8192
    #: Most header fields in one request (more: 431).
    max_header_count = 100
    #: Largest request head (request line and headers), in bytes (larger: 431).
    max_head_size = 65536
    #: Seconds spent draining a rejected upload so the client reads our answer.
    linger_seconds = 2.0

    def setup(self) -> None:
        """Prepare the connection, and the environ keys all its requests share."""
        super().setup()
        server = self.server
        environ = server.get_environ()
        sockname = self.request.getsockname()
        environ["SERVER_NAME"], environ["SERVER_PORT"] = str(sockname[0]), str(sockname[1])
        client = self.client_address
        if isinstance(client, tuple):
            environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = str(client[0]), str(client[1])
        environ["SCRIPT_NAME"] = ""
        environ["GATEWAY_INTERFACE"] = "CGI/1.1"
        environ["wsgi.input_terminated"] = True
        environ["eventlet.set_idle"] = self._set_idle
        self._connection_environ: WSGIEnvironment = environ

    def _set_idle(self) -> None:
        # A websocket never returns to the request loop; marking it idle
        # lets a stopping server shut it down like a keep-alive connection.
        self.conn_state[2] = eventlet.wsgi.STATE_IDLE

    def handle_one_request(self) -> None:
        """Read, check and answer one request on this connection."""
        self.close_connection = True
        try:
            environ = self._read_request()
        except RequestRejected as rejected:
            self._reject(rejected)
            return
        except _RequestTimedOut:
            _log.debug("closing %s: request not received in time", self.client_address)
            # (the request line may have asked for keep-alive meanwhile)
            self.close_connection = True
            return
        except OSError:
            # Reset or closed by the peer; nothing to answer.
            self.close_connection = True
            return
        if environ is None:
            return

        self.environ = environ
        self.application = self.server.app
        if access_log.isEnabledFor(logging.INFO):
            self.application = self._logging_app(self.application, time.monotonic())
        try:
            self.handle_one_response()
        except OSError:
            self.close_connection = True

    def _read_request(self) -> WSGIEnvironment | None:
        """Return the environ of the next request, or None at end of stream."""
        rfile = self.rfile
        sock = self.connection
        try:
            # Waiting for a request to start is bounded by the idle timeout
            # (an idle connection, new or kept alive, is then closed).
            sock.settimeout(self.server.idle_timeout)
            try:
                received = rfile.peek(1)
            finally:
                sock.settimeout(self.server.socket_timeout)
            if not received:
                return None
            if b"\r\n\r\n" in received:
                # The whole head is buffered: parsing it cannot block, so
                # the common case needs no timer.
                environ = self._read_head()
            else:
                environ = self._read_head_before_deadline()
        except TimeoutError:
            self._request_timed_out()
        if environ is None:
            return None
        try:
            self._read_body(environ)
        except TimeoutError:
            self._write_error(408, "the request body was not received in time")
            raise _RequestTimedOut() from None
        return environ

    def _read_head_before_deadline(self) -> WSGIEnvironment | None:
        deadline = eventlet.Timeout(self.server.request_timeout)
        try:
            return self._read_head()
        except eventlet.Timeout as exc:
            if exc is not deadline:
                raise
            self._request_timed_out()
        finally:
            deadline.cancel()
        return None  # pragma: no cover - _request_timed_out raises

    def _request_timed_out(self) -> None:
        # Only a client that started a request is owed an answer; an idle
        # keep-alive connection is just closed.
        if self.conn_state[2] == eventlet.wsgi.STATE_REQUEST:
            self._write_error(408, "the request was not received in time")
        raise _RequestTimedOut()

    def _read_head(self) -> WSGIEnvironment | None:
        rfile = self.rfile
        limit = self.max_request_line
        line = rfile.readline(limit + 1)
        # Clients may send a stray CRLF after a body; skip a few.
        for _ in range(4):
            if line not in (b"\r\n", b"\n"):
                break
            line = rfile.readline(limit + 1)
        if not line:
            return None
        self.conn_state[2] = eventlet.wsgi.STATE_REQUEST
        if len(line) > limit:
            raise RequestRejected(414, "the request line is too long")
        if not line.endswith(b"\n"):
            raise RequestRejected(400, "request line cut short")
        environ = self._parse_request_line(line)
        self._parse_headers(environ, len(line))
        return environ

    def _parse_request_line(self, line: bytes) -> WSGIEnvironment:
        parts = line.rstrip(b"\r\n").split(b" ")
        self.requestline = line.rstrip(b"\r\n").decode("latin-1")
        if len(parts) != 3:
            raise RequestRejected(400, "malformed request line")
        method, target, version = parts
        version_match = _VERSION.fullmatch(version)
        if version_match is None:
            raise RequestRejected(400, "malformed HTTP version")
        if version_match.group(1) != b"1":
            raise RequestRejected(505, "only HTTP/1.x is supported")
        if _TOKEN.fullmatch(method) is None:
            raise RequestRejected(400, "malformed method")
        if _BAD_TARGET.search(target) is not None:
            raise RequestRejected(400, "malformed request target (bad character or %-escape)")
        if not target.startswith(b"/"):
            target = self._origin_form(target, method)

        self.command = method.decode("ascii")
        # HTTP/1.2 and later minors are answered as 1.1 (RFC 9110 2.5).
        self.request_version = "HTTP/1.0" if version_match.group(2) == b"0" else "HTTP/1.1"
        self.path = target.decode("latin-1")
        # HTTP/1.1 keeps the connection unless asked to close; 1.0 the reverse.
        self.close_connection = version_match.group(2) == b"0"

        environ = self._connection_environ.copy()
        environ["REQUEST_METHOD"] = self.command
        environ["SERVER_PROTOCOL"] = self.request_version
        path, _, query = self.path.partition("?")
        environ["RAW_PATH_INFO"] = path
        environ["PATH_INFO"] = unquote(path, encoding="latin-1")
        environ["QUERY_STRING"] = query
        return environ

    @staticmethod
    def _origin_form(target: bytes, method: bytes) -> bytes:
        # Absolute form ("http://host/path") must be accepted (RFC 9112 3.2.2);
        # "*" only means something to OPTIONS.
        if target == b"*" and method == b"OPTIONS":
            return target
        scheme, sep, rest = target.partition(b"://")
        if sep and scheme.lower() in (b"http", b"https"):
            slash = rest.find(b"/")
            return rest[slash:] if slash >= 0 else b"/"
        raise RequestRejected(400, "malformed request target")

    def _parse_headers(self, environ: WSGIEnvironment, head_size: int) -> None:
        readline = self.rfile.readline
        line_limit = self.max_header_line
        count = 0
        lengths: list[bytes] = []
        hosts = 0
        while True:
            line = readline(line_limit + 1)
            head_size += len(line)
            if len(line) > line_limit or head_size > self.max_head_size:
                raise RequestRejected(431, "request headers too large")
            if line in (b"\r\n", b"\n"):
                break
            if not line.endswith(b"\n"):
                raise RequestRejected(400, "request head cut short")
            count += 1
            if count > self.max_header_count:
                raise RequestRejected(431, "too many request headers")
            name, colon, value = line.partition(b":")
            if not colon or _TOKEN.fullmatch(name) is None:
                # Also rejects obs-fold continuation lines, which start with
                # whitespace: RFC 9112 lets a server refuse them.
                raise RequestRejected(400, "malformed header line")
            value = value.strip(b" \t\r\n")
            if _BAD_VALUE_CHAR.search(value) is not None:
                raise RequestRejected(400, "invalid character in a header value")
            if b"_" in name:
                # "X_Foo" and "X-Foo" would share an environ key: drop the
                # underscore form (as eventlet, gunicorn and nginx do).
                continue
            key = name.decode("ascii").upper().replace("-", "_")
            text = value.decode("latin-1")
            if key == "CONTENT_LENGTH":
                lengths.append(value)
                continue
            if key == "HOST":
                # RFC 9112 3.2: more than one Host header is a 400.
                hosts += 1
                if hosts > 1:
                    raise RequestRejected(400, "more than one Host header")
            if key != "CONTENT_TYPE":
                key = "HTTP_" + key
            previous = environ.get(key)
            environ[key] = text if previous is None else previous + "," + text
        if lengths:
            environ["CONTENT_LENGTH"] = self._content_length(lengths)
        # eventlet (so Nameko) reports a request without Content-Type as
        # text/plain, the MIME default; ported handlers may rely on it.
        environ.setdefault("CONTENT_TYPE", "text/plain")
        if self.request_version == "HTTP/1.1" and "HTTP_HOST" not in environ:
            raise RequestRejected(400, "HTTP/1.1 requests must have a Host header")
        connection = environ.get("HTTP_CONNECTION")
        if connection is not None:
            tokens = connection.lower()
            if "close" in tokens:
                self.close_connection = True
            elif "keep-alive" in tokens:
                self.close_connection = False

    def _reject(self, rejected: RequestRejected) -> None:
        _log.debug(
            "rejected request from %s with %s: %s",
            self.client_address, rejected.status, rejected.detail,
        )
        try:
            self._write_error(rejected.status, rejected.detail)
            self._linger()
        except OSError:
            pass
        self.close_connection = True

    def _write_error(self, status: int, detail: str) -> None:
        reason = _REASONS.get(status, "Error")
        body = f"{status} {reason}: {detail}\n".encode("latin-1")
        self.wfile.write(
            b"HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
            % (status, reason.encode("ascii"), len(body), body)
        )
        self.wfile.flush()

    def _linger(self) -> None:
        # Closing a socket with unread input makes the kernel send a reset,
        # which can destroy our answer before the client reads it. Stop
        # writing, then read and drop what the client still sends, briefly.
        sock = self.connection
        sock.shutdown(socket.SHUT_WR)
        with eventlet.Timeout(self.linger_seconds, False):
            while sock.recv(65536):
                pass

    def _logging_app(self, app: WSGIApplication, started: float) -> WSGIApplication:
        """Wrap ``app`` to log one access line at INFO once it answered."""

        def logged(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            def capture(status: str, headers: list[tuple[str, str]],
                        exc_info: OptExcInfo | None = None) -> Callable[[bytes], object]:
                access_log.info(
                    '%s "%s" %s %.6f', environ.get("REMOTE_ADDR"), self.requestline,
                    status.split(" ", 1)[0], time.monotonic() - started,
                )
                return start_response(status, headers, exc_info)

            return app(environ, capture)

        return logged


class WsgiServer(eventlet.wsgi.Server):  # type: ignore[misc]
    """eventlet's WSGI server object with our protocol and limits.

    Args:
        sock: the listening socket.
        app: the WSGI application.
        max_content_length: largest accepted request body, in bytes.
        request_timeout: seconds a client has to send a request head, and the
            longest any one socket read or write may block.
        protocol: the connection handler class.
        idle_timeout: seconds a connection may wait for the first byte of a
            request (default: ``request_timeout``).
        max_chunks: most chunks in a chunked request body.
    """

    def __init__(self, sock: socket.socket, app: WSGIApplication, max_content_length: int,
                 request_timeout: float, protocol: type = HttpProtocol,
                 idle_timeout: float | None = None,
                 max_chunks: int = DEFAULT_WEB_MAX_REQUEST_CHUNKS) -> None:
        super().__init__(
            sock, sock.getsockname(), app,
            protocol=protocol,
            # No traceback in any response; access lines are ours, at INFO.
            debug=False,
            log_output=False,
            socket_timeout=request_timeout,
        )
        self.max_content_length = max_content_length
        self.request_timeout = request_timeout
        self.idle_timeout = request_timeout if idle_timeout is None else idle_timeout
        self.max_chunks = max_chunks
        # eventlet reports an application that raised through .info();
        # with log_output off that would be silenced.
        self.log = _EventletLog()


class _EventletLog:
    """Where eventlet.wsgi reports its own errors: our logger, never stderr."""

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
        _log.error(msg, *args)

    def error(self, msg: str, *args: Any, **kwargs: Any) -> None:
        _log.error(msg, *args)

    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None:
        _log.debug(msg, *args)

    def write(self, msg: str, *args: Any) -> None:
        _log.debug(msg, *args)
