"""The loop of a greenthread that owns the reading of one AMQP connection."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from kombu import Connection

from nameko_like.amqp.frame_pump import method_reader
from nameko_like.amqp.socket_watch import keep_watching
from nameko_like.amqp.transport_tuning import event_reader, start_heartbeats


def read_while(connection: Connection, lock: AbstractContextManager[object],
               reading: Callable[[], bool]) -> None:
    """Handle ``connection``'s incoming frames for as long as ``reading()``.

    Heartbeats run beside the loop (``lock`` guards their writes), frames go
    to py-amqp's frame handler without its per-frame layers (see
    :mod:`~nameko_like.amqp.frame_pump`; an untuned connection is read with
    ``drain_events``), and the socket stays registered with eventlet's hub
    between reads. Whatever reading raises (a lost connection) is the
    caller's to handle.
    """
    heartbeats = start_heartbeats(connection, lock)
    read = method_reader(connection)
    if read is None:  # not tuned: py-amqp's (or kombu's) own
        drain = event_reader(connection)

        def read() -> None:
            drain(timeout=None)

    release_watch = keep_watching(connection)
    try:
        while reading():
            read()
    finally:
        release_watch()
        if heartbeats is not None:
            heartbeats.kill()
