"""Turning the bytes of HTTP/1.x requests into WSGI environs, with httptools.

httptools wraps llhttp, Node.js's HTTP parser (in C): it checks the syntax
(request line, header tokens and values, ``Content-Length``, chunk sizes,
``Transfer-Encoding`` framing, request smuggling attempts) and calls back
with the parts. :class:`RequestParser` adds what a server decides rather
than the syntax: the limits of :class:`~nameko_like.web.limits.RequestLimits`
(414, 431, 413), one ``Host`` only (400), supported versions (505),
transfer codings (501), ``Expect`` (417), well-formed ``%``-escapes, and it
builds each request's environ as the callbacks arrive. Pipelined requests
fed together come out in order from :attr:`RequestParser.ready`.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import unquote

from time import monotonic

import httptools

from nameko_like._eventlet import eventlet
from nameko_like.web.body import RequestBody, RequestRejected

if TYPE_CHECKING:
    import socket

    from _typeshed.wsgi import WSGIEnvironment

    from nameko_like.web.limits import RequestLimits

# llhttp refuses spaces and controls in a target, but not a "%" that does not
# start a two-digit hex escape.
_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")
#: Chunks parsed between two yields to the other greenthreads.
_CHUNKS_PER_YIELD = 1024
#: Bytes counted per header line besides its name and value (": ", CRLF).
_HEADER_OVERHEAD = 4
_SUPPORTED_VERSIONS = {"1.1": "HTTP/1.1", "1.0": "HTTP/1.0"}


def origin_form(target: bytes, method: bytes) -> bytes:
    """The path and query of a request target (RFC 9112 3.2).

    Absolute form (``http://host/path``) must be accepted; ``*`` only means
    something to ``OPTIONS``.
    """
    if target.startswith(b"/") or (target == b"*" and method == b"OPTIONS"):
        return target
    scheme, sep, rest = target.partition(b"://")
    if sep and scheme.lower() in (b"http", b"https"):
        slash = rest.find(b"/")
        return rest[slash:] if slash >= 0 else b"/"
    raise RequestRejected(400, "malformed request target")


class RequestParser:
    """Feeds one connection's input to httptools and collects its requests.

    Args:
        limits: the request limits of the server.
        sock: the client socket (for ``wsgi.input``'s ``get_socket()``, and
            to send ``100 Continue``).
        base_environ: the environ keys every request of the connection shares.
        release: called before the application takes the socket over
            (``wsgi.input``'s ``get_socket()``).
    """

    def __init__(self, limits: RequestLimits, sock: socket.socket,
                 base_environ: WSGIEnvironment,
                 release: Callable[[], object] | None = None) -> None:
        self.limits = limits
        self.sock = sock
        self.release = release
        self.base_environ = base_environ
        #: Environs of the requests received in full, oldest first.
        self.ready: deque[WSGIEnvironment] = deque()
        #: Why the input cannot be read further (after the ready requests).
        self.error: RequestRejected | None = None
        #: True once a request switched protocols: what follows is not HTTP.
        self.upgraded = False
        #: When the request now being received began (None between requests).
        self.started: float | None = None
        #: True once the current request's head is in, until its body is.
        self.in_body = False
        self._parser = httptools.HttpRequestParser(self)
        self._environ: WSGIEnvironment = {}
        self._url = b""
        self._head_size = 0
        self._header_count = 0
        #: the body received so far (None: none yet)
        self._body: bytes | bytearray | None = None
        self._chunks = 0
        self._head_fed = 0

    def feed(self, data: bytes) -> None:
        """Parse ``data``; complete requests go to :attr:`ready`, a fault to :attr:`error`."""
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # The request asking for the switch is complete (and in ready);
            # after the application answers it the connection is its.
            self.upgraded = True
            if self.ready:
                self.ready[-1]["nameko_like.keep_alive"] = False
        except httptools.HttpParserCallbackError as exc:
            # One of our checks refused the request from a callback.
            refused = exc.__context__
            self.error = (refused if isinstance(refused, RequestRejected)
                          else RequestRejected(400, "malformed request"))
        except httptools.HttpParserInvalidMethodError:
            self.error = RequestRejected(400, "malformed method")
        except httptools.HttpParserError as exc:
            self.error = self._syntax_error(str(exc))
        else:
            if self.started is not None and not self.in_body:
                # A head still incomplete: bound what llhttp may buffer of it.
                self._head_fed += len(data)
                if self._head_fed > self.limits.max_head_size + self.limits.max_header_line:
                    self.error = RequestRejected(431, "request headers too large")

    def _syntax_error(self, message: str) -> RequestRejected:
        if message == "Invalid HTTP version":
            return RequestRejected(505, "only HTTP/1.0 and HTTP/1.1 are supported")
        return RequestRejected(400, message[:1].lower() + message[1:])

    @staticmethod
    def _reject(status: int, detail: str) -> None:
        # Raising in a callback makes llhttp stop with a callback error.
        raise RequestRejected(status, detail)

    # httptools callbacks, in the order they come for one request. They run
    # for every request: each line counts (see bench/bench_http.py).

    def on_message_begin(self) -> None:
        """A request starts: its environ starts as the connection's."""
        self.started = monotonic()
        self._environ = self.base_environ.copy()
        self._url = b""
        self._head_size = 0
        self._header_count = 0
        self._head_fed = 0
        self._chunks = 0
        self._body = None

    def on_url(self, url: bytes) -> None:
        """Part of the request target (llhttp may hand it over in pieces)."""
        self._url += url
        if len(self._url) > self.limits.max_request_line:
            self._reject(414, "the request target is too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        """One header field (or trailer field, once the head is in)."""
        limits = self.limits
        size = len(name) + len(value) + _HEADER_OVERHEAD
        self._head_size += size
        self._header_count += 1
        if size > limits.max_header_line or self._head_size > limits.max_head_size:
            self._reject(431, "request headers too large")
        if self._header_count > limits.max_header_count:
            self._reject(431, "too many request headers")
        key = _environ_keys.get(name)
        if key is None:
            key = environ_key(name)
        if not key or self.in_body:
            # Trailers are counted and ignored, and so are names with "_".
            return
        environ = self._environ
        previous = environ.get(key)
        if previous is None:
            environ[key] = value.decode("latin-1")
        elif key == "HTTP_HOST":  # RFC 9112 3.2
            self._reject(400, "more than one Host header")
        else:
            environ[key] = previous + "," + value.decode("latin-1")

    def on_headers_complete(self) -> None:
        """The head is in: check it and fill in the request line's keys."""
        parser = self._parser
        environ = self._environ
        version = _SUPPORTED_VERSIONS.get(parser.get_http_version())
        if version is None:
            raise RequestRejected(505, "only HTTP/1.0 and HTTP/1.1 are supported")
        method = parser.get_method()
        target = self._url
        if not target.startswith(b"/"):
            target = origin_form(target, method)
        text = target.decode("latin-1")
        path, _, query = text.partition("?")
        if "%" in text:
            if _BAD_ESCAPE.search(self._url) is not None:
                self._reject(400, "malformed request target (bad %-escape)")
            environ["PATH_INFO"] = unquote(path, encoding="latin-1")
        else:
            environ["PATH_INFO"] = path
        environ["REQUEST_METHOD"] = _METHODS.get(method) or method.decode("ascii")
        environ["SERVER_PROTOCOL"] = version
        environ["RAW_PATH_INFO"] = path
        environ["QUERY_STRING"] = query
        # eventlet (so Nameko) reports a request without Content-Type as
        # text/plain, the MIME default; ported handlers may rely on it.
        if "CONTENT_TYPE" not in environ:
            environ["CONTENT_TYPE"] = "text/plain"
        if version == "HTTP/1.1" and "HTTP_HOST" not in environ:
            self._reject(400, "HTTP/1.1 requests must have a Host header")
        if ("CONTENT_LENGTH" in environ or "HTTP_TRANSFER_ENCODING" in environ
                or "HTTP_EXPECT" in environ):
            self._check_body_framing(environ, version)
        self.in_body = True

    def _check_body_framing(self, environ: WSGIEnvironment, version: str) -> None:
        # llhttp already refused a bad Content-Length, two of them, one with
        # Transfer-Encoding, and a Transfer-Encoding not ending in chunked.
        coding = environ.pop("HTTP_TRANSFER_ENCODING", None)
        if coding is not None and "," in coding:
            self._reject(501, "transfer codings other than chunked")
        limit = self.limits.max_content_length
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length > limit:
            self._reject(413, f"request body larger than {limit} bytes")
        expect = environ.get("HTTP_EXPECT")
        if expect is not None:
            if expect.lower() != "100-continue":
                self._reject(417, "unsupported Expect header")
            if (length or coding is not None) and version == "HTTP/1.1":
                self.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_chunk_header(self) -> None:
        """A chunk of a chunked body starts: bound how many there are."""
        self._chunks += 1
        # The last, empty, chunk has a header too: max_chunks + 1 in all.
        if self._chunks > self.limits.max_chunks + 1:
            # Each chunk costs parsing work whatever its size: bound it.
            self._reject(413, f"request body in more than {self.limits.max_chunks} chunks; "
                              f"send larger chunks, or a Content-Length")
        if not self._chunks % _CHUNKS_PER_YIELD:
            # A buffer full of tiny chunks is parsed without ever waiting
            # on the socket: let other greenthreads run now and then.
            eventlet.sleep(0)

    def on_body(self, data: bytes) -> None:
        """Part of the body (chunked bodies arrive decoded)."""
        body = self._body
        if body is None:
            # Most bodies come in one piece: no copy into a buffer then.
            if len(data) > self.limits.max_content_length:
                self._reject(413, f"request body larger than {self.limits.max_content_length} "
                                  f"bytes")
            self._body = data
            return
        if len(body) + len(data) > self.limits.max_content_length:
            self._reject(413, f"request body larger than {self.limits.max_content_length} bytes")
        if isinstance(body, bytes):
            body = self._body = bytearray(body)
        body += data

    def on_message_complete(self) -> None:
        """The request is in: its environ joins :attr:`ready`."""
        environ = self._environ
        body = self._body
        if body is None:
            body = b""
        else:
            body = bytes(body)
            self._body = None
        if self._chunks or "CONTENT_LENGTH" in environ:
            environ["CONTENT_LENGTH"] = str(len(body))
        stream = RequestBody(body)
        stream.sock, stream.release = self.sock, self.release
        environ["wsgi.input"] = environ["eventlet.input"] = stream
        environ["eventlet.posthooks"] = []
        environ["nameko_like.keep_alive"] = self._parser.should_keep_alive()
        self.ready.append(environ)
        self.started = None
        self.in_body = False


#: The environ key of each header name seen ("" for a name that is dropped).
_environ_keys: dict[bytes, str] = {}
#: Names kept in :data:`_environ_keys`: clients choosing endless names only
#: restart it.
_ENVIRON_KEYS_KEPT = 1024
#: Longer names are not kept: a client cycling long names (up to a header
#: line's limit) would otherwise pin megabytes.
_ENVIRON_KEY_LONGEST = 64
_METHODS = {method.encode(): method for method in (
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT")}


def environ_key(name: bytes) -> str:
    """The WSGI environ key of the header ``name`` ("" if it is dropped), remembered."""
    text = name.decode("ascii")
    if "_" in text:
        # "X_Foo" and "X-Foo" would share an environ key: the underscore
        # form is dropped (as eventlet, gunicorn and nginx do).
        key = ""
    else:
        key = text.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
    if len(name) <= _ENVIRON_KEY_LONGEST:
        if len(_environ_keys) >= _ENVIRON_KEYS_KEPT:
            _environ_keys.clear()
        _environ_keys[name] = key
    return key
