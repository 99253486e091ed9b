"""Fewer system calls per message on py-amqp's TCP transport.

Reads: py-amqp reads exactly the bytes it needs next (a frame header, then
its payload), each with its own ``recv``, so one delivered message costs about
six system calls. We read whatever the socket has (up to 64 KiB) and serve
frames from that buffer.

Writes (in eventlet-patched processes only): the first frame written in a
turn of the hub leaves at once; frames written after it in the same turn
are held until the writer yields, then go out in one ``sendall``. A lone
reply is not delayed, and ten workers replying in the same turn, or a
reader acknowledging a batch of confirms, cost two system calls, not ten.
"""

from __future__ import annotations

import _socket
import errno
import os
import socket
import struct
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import amqp
from amqp.exceptions import UnexpectedFrame
from amqp.transport import _UNAVAIL as _UNAVAILABLE
from amqp.transport import SSLTransport, TCPTransport
from kombu import Connection

from nameko_like._eventlet import eventlet
from nameko_like.amqp.hub_turns import turns_of
from nameko_like.amqp.socket_timeouts import ReadTimeout, ScopedWriter
from nameko_like.amqp.socket_watch import SocketWatch
from nameko_like.green_sockets import send_all

GreenSocket = eventlet.greenio.GreenSocket

#: Bytes asked of the socket per recv.
READ_CHUNK = 65536
#: An AMQP frame: type (1 octet), channel (2), payload size (4), payload, end octet.
FRAME_HEADER_SIZE = 7
FRAME_END = 0xCE

_RETRY_ERRNOS = (errno.EAGAIN, errno.EINTR)

_os_threading = eventlet.patcher.original("threading")

#: An AMQP heartbeat frame: type 8, channel 0, empty payload, frame end.
HEARTBEAT_FRAME = b"\x08\x00\x00\x00\x00\x00\x00\xce"


class _BufferedReader:
    """A replacement for ``TCPTransport._read`` and ``read_frame`` that reads ahead.

    ``read_frame`` parses a frame straight from the buffer (py-amqp's reads
    its header, payload and end octet with three calls) and consumes it only
    once it is whole, so a read that times out mid-frame loses nothing.
    """

    __slots__ = ("buffer", "drained", "position", "timeouts", "transport", "watch")

    def __init__(self, transport: TCPTransport, timeouts: ReadTimeout | None = None) -> None:
        self.transport = transport
        self.timeouts = timeouts
        self.buffer = b""
        self.position = 0
        #: whether the last recv emptied the socket (it returned less than asked)
        self.drained = False
        sock = transport.sock
        #: waits for an eventlet socket (None: the socket blocks by itself)
        self.watch = SocketWatch.of(sock)

    def __call__(self, n: int, initial: bool = False) -> bytes:
        buffer, position = self.buffer, self.position
        end = position + n
        if len(buffer) < end:
            buffer, position = self._fill(n, initial), 0
            end = n
        self.position = end
        return buffer[position:end]

    def read_frame(self, _unpack_from: Any = struct.unpack_from) -> tuple[int, int, bytes]:
        """The next frame as ``(type, channel, payload)``, as py-amqp's ``read_frame``."""
        buffer, position = self.buffer, self.position
        try:
            if len(buffer) - position < FRAME_HEADER_SIZE:
                buffer, position = self._fill(FRAME_HEADER_SIZE, initial=True), 0
            frame_type, channel, size = _unpack_from(">BHI", buffer, position)
            end = position + FRAME_HEADER_SIZE + size
            if len(buffer) <= end:
                buffer, position = self._fill(FRAME_HEADER_SIZE + size + 1), 0
                end = FRAME_HEADER_SIZE + size
        except TimeoutError:
            raise
        except OSError as exc:
            if exc.errno not in _UNAVAILABLE:
                self.transport.connected = False
            raise
        if buffer[end] != FRAME_END:
            raise UnexpectedFrame(f"Received frame_end {buffer[end]:#04x} while expecting 0xce")
        self.position = end + 1
        return frame_type, channel, buffer[position + FRAME_HEADER_SIZE:end]

    def _fill(self, n: int, initial: bool = False,
              _errnos: tuple[int, ...] = _RETRY_ERRNOS) -> bytes:
        """Read until the buffer holds ``n`` unconsumed bytes; return it (from 0)."""
        chunks = [self.buffer[self.position:]]
        have = len(chunks[0])
        sock = self.transport.sock
        if self.timeouts is not None:
            self.timeouts.apply(sock)
        watch = self.watch
        # An eventlet socket is read raw and waited for through the watch.
        # Its own recv tries first and waits when that fails: after a read
        # that emptied the socket, a wasted system call. Wait first then.
        recv = sock.recv if watch is None else sock.fd.recv
        wait_first = self.drained and watch is not None
        try:
            while have < n:
                if wait_first:
                    wait_first = False
                    watch.wait()  # type: ignore[union-attr]  # wait_first implies a watch
                try:
                    asked = max(n - have, READ_CHUNK)
                    data = recv(asked)
                except OSError as exc:
                    if watch is not None and exc.errno == errno.EAGAIN:
                        wait_first = True  # nothing there yet (the raw socket never blocks)
                        continue
                    if exc.errno in _errnos:
                        if initial and self.transport.raise_on_initial_eintr:
                            raise TimeoutError() from None
                        continue
                    raise
                if not data:
                    raise OSError("Server unexpectedly closed connection")
                self.drained = len(data) < asked
                chunks.append(data)
                have += len(data)
        finally:
            # what was read stays, unconsumed: a read that failed or timed
            # out resumes where it was
            self.buffer, self.position = b"".join(chunks), 0
        return self.buffer

class _CoalescingWriter:
    """A replacement for ``TCPTransport._write`` that batches per hub turn.

    The first write of a turn goes straight out (a lone reply should not
    wait); writes made after it in the same turn, or while a send is
    blocked, are held and leave together when the writing greenthread
    yields. A turn ends when the hub waits for I/O (see
    :mod:`~nameko_like.amqp.hub_turns`).
    """

    __slots__ = ("error", "flush_scheduled", "os_lock", "pending", "raw", "sending", "sock",
                 "timeouts", "turn", "turns")

    def __init__(self, transport: TCPTransport, timeouts: ReadTimeout | None = None) -> None:
        self.sock = transport.sock
        #: the eventlet socket's own (non-blocking) socket, tried first (see
        #: _sendall); a plain TCP socket: only TCPTransport connections are tuned
        self.raw = (self.sock.fd if isinstance(self.sock, GreenSocket)
                    and not self.sock.act_non_blocking else None)
        self.timeouts = timeouts
        #: a real lock: the heartbeat OS thread writes between our frames
        self.os_lock = _os_threading.Lock()
        self.pending: list[bytes] = []
        self.sending = False
        self.flush_scheduled = False
        self.error: OSError | None = None
        #: the hub's turns, and the one whose first write was sent (-1: none yet)
        self.turns = turns_of(eventlet.hubs.get_hub())
        self.turn = -1

    def __call__(self, data: bytes | memoryview) -> None:
        if self.error is not None:
            raise self.error
        if self.timeouts is not None:
            self.timeouts.apply(self.sock)
        turn = self.turns.count
        if self.turn == turn or self.sending or self.flush_scheduled:
            # py-amqp hands over a view of a buffer it reuses for the next
            # frame: keep a copy, not the view
            self.pending.append(bytes(data))
            if not self.flush_scheduled:
                # runs once the writer yields (after this turn's other
                # greenthreads), or next turn
                self.flush_scheduled = True
                eventlet.spawn_n(self._flush)
            return
        self.turn = turn
        self._send(data)

    def _send(self, first: bytes | memoryview | None) -> None:
        # Never two senders on the socket at once: a sendall that blocks
        # would interleave its bytes with the other's. Whoever holds
        # `sending` also sends what was queued meanwhile.
        self.sending = True
        try:
            if first is not None:
                with self.os_lock:
                    self._sendall(first)
            while self.pending:
                pending, self.pending = self.pending, []
                with self.os_lock:
                    self._sendall(pending[0] if len(pending) == 1 else b"".join(pending))
        except OSError as exc:
            self._fail(exc)
            raise
        finally:
            self.sending = False

    def _sendall(self, data: bytes | memoryview) -> None:
        # An eventlet socket's sendall is three Python calls deep before its
        # system call. The socket under it never blocks: try it first, and
        # leave to eventlet only what it could not take (it waits for the
        # socket, within its time-out, as it always did).
        send_all(self.raw, self.sock, data)

    def _flush(self) -> None:
        self.flush_scheduled = False
        if self.sending:
            return  # the greenthread sending finishes the batch
        try:
            self._send(None)
        except OSError:
            pass  # _fail has recorded it and woken the reader

    def _fail(self, exc: OSError) -> None:
        self.error = exc
        self.pending = []
        # make the connection's reader notice at once
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def tune_connection(connection: Connection, coalesce_writes: bool = False) -> None:
    """Install read-ahead (and, if asked, write batching) on a kombu connection.

    Only py-amqp's plain TCP transport is tuned; SSL and in-memory transports
    are left as they are. Write batching needs an eventlet-patched process.
    """
    transport = getattr(getattr(connection, "connection", None), "transport", None)
    if not isinstance(transport, TCPTransport):
        return
    reader = transport._read
    if not isinstance(reader, _BufferedReader):
        timeouts = ReadTimeout(transport)
        transport.having_timeout = timeouts
        reader = transport._read = _BufferedReader(transport, timeouts)
        transport.read_frame = reader.read_frame
        transport._write = ScopedWriter(transport, timeouts)
    if coalesce_writes and not isinstance(transport._write, _CoalescingWriter):
        transport._write = _CoalescingWriter(transport, reader.timeouts)


#: Most frames :func:`read_pending` reads (a broker sends one heartbeat each
#: half interval: an idle spell leaves a handful at most).
PENDING_READS = 100
#: Seconds such a read waits for a frame: what is pending is in the socket.
PENDING_READ_TIMEOUT = 0.001


def heartbeat_interval(connection: Connection) -> float:
    """The heartbeat interval negotiated on ``connection`` (0: none)."""
    interval: float = getattr(getattr(connection, "connection", None), "heartbeat", 0) or 0
    return interval


def event_reader(connection: Connection) -> Callable[..., Any]:
    """``drain_events`` of ``connection``, without kombu's layers where it can.

    On py-amqp, kombu's ``Connection.drain_events`` goes through its
    ``connection`` property (which checks the connection, or even makes a
    new one) and its transport to py-amqp's: a waiting caller that reads
    the same connection again and again (a plain script's client, twice
    per call) can call py-amqp's directly. Resolve it once per wait: a
    lost connection is dropped, not read again.
    """
    raw = getattr(connection, "_connection", None)
    if isinstance(raw, amqp.Connection):
        reader: Callable[..., Any] = raw.drain_events
        return reader
    fallback: Callable[..., Any] = connection.drain_events
    return fallback


def read_pending(connection: Connection) -> None:
    """Handle the frames that arrived while nobody read ``connection``.

    For a plain script's client after an idle spell: the broker's
    heartbeats (so they count as received), or the end of a connection it
    dropped (raised as the transport's error).
    """
    for _ in range(PENDING_READS):
        try:
            connection.drain_events(timeout=PENDING_READ_TIMEOUT)
        except TimeoutError:
            return


class Heartbeats:
    """The heartbeat greenthread and its OS-thread stand-in; ``kill()`` ends both."""

    def __init__(self) -> None:
        self.green: Any = None  # eventlet's GreenThread (eventlet ships no types)
        self.stopped = False
        #: set by kill(): wakes the OS thread at once, so a closed connection
        #: is not kept alive by a sleeping thread (short-lived clients pile up)
        self.stopping = _os_threading.Event()
        #: when the greenthread last ran (``time.monotonic()``)
        self.green_tick = time.monotonic()

    def kill(self) -> None:
        """Stop both; the connection they served is done."""
        self.stopped = True
        self.stopping.set()
        if self.green is not None:
            self.green.kill()


def _beat_from_os_thread(state: Heartbeats, raw: amqp.Connection, writer: _CoalescingWriter,
                         interval: float) -> None:
    """Send heartbeats while the hub is stalled by a worker hogging the CPU.

    A CPU-bound handler never yields, so no greenthread runs: the broker
    would miss our heartbeats and drop the connection, and every message
    the connection held would be delivered again (for ever, if the handler
    always takes that long). This real thread writes a heartbeat frame
    whenever the heartbeat greenthread has not run for half an interval;
    the writer's OS lock keeps it between whole frames.
    """
    while not state.stopped:
        state.stopping.wait(interval / 4)
        if state.stopped or time.monotonic() - state.green_tick < interval / 2:
            continue
        try:
            with writer.os_lock:
                os.write(writer.sock.fileno(), HEARTBEAT_FRAME)
        except OSError:
            return  # the socket is gone; the reader finds out by itself
        raw.last_heartbeat_sent = time.monotonic()


def wake_reader(transport: Any) -> None:
    """Shut the socket of ``transport`` down, so that a read waiting on it
    fails as a lost connection.

    An SSL socket is shut down under its SSL object: ``SSLSocket.shutdown``
    drops that object first, and a reader waiting inside it would then fail
    with a ValueError ("Read on closed or unwrapped SSL socket"), which no
    reconnect logic takes for a lost connection (a consumer would die of
    it). The OS socket shut down, the reader sees the end of the stream, an
    OSError, as on plain TCP. (Told by the transport: eventlet's green
    SSLSocket derives from the stdlib's, but monkey patching rebinds the
    name ``ssl.SSLSocket``.)
    """
    sock = transport.sock
    if isinstance(transport, SSLTransport) and isinstance(sock, _socket.socket):
        _socket.socket.shutdown(sock, socket.SHUT_RDWR)
    else:
        sock.shutdown(socket.SHUT_RDWR)


def start_heartbeats(connection: Connection,
                     lock: AbstractContextManager[object]) -> Heartbeats | None:
    """Send and check AMQP heartbeats beside a reader that blocks for good.

    Readers wait on the socket without a timeout (a timeout costs a timer
    per read), so heartbeats get a greenthread of their own, and an OS
    thread stands in for it while workers hog the CPU (see
    :func:`_beat_from_os_thread`). When the broker has gone quiet for too
    long, the socket is shut down: the reader's pending read fails and its
    reconnect logic takes over. Returns an object whose ``kill()`` stops
    the heartbeats (when the connection is done), or None where no
    heartbeat was negotiated.

    The greenthread serves any transport (plain TCP and TLS alike): it
    writes through py-amqp under ``lock``, as every other writer of the
    connection does. The OS-thread stand-in only serves plain TCP.
    """
    raw = getattr(connection, "connection", None)
    interval = getattr(raw, "heartbeat", 0) or 0
    if raw is None or not interval or getattr(raw, "transport", None) is None:
        return None
    state = Heartbeats()

    def beat() -> None:
        while True:
            eventlet.sleep(interval / 2)
            now = time.monotonic()
            if now - state.green_tick > interval:
                # The hub was stalled: the broker's frames wait unread in
                # the socket. Don't take that for missed heartbeats.
                raw.prev_recv = None
            state.green_tick = now
            try:
                with lock:
                    connection.heartbeat_check(rate=2)
            except Exception:  # noqa: BLE001 - missed heartbeats or a dead socket: wake the reader
                try:
                    wake_reader(raw.transport)
                except (OSError, AttributeError):
                    pass
                return

    state.green = eventlet.spawn(beat)
    # The stand-in writes raw bytes to the socket from another OS thread,
    # between whole frames thanks to the coalescing writer's OS lock, which
    # only a tuned plain TCP transport has. On TLS that cannot work: bytes
    # written past the SSL object are not a TLS record (the broker would drop
    # the connection at once), and the SSL object itself is not safe to use
    # from two OS threads unless every read and write of it (py-amqp's and
    # eventlet's, some of which wait in the hub halfway) took one lock. So a
    # TLS connection gets the greenthread only: a worker hogging the CPU for
    # over two intervals there still loses its connection.
    writer = getattr(raw.transport, "_write", None)
    if isinstance(writer, _CoalescingWriter):
        _os_threading.Thread(target=_beat_from_os_thread, args=(state, raw, writer, interval),
                             name="amqp-heartbeat", daemon=True).start()
    return state
