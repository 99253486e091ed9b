"""Reading a publish connection in a plain script, where no reader greenthread runs.

Outside an eventlet monkey-patched process nobody reads the connection
for good: whoever waits for an outcome reads (``drain_until``), sending and
checking heartbeats as it waits, and a publish after an idle spell first
reads what the broker sent meanwhile and checks its heartbeats
(``_check_idle_connection``), so a connection the broker dropped (or a
broker gone silent) is replaced before the publish rather than found out
by a call that hangs.

:class:`PlainScriptReading` is a part of
:class:`~nameko_like.amqp.publish_connection.PublishConnection`, which
holds the state it reads and writes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from kombu import Connection

from nameko_like.amqp.nack_retry import NackedPublishes
from nameko_like.amqp.transport_tuning import event_reader, read_pending


class PlainScriptReading:
    """The reading, heartbeats and idle checks of a publish connection in a plain script."""

    # The connection's state, kept by PublishConnection (declared for type checks).
    _connection: Connection | None
    _lock: AbstractContextManager[object]
    _drain_lock: threading.Lock
    _nacked: NackedPublishes
    _use_reader: bool
    _confirmed: bool
    #: when a plain script's client last checked heartbeats (monotonic)
    _last_beat_check: float
    #: the heartbeat interval negotiated on the current connection (0: none)
    _heartbeat: float
    resend_nacked: Callable[[], None]
    _connection_errors: Callable[[], tuple[type[BaseException], ...]]
    _lost: Callable[[BaseException], None]

    def drain_until(self, done: Callable[[], bool], timeout: float | None) -> bool:
        """Read from the connection until ``done()`` is true; False on timeout.

        For processes without a reader greenthread: whoever waits reads, one
        at a time, and what it reads settles everyone's outcomes. Where a
        heartbeat was negotiated, reads wait at most half an interval, and
        heartbeats are sent and checked between them: a broker that went
        silent fails the wait (and every waiting call) as a lost connection
        after two missed heartbeats, instead of leaving it to its timeout.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        # resolved once per connection read, not per read
        reading: Connection | None = None
        read_event: Callable[..., Any] | None = None
        interval = 0.0
        while not done():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            if len(self._nacked):
                # no timer thread in a plain script: whoever reads resends
                self.resend_nacked()
            connection = self._connection
            if connection is None:
                return done()
            if read_event is None or connection is not reading:
                reading, read_event = connection, event_reader(connection)
                interval = self._heartbeat
            read_timeout = remaining
            if interval:
                read_timeout = interval / 2 if remaining is None else min(remaining, interval / 2)
            next_due = self._nacked.next_due
            if next_due is not None:
                until_due = max(next_due - time.monotonic(), 0.01)
                read_timeout = until_due if read_timeout is None else min(read_timeout,
                                                                          until_due)
            with self._drain_lock:
                if done():
                    return True
                try:
                    try:
                        # no timeout unless there is a deadline or heartbeats:
                        # each timeout costs socket-option system calls
                        read_event(timeout=read_timeout)
                    except TimeoutError:
                        pass
                    if interval:
                        self._beat(connection, interval)
                except self._connection_errors() as exc:
                    with self._lock:
                        if self._connection is connection:
                            self._lost(exc)
        return True

    def _beat(self, connection: Connection, interval: float) -> None:
        """Send a heartbeat if due; raise if the broker missed two (plain scripts)."""
        now = time.monotonic()
        if now - self._last_beat_check < interval / 4:
            return
        self._last_beat_check = now
        # the lock: another thread of the script may be writing a publish
        with self._lock:
            connection.heartbeat_check(rate=2)

    def check_connection(self) -> None:
        """In a plain script: drop the connection if the broker dropped it or went silent.

        Publishing does this by itself; clients that fail their waiting
        calls when the connection is lost call it before they register a
        new call, so a connection found dead does not take the new call
        with it. Does nothing where a reader greenthread keeps watch.
        """
        if self._use_reader or not self._confirmed:
            return  # the reader watches (and nothing to check): no lock per call
        interval = self._heartbeat
        if not interval or time.monotonic() - self._last_beat_check < interval / 2:
            return  # checked lately: no lock per call (looked at again under it when due)
        with self._lock:
            self._check_idle_connection()

    def _check_idle_connection(self) -> None:
        """Before a publish in a plain script: is the connection still alive?

        Called with the lock held. Nobody read the connection while the
        script was idle: read what the broker sent meanwhile (its
        heartbeats, or the end of a connection it dropped because ours were
        missing), then check heartbeats. A dead or silent connection is
        dropped here, so the publish reconnects instead of writing into it.
        """
        connection = self._connection
        if connection is None or self._use_reader or not self._confirmed:
            return
        interval = self._heartbeat
        if not interval or time.monotonic() - self._last_beat_check < interval / 2:
            return
        if not self._drain_lock.acquire(blocking=False):
            return  # another thread is reading, and checking heartbeats as it does
        try:
            read_pending(connection)
            self._beat(connection, interval)
        except self._connection_errors() as exc:
            if self._connection is connection:
                self._lost(exc)
        finally:
            self._drain_lock.release()
