"""Streaming RPC results: a method's items travel as successive replies.

A method served with ``@rpc(stream=True)`` returns an iterable (typically it
is a generator). A caller that asks for a stream (``proxy.svc.method.stream(...)``,
which sets the request header :data:`STREAM_REQUEST_HEADER`) gets one reply
per item, all with the request's ``correlation_id`` and the header
:data:`STREAM_SEQ_HEADER` (0, 1, 2, ...), then a last reply with
:data:`STREAM_END_HEADER` whose body is the usual ``{"result": null,
"error": ...}``: ``error`` set if the method raised part way.

A caller that does not ask for a stream (a Nameko client, or a plain call)
gets one error reply, :class:`StreamNotRequested`, at once: it expects
exactly one reply, and the method is not run.

Memory stays bounded on both sides: the serving side publishes with
confirms and waits for them whenever :data:`STREAM_WINDOW` items are
unconfirmed; the caller's items go to a queue of the stream's own, consumed
with a prefetch of :data:`STREAM_PREFETCH` and acknowledged as taken, so
what the caller has not taken yet waits in the broker.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from nameko_like import instrumentation
from nameko_like.exceptions import RpcConnectionError, RpcError, RpcTimeout, deserialize, serialize
from nameko_like.rpc.client import RpcReply
from nameko_like.rpc.stream_queue import StreamQueue

if TYPE_CHECKING:
    from nameko_like.amqp.outcome import PublishOutcome
    from nameko_like.protocols import ReplyRouter
    from nameko_like.rpc.replies import ReplyPublisher

_log = logging.getLogger(__name__)

#: Request header by which a caller asks for a streamed result.
STREAM_REQUEST_HEADER = "nameko_like.stream"
#: Reply header: the item's position in the stream, from 0.
STREAM_SEQ_HEADER = "nameko_like.stream_seq"
#: Reply header marking the last reply of a stream.
STREAM_END_HEADER = "nameko_like.stream_end"
#: Unconfirmed item replies a streaming worker allows before it waits.
STREAM_WINDOW = 100
#: Items the broker may send a caller before it takes them.
STREAM_PREFETCH = 50

_END = object()


class StreamNotRequested(RpcError):
    """A streaming method was called for a single result.

    The reply to a caller (such as a Nameko client) that did not ask for a
    stream: it would otherwise wait for one reply among many.
    """


def stream_requested(headers: dict[str, Any] | None) -> bool:
    """Whether a request's headers ask for a streamed result."""
    return bool((headers or {}).get(STREAM_REQUEST_HEADER))


def not_requested_error(service_name: str, method_name: str) -> dict[str, Any]:
    """The serialized error a non-streaming call of a streaming method gets."""
    return serialize(StreamNotRequested(
        f"{service_name}.{method_name} streams its result; call it with "
        f"proxy.{service_name}.{method_name}.stream(...) from nameko_like and "
        f"iterate over what it returns"))


class RpcStream(RpcReply):
    """The items of a streaming call, as they arrive; iterate over it.

    ``timeout`` applies to each item: ``RpcTimeout`` if the next one takes
    longer. An error the method raised part way is raised where the
    stream reached it. ``close()`` stops the stream early.

    Items arrive on a :class:`~nameko_like.rpc.stream_queue.StreamQueue` of
    the stream's own, each acknowledged when taken: at most
    :data:`STREAM_PREFETCH` wait here, the rest in the broker.
    """

    __slots__ = ("_finished", "_items", "_next_seq", "_queue")

    def __init__(self, router: ReplyRouter, correlation_id: str, service_name: str,
                 method_name: str, timeout: float | None) -> None:
        super().__init__(router, correlation_id, service_name, method_name, timeout)
        self._items: collections.deque[tuple[Any, Callable[[], None] | None]] = (
            collections.deque())
        self._next_seq = 0
        self._finished = False
        self._queue: StreamQueue | None = StreamQueue(router.config, STREAM_PREFETCH,
                                                      self._on_reply)

    @property
    def reply_to(self) -> str | None:
        """Routing key of the stream's own queue."""
        return self._queue.routing_key if self._queue is not None else None

    def discard(self) -> None:
        """Close the stream's queue (the request was not sent)."""
        self.close()

    def _on_reply(self, body: Any, headers: dict[str, Any], ack: Callable[[], None]) -> None:
        if self._finished:
            ack()
            return
        if isinstance(body, Exception):
            ack()
            self._finish(RpcConnectionError(f"unreadable stream item: {body}"))
            return
        if STREAM_SEQ_HEADER not in headers:
            ack()
            self._finish(self._single_reply_error(body))
            return
        seq = headers[STREAM_SEQ_HEADER]
        if seq != self._next_seq:
            ack()
            self._finish(RpcConnectionError(
                f"stream from {self.service_name}.{self.method_name} broke: reply {seq} "
                f"arrived where {self._next_seq} was due (was the request redelivered?)"))
            return
        self._next_seq += 1
        if headers.get(STREAM_END_HEADER) or not isinstance(body, dict) or body.get("error"):
            ack()
            # the end; or an item the service could not serialize, which ends it too
            error = body.get("error") if isinstance(body, dict) else None
            self._finish(deserialize(error) if error else None if isinstance(body, dict)
                         else RpcConnectionError(f"malformed stream item: {body!r}"))
            self._emit("rpc_call_replied", time.perf_counter() - self._sent_at)
            return
        self._items.append((body.get("result"), ack))

    def _single_reply_error(self, body: Any) -> BaseException:
        error = body.get("error") if isinstance(body, dict) else None
        if error:
            return deserialize(error)
        return TypeError(
            f"{self.service_name}.{self.method_name} does not stream (it replied with one "
            f"result): call it without .stream(), or serve it with @rpc(stream=True)")

    def _finish(self, error: BaseException | None) -> None:
        self._finished = True
        self._error = error
        self._items.append((_END, None))
        self._ready.set()

    def fail(self, error: BaseException) -> None:
        """End the stream with ``error`` (after the items already received)."""
        if not self._finished:
            self._finish(error)
            self._emit("rpc_call_errored", error)

    def _emit(self, hook: str, *args: Any) -> None:
        # only for calls sent while observers were registered, as RpcReply does
        if self._sent_at and instrumentation.observers:
            instrumentation.emit(hook, self.service_name, self.method_name, *args)

    def __iter__(self) -> Iterator[Any]:
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the next item (or the end) has arrived; False if ``timeout`` passed first."""
        if self._items:
            return True
        queue = self._queue
        try:
            return queue is not None and queue.wait(lambda: bool(self._items), timeout)
        except Exception as exc:  # noqa: BLE001 - any connection failure ends the stream
            self.fail(RpcConnectionError(
                f"connection lost while streaming {self.service_name}."
                f"{self.method_name}: {exc}"))
            return True

    def __next__(self) -> Any:
        if not self.wait(self.timeout):
            self.close()
            self._emit("rpc_call_timed_out")
            raise RpcTimeout(f"{self.service_name}.{self.method_name} sent no item "
                             f"within {self.timeout}s")
        item, ack = self._items[0]
        if item is _END:  # left in place: iterating again ends again
            self._close_queue()
            if self._error is not None:
                raise self._error
            raise StopIteration
        self._items.popleft()
        if ack is not None:
            ack()
        return item

    def result(self) -> list[Any]:
        """All the (remaining) items, as a list."""
        return list(self)

    def close(self) -> None:
        """Stop the stream; items still coming are dropped with its queue."""
        if not self._finished:
            self._items.clear()
            self._finish(None)
        self._close_queue()

    def _close_queue(self) -> None:
        queue, self._queue = self._queue, None
        if queue is not None:
            queue.close()

    @property
    def buffered(self) -> int:
        """Items received and not yet taken."""
        return sum(1 for item, _ in self._items if item is not _END)


def send_stream(replies: ReplyPublisher, reply_to: str, correlation_id: Any,
                items: Any) -> tuple[PublishOutcome | None, BaseException | None, int]:
    """Publish each item of ``items``, then the end marker.

    Returns the end marker's outcome (None if it could not be sent), the
    error the iteration raised (sent in the end marker) and the item count.
    Waits for confirms whenever :data:`STREAM_WINDOW` items are unconfirmed.
    """
    in_flight: collections.deque[PublishOutcome] = collections.deque()
    seq = 0
    error: BaseException | None = None
    try:
        for item in items:
            outcome = replies.send(reply_to, correlation_id, item, None,
                                   headers={STREAM_SEQ_HEADER: seq})
            if outcome is None:
                return None, None, seq
            seq += 1
            in_flight.append(outcome)
            if len(in_flight) >= STREAM_WINDOW:
                # the oldest half: waiting per item would cost a round trip each
                while len(in_flight) > STREAM_WINDOW // 2:
                    in_flight.popleft().wait(replies.confirm_timeout)
    except Exception as exc:  # noqa: BLE001 - the method's error ends the stream, for the caller
        error = exc
    end = replies.send(reply_to, correlation_id, None,
                       serialize(error) if error is not None else None,
                       headers={STREAM_SEQ_HEADER: seq, STREAM_END_HEADER: True})
    return end, error, seq
