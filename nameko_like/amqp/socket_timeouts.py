"""Socket time-outs set only when a read or a write needs a different one.

py-amqp wraps every frame read in ``having_timeout``, which sets the
socket's time-out and puts it back: a system call each way, per frame.
:mod:`nameko_like.amqp.transport_tuning` installs :class:`ReadTimeout` in its
place on the connections it tunes.
"""

from __future__ import annotations

import errno
import socket

from amqp.transport import TCPTransport


class ReadTimeout:
    """A replacement for ``TCPTransport.having_timeout`` that defers the timeout.

    py-amqp wraps every frame read in ``having_timeout``, which sets the
    socket's timeout and puts it back: two ``ioctl`` system calls per frame
    whenever a timeout is asked (a plain script's client always asks one,
    half its heartbeat interval), even when read-ahead already holds the
    frame. Here the scope only records the timeout wanted, and the reader
    or writer applies it when it is about to use the socket: a sequential
    call costs two such calls (one for its publish, one for its reply), not
    eight, and reads and writes wait exactly as long as they did.
    """

    __slots__ = ("active", "applied", "base", "transport", "wanted")

    def __init__(self, transport: TCPTransport) -> None:
        self.transport = transport
        #: the socket's timeout outside read scopes (None: blocking)
        self.base: float | None = transport.sock.gettimeout()
        self.wanted: float | None = None
        self.active = False
        #: the timeout the socket has (set by apply only, from here on)
        self.applied = self.base

    def __call__(self, timeout: float | None) -> ReadTimeout:
        self.wanted = timeout
        return self

    def __enter__(self) -> socket.socket:
        self.active = True
        sock: socket.socket = self.transport.sock
        return sock

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: object) -> None:
        self.active = False
        if isinstance(exc, OSError) and exc.errno == errno.EWOULDBLOCK:
            # as py-amqp's own scope does (a zero timeout on some sockets)
            raise TimeoutError() from None

    def apply(self, sock: socket.socket) -> None:
        """Give ``sock`` the timeout of the scope it is used in, before it waits.

        Inside a ``having_timeout`` scope, the scope's; outside, the
        socket's own. Only a change costs a system call. The timeout last
        set is remembered rather than asked of the socket (an eventlet
        socket's ``gettimeout`` is a Python call, four per RPC call): once
        tuned, only this object sets the transport's socket time-out.
        """
        timeout = self.wanted if self.active else self.base
        if self.applied != timeout:
            sock.settimeout(timeout)
            self.applied = timeout


class ScopedWriter:
    """``TCPTransport._write`` for plain processes: the scope's timeout, then send."""

    __slots__ = ("sock", "timeouts")

    def __init__(self, transport: TCPTransport, timeouts: ReadTimeout) -> None:
        self.sock = transport.sock
        self.timeouts = timeouts

    def __call__(self, data: bytes | memoryview) -> None:
        self.timeouts.apply(self.sock)
        self.sock.sendall(data)
