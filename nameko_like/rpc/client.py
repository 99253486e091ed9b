"""The calling side of RPC, shared by ``RpcProxy`` and the standalone proxies.

``ServiceProxy(router, "svc").method(...)`` publishes a request and waits for
its reply; ``.call_async(...)`` returns an :class:`RpcReply` at once. The
*router* (an :class:`~nameko_like.rpc.reply_router.RpcReplyRouter`: a
container's, fed by its ``ReplyListener``, or a standalone client's) sends
the requests and hands each reply to its ``RpcReply``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, TypeVar

from nameko_like import instrumentation
from nameko_like.amqp.outcome import PublishOutcome
from nameko_like.amqp.publish_channel import DEFAULT_RETRY_POLICY, PublishConnectionLost
from nameko_like.amqp.retry import retry_seconds
from nameko_like.exceptions import (
    RpcConnectionError,
    RpcTimeout,
    UndeliverableMessage,
    UnknownService,
    deserialize,
)
from nameko_like.messaging import encode_context_headers
from nameko_like.protocols import ReplyRouter
from nameko_like.rpc import wire
from nameko_like.rpc.reply_ready import ReplyReady
from nameko_like.worker_context import unique_id

if TYPE_CHECKING:
    from nameko_like.rpc.streaming import RpcStream

_NOT_SET = object()


class RpcReply:
    """The pending result of one call; ``result()`` waits for it."""

    __slots__ = ("_body", "_error", "_ready", "_router", "_sent_at", "correlation_id",
                 "method_name", "send_seconds", "service_name", "timeout")

    def __init__(self, router: ReplyRouter, correlation_id: str, service_name: str,
                 method_name: str, timeout: float | None) -> None:
        self._router = router
        self.correlation_id = correlation_id
        self.service_name = service_name
        self.method_name = method_name
        self.timeout = timeout
        #: time the request took to send (reconnecting included); it
        #: counts against ``timeout``
        self.send_seconds = 0.0
        #: perf_counter() when sent, only while observers are registered
        self._sent_at = 0.0
        self._body: Any = _NOT_SET
        self._error: BaseException | None = None
        self._ready = ReplyReady()

    @property
    def reply_to(self) -> str | None:
        """Routing key of the queue the reply goes to (the request's ``reply_to``)."""
        return self._router.routing_key

    def discard(self) -> None:
        """Stop expecting the reply (the request was not sent)."""
        self._router.unregister(self.correlation_id)

    @property
    def ready(self) -> bool:
        """Whether the reply (or a failure) has arrived."""
        return self._ready.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the reply (or a failure) has arrived; False if ``timeout`` passed first.

        ``result()`` then returns (or raises) at once.
        """
        return self._ready.is_set() or self._router.wait_until(self._ready, timeout)

    def set_body(self, body: Any) -> None:
        """Record the reply message body (first one wins)."""
        if not self._ready.is_set():
            self._body = body
            self._ready.set()
            if self._sent_at and instrumentation.observers:
                instrumentation.emit("rpc_call_replied", self.service_name, self.method_name,
                                     time.perf_counter() - self._sent_at)

    def fail(self, error: BaseException) -> None:
        """Fail the call with ``error`` unless it already completed."""
        if not self._ready.is_set():
            self._error = error
            self._ready.set()
            if self._sent_at and instrumentation.observers:
                instrumentation.emit("rpc_call_errored", self.service_name, self.method_name,
                                     error)

    def on_publish_outcome(self, outcome: PublishOutcome) -> None:
        """Fail the call if its request never reached a queue.

        ``UnknownService`` only when no queue is bound to the route (a
        return); a request the broker refused (a nack, sent again until the
        call's time ran out) or lost with its connection is an
        ``RpcConnectionError`` saying so.
        """
        error = outcome.error
        if error is None:
            return
        # No reply will come: stop expecting one, or each call to an unknown
        # service would leave its entry (and its error's traceback) behind.
        self._router.unregister(self.correlation_id)
        if isinstance(error, UndeliverableMessage):
            self.fail(UnknownService(self.service_name))
        else:
            self.fail(RpcConnectionError(
                f"request to {self.service_name}.{self.method_name} not delivered: {error}"))

    def result(self) -> Any:
        """The call's return value; raises what the remote method raised.

        Raises ``RpcTimeout`` after ``timeout`` seconds without a reply,
        counting the time the request took to send.
        """
        if not self._ready.is_set():
            timeout = self.timeout
            if timeout is not None:
                timeout = max(0.0, timeout - self.send_seconds)
            if not self.wait(timeout):
                self._router.unregister(self.correlation_id)
                if self._sent_at and instrumentation.observers:
                    instrumentation.emit("rpc_call_timed_out", self.service_name,
                                         self.method_name)
                raise RpcTimeout(
                    f"{self.service_name}.{self.method_name} did not reply within {self.timeout}s"
                )
        if self._error is not None:
            raise self._error
        body = self._body
        if not isinstance(body, dict):
            raise RpcConnectionError(f"malformed reply from {self.service_name}: {body!r}")
        error = body.get("error")
        if error:
            raise deserialize(error)
        return body.get("result")


_ReplyT = TypeVar("_ReplyT", bound=RpcReply)


class MethodProxy:
    """Calls one remote method: ``proxy(*args)`` or ``proxy.call_async(*args)``."""

    def __init__(self, router: ReplyRouter, service_name: str, method_name: str,
                 context_data: dict[str, Any] | None = None, timeout: float | None = None,
                 serializer: str = "json", exchange: str = "nameko-rpc") -> None:
        self.router = router
        self.service_name = service_name
        self.method_name = method_name
        self.context_data = context_data or {}
        self.timeout = timeout
        self.serializer = serializer
        self.exchange = exchange
        # reconnecting must not outlast the call's timeout by much; worked
        # out once here, not from the policy on every publish
        self._retry_seconds = retry_seconds(True, DEFAULT_RETRY_POLICY if timeout is None else
                                            dict(DEFAULT_RETRY_POLICY, timeout=timeout))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the method and wait for its result."""
        return self.call_async(*args, **kwargs).result()

    def call_async(self, *args: Any, **kwargs: Any) -> RpcReply:
        """Send the request and return its :class:`RpcReply` without waiting."""
        return self._send(RpcReply, args, kwargs)

    def stream(self, *args: Any, **kwargs: Any) -> RpcStream:
        """Call a streaming method (``@rpc(stream=True)``); iterate over the
        :class:`~nameko_like.rpc.streaming.RpcStream` returned for its items."""
        from nameko_like.rpc.streaming import RpcStream

        return self._send(RpcStream, args, kwargs)

    def _send(self, reply_type: type[_ReplyT], args: tuple[Any, ...],
              kwargs: dict[str, Any]) -> _ReplyT:
        started = time.monotonic()
        correlation_id = unique_id()
        reply = reply_type(self.router, correlation_id, self.service_name, self.method_name,
                           self.timeout)
        if instrumentation.observers:
            # before publishing: the reply may arrive before publish() returns
            reply._sent_at = time.perf_counter()
            instrumentation.emit("rpc_call_sent", self.service_name, self.method_name)
        # registered before publishing, so even an instant reply finds it
        # (a stream's replies go to a queue of its own, not the router's)
        if reply_type is RpcReply:
            self.router.register(correlation_id, reply)
        routing_key = f"{self.service_name}.{self.method_name}"
        headers = encode_context_headers(self.context_data)
        if reply_type is not RpcReply:
            from nameko_like.rpc.streaming import STREAM_REQUEST_HEADER

            headers[STREAM_REQUEST_HEADER] = 1
        try:
            with (instrumentation.publishing(self.exchange, routing_key, headers, correlation_id)
                  if instrumentation.observers else instrumentation.UNOBSERVED):
                outcome = self.router.publish_channel.publish(
                    wire.request_body(args, kwargs),
                    exchange=self.exchange,
                    routing_key=routing_key,
                    mandatory=True,
                    reply_to=reply.reply_to,
                    correlation_id=correlation_id,
                    headers=headers,
                    serializer=self.serializer,
                    delivery_mode=2,
                    deadline=started + self._retry_seconds,
                )
        except PublishConnectionLost as exc:
            reply.discard()
            error = RpcConnectionError(
                f"cannot send {self.service_name}.{self.method_name}: {exc}")
            if instrumentation.observers:
                instrumentation.emit("rpc_call_errored", self.service_name, self.method_name,
                                     error)
            raise error from None
        except BaseException:
            reply.discard()
            raise
        reply.send_seconds = time.monotonic() - started
        if self.timeout is not None and not outcome.settled:
            # a refused (nacked) request is sent again for as long as the
            # caller waits for its reply anyway (a cluster node loss refuses
            # publishes for ~10 s), not just the retry policy's few seconds
            outcome.deadline = max(outcome.deadline, started + self.timeout)
        outcome.add_callback(reply.on_publish_outcome)
        return reply

    def __repr__(self) -> str:
        return f"<proxy method {self.service_name}.{self.method_name}>"


class ServiceProxy:
    """Attribute access gives a :class:`MethodProxy` for that method."""

    def __init__(self, router: ReplyRouter, service_name: str, **options: Any) -> None:
        self._router = router
        self._service_name = service_name
        self._options = options

    def __getattr__(self, name: str) -> MethodProxy:
        if name.startswith("__"):
            raise AttributeError(name)
        return MethodProxy(self._router, self._service_name, name, **self._options)

    def __repr__(self) -> str:
        return f"<proxy for service {self._service_name}>"
