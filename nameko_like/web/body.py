"""Receiving request bodies, before the application runs.

The body is read in full by the connection's greenthread, within
``max_content_length``, and handed to WSGI as an in-memory stream: a slow or
broken upload therefore never holds (or even reaches) a service worker.
Framing is checked strictly, since two parties disagreeing on where a body
ends is how requests get smuggled.
"""

from __future__ import annotations

import io
import re
import socket
from typing import TYPE_CHECKING, BinaryIO

from nameko_like._eventlet import eventlet
from nameko_like.exceptions import RequestError

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

    from nameko_like.web.protocol import WsgiServer

#: Chunks parsed between two yields to the other greenthreads.
_CHUNKS_PER_YIELD = 1024

_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,15})[ \t]*(?:;[^\r\n]*)?\r?\n")


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


class BodyReader:
    """Mixin for :class:`~nameko_like.web.protocol.HttpProtocol`: checks
    the framing headers and reads the body into ``wsgi.input``.

    Uses the protocol's ``rfile``, ``wfile``, ``connection``,
    ``request_version``, header limits and ``server.max_content_length``.
    """

    # Provided by the protocol class this is mixed into (declared, not set).
    server: WsgiServer
    rfile: io.BufferedReader
    wfile: BinaryIO
    connection: socket.socket
    request_version: str
    max_header_count: int
    max_header_line: int

    @staticmethod
    def _content_length(values: list[bytes]) -> str:
        # Several Content-Length headers are only acceptable if they agree;
        # otherwise where the body ends is ambiguous (request smuggling).
        found: set[int] = set()
        for value in values:
            for item in value.split(b","):
                item = item.strip(b" \t")
                if not item.isdigit() or len(item) > 18:
                    raise RequestRejected(400, "malformed Content-Length")
                found.add(int(item))
        if len(found) != 1:
            raise RequestRejected(400, "conflicting Content-Length headers")
        return str(found.pop())

    def _read_body(self, environ: WSGIEnvironment) -> None:
        length = environ.get("CONTENT_LENGTH")
        encoding = environ.pop("HTTP_TRANSFER_ENCODING", None)
        chunked = False
        if encoding is not None:
            if length is not None:
                raise RequestRejected(400, "Content-Length and Transfer-Encoding together")
            codings = [coding.strip().lower() for coding in encoding.split(",")]
            if codings[-1] != "chunked":
                raise RequestRejected(400, "request body framing not understood")
            if len(codings) > 1:
                raise RequestRejected(501, "transfer codings other than chunked")
            chunked = True

        limit = self.server.max_content_length
        size = int(length) if length is not None else 0
        if size > limit:
            raise RequestRejected(413, f"request body larger than {limit} bytes")
        expect = environ.get("HTTP_EXPECT")
        if expect is not None:
            if expect.lower() != "100-continue":
                raise RequestRejected(417, "unsupported Expect header")
            if (size or chunked) and self.request_version == "HTTP/1.1":
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                self.wfile.flush()

        if chunked:
            body = self._read_chunked(limit)
            environ["CONTENT_LENGTH"] = str(len(body))
        elif size:
            body = self.rfile.read(size)
            if len(body) < size:
                raise RequestRejected(400, "request body shorter than its Content-Length")
        else:
            body = b""
        environ["wsgi.input"] = environ["eventlet.input"] = RequestBody(body, self.connection)
        environ["eventlet.posthooks"] = []

    def _read_chunked(self, limit: int) -> bytes:
        rfile = self.rfile
        readline, read = rfile.readline, rfile.read
        # One buffer, not a list of parts: a million tiny chunks would cost
        # a bytes object (~34 bytes) each.
        body = bytearray()
        max_chunks = self.server.max_chunks
        chunks = 0
        while True:
            match = _CHUNK_SIZE.fullmatch(readline(1024))
            if match is None:
                raise RequestRejected(400, "malformed chunk size")
            size = int(match.group(1), 16)
            if size == 0:
                break
            chunks += 1
            if chunks > max_chunks:
                # Each chunk costs parsing work whatever its size: bound it.
                raise RequestRejected(
                    413, f"request body in more than {max_chunks} chunks; "
                         f"send larger chunks, or a Content-Length")
            if not chunks % _CHUNKS_PER_YIELD:
                # Buffered input is parsed without ever waiting on the
                # socket: let other greenthreads run now and then.
                eventlet.sleep(0)
            if len(body) + size > limit:
                raise RequestRejected(413, f"request body larger than {limit} bytes")
            data = read(size)
            if len(data) < size or readline(3) not in (b"\r\n", b"\n"):
                raise RequestRejected(400, "malformed or truncated chunk")
            body += data
        # Trailer fields are read and ignored, within the header limits.
        for _ in range(self.max_header_count + 1):
            line = rfile.readline(self.max_header_line + 1)
            if line in (b"\r\n", b"\n"):
                return bytes(body)
            if not line.endswith(b"\n"):
                raise RequestRejected(400, "malformed or truncated chunked trailer")
        raise RequestRejected(431, "too many trailer fields")
