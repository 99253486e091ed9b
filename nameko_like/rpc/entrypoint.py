"""``@rpc``: serve a service method over AMQP RPC."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from kombu import Queue
from kombu.exceptions import ContentDisallowed, DecodeError

from nameko_like import retries
from nameko_like.amqp.channel_errors import PublishRefused
from nameko_like.amqp.outcome import PublishOutcome
from nameko_like.container_lifecycle import exc_info_of
from nameko_like.contracts import hooks as contracts
from nameko_like.exceptions import MalformedRequest, MethodNotFound, ResultTooLarge, serialize
from nameko_like.extensions import Entrypoint, ProviderCollector, SharedExtension
from nameko_like.messaging import HeaderDecoder, QueueConsumer
from nameko_like.protocols import DeliveredMessage, ExcInfo
from nameko_like.rpc import streaming, wire
from nameko_like.rpc.replies import ReplyPublisher
from nameko_like.worker_context import WorkerContext

_log = logging.getLogger(__name__)


def _bound_name(provider: Rpc) -> str:
    """The method an entrypoint serves; only bound entrypoints register."""
    method_name = provider.method_name
    if method_name is None:
        raise TypeError(f"{provider!r} is not bound to a service method")
    return method_name


class RpcConsumer(SharedExtension, ProviderCollector):
    """Consumes the container's ``rpc-<service>`` queue for all its ``@rpc`` methods.

    Requests that can't be processed (undecodable, not an object with args
    and kwargs, no ``reply_to``) are dead-lettered; if they name a
    ``reply_to`` the caller also gets a ``MalformedRequest`` error at once.
    """

    queue_consumer = QueueConsumer()

    def __init__(self) -> None:
        self._by_method: dict[str, Rpc] = {}
        self.queue: Queue | None = None
        self.replies: ReplyPublisher | None = None
        self._consuming = False
        super().__init__()

    def setup(self) -> None:
        """Declare interest in the service queue."""
        self._prepare()

    def _prepare(self) -> None:
        if self.queue is None:
            config = self.container.config
            self.queue = wire.service_queue(config, self.container.service_name)
            self.replies = ReplyPublisher(config, self.container.publish_pool)
            self.queue_consumer.register_provider(self)
            self._consuming = True

    def stop(self) -> None:
        """Stop consuming once every ``@rpc`` entrypoint has stopped."""
        super().stop()
        self._stop_consuming()

    def _stop_consuming(self) -> None:
        if self._consuming:
            self._consuming = False
            self.queue_consumer.unregister_provider(self)

    # Narrower than ProviderCollector's: only Rpc entrypoints register here.
    def register_provider(self, provider: Rpc) -> None:  # type: ignore[override]
        """Route requests for ``provider.method_name`` to ``provider``."""
        self._prepare()
        self._by_method[_bound_name(provider)] = provider
        super().register_provider(provider)

    def unregister_provider(self, provider: Rpc) -> None:  # type: ignore[override]
        """Stop routing to ``provider``; stop consuming when none is left."""
        self._by_method.pop(_bound_name(provider), None)
        if not self._by_method:
            # no entrypoint left to answer: leave requests on the queue for
            # other instances rather than answer MethodNotFound
            self._stop_consuming()
        super().unregister_provider(provider)

    def handle_message(self, message: DeliveredMessage) -> None:
        """Validate a request and hand it to its entrypoint."""
        properties = message.properties
        reply_to = properties.get("reply_to")
        correlation_id = properties.get("correlation_id")
        try:
            body = self.queue_consumer.decode(message)
            args, kwargs = wire.parse_request_body(body)
            if not reply_to:
                raise MalformedRequest("request has no reply_to; nowhere to send the result")
        except (ContentDisallowed, DecodeError, MalformedRequest) as exc:
            self._reject(message, reply_to, correlation_id, exc)
            return

        if not self._by_method:
            self.queue_consumer.give_back(message)
            return
        method_name = retries.routing_key_of(message).rpartition(".")[2]
        provider = self._by_method.get(method_name)
        if provider is None:
            error = MethodNotFound(method_name)
            self.reply_and_ack(message, reply_to, correlation_id, None, serialize(error))
            return
        provider.handle_request(message, args, kwargs, reply_to, correlation_id)

    def _reject(self, message: DeliveredMessage, reply_to: Any, correlation_id: Any,
                exc: Exception) -> None:
        if not isinstance(exc, MalformedRequest):
            exc = MalformedRequest(f"cannot decode request: {exc}")
        reason = f"MalformedRequest: {exc}"
        self.queue_consumer.dead_letter(message, reason)
        if reply_to and isinstance(reply_to, str):
            assert self.replies is not None
            self.replies.send(reply_to, correlation_id, None, serialize(exc))

    def reply_and_ack(self, message: DeliveredMessage, reply_to: str, correlation_id: Any,
                      result: Any, error: dict[str, Any] | None) -> None:
        """Send a reply; acknowledge the request once the broker has the reply."""
        assert self.replies is not None
        self.settle_after(message, reply_to, correlation_id,
                          self.replies.send(reply_to, correlation_id, result, error))

    def settle_after(self, message: DeliveredMessage, reply_to: str, correlation_id: Any,
                     outcome: PublishOutcome | None) -> None:
        """Acknowledge the request once the broker has its (last) reply."""
        if outcome is None:
            # the reply could not be published: leave the request to be redelivered
            self.queue_consumer.give_back(message)
            return
        outcome.add_callback(
            partial(self._settle_after_reply, message, reply_to, correlation_id))

    def _settle_after_reply(self, message: DeliveredMessage, reply_to: str, correlation_id: Any,
                            outcome: PublishOutcome) -> None:
        error = outcome.error
        if error is None:
            self.queue_consumer.ack(message)
        elif isinstance(error, PublishRefused):
            # Permanent: running the method again would make the same reply,
            # refused the same way. The caller hears why, and the request
            # is settled for good.
            self._reply_refused(message, reply_to, correlation_id, error)
        else:
            _log.warning("reply not confirmed (%s); the request will be redelivered", error)
            self.queue_consumer.give_back(message)

    def _reply_refused(self, message: DeliveredMessage, reply_to: str, correlation_id: Any,
                       refusal: PublishRefused) -> None:
        reason = f"the broker refused the reply: {refusal.reply_text}"
        if not refusal.too_large:
            self.queue_consumer.dead_letter(message, reason)
            return
        _log.warning("reply to %s refused for its size (%s); sending ResultTooLarge",
                     correlation_id, refusal.reply_text)
        assert self.replies is not None
        notice = self.replies.send(reply_to, correlation_id, None,
                                   serialize(ResultTooLarge(reason)))

        def settle(sent: PublishOutcome) -> None:
            if sent.error is None:
                self.queue_consumer.ack(message)
            else:  # not even the notice got through: keep the request aside
                self.queue_consumer.dead_letter(message, f"{reason}; notice: {sent.error}")

        if notice is None:
            self.queue_consumer.dead_letter(message, reason)
        else:
            notice.add_callback(settle)


class Rpc(Entrypoint, HeaderDecoder):
    """Serves the decorated method over AMQP RPC.

    With ``retry`` (a :class:`~nameko_like.retries.Retry`) a request whose
    method raised one of its exceptions runs again after a delay; the caller
    gets the reply of the last attempt (or of the first that succeeded).

    Example::

        class Greeter:
            name = "greeter"

            @rpc
            def hello(self, name):
                return f"hello, {name}"
    """

    rpc_consumer = RpcConsumer()
    #: class-level defaults, for subclasses whose __init__ skips ours
    retry: retries.Retry | None = None
    stream = False

    def __init__(
        self,
        expected_exceptions: type[BaseException] | tuple[type[BaseException], ...] = (),
        sensitive_arguments: str | tuple[str, ...] = (),
        *,
        retry: retries.Retry | None = None,
        stream: bool = False,
        **kwargs: Any,
    ) -> None:
        self.retry = retries.as_retry(retry)
        if stream and self.retry is not None:
            raise TypeError("@rpc(stream=True) cannot take retry=: items already sent "
                            "can't be taken back to run the method again")
        #: whether the method's result is an iterable streamed item by item
        #: (see :mod:`nameko_like.rpc.streaming`)
        self.stream = stream
        super().__init__(expected_exceptions, sensitive_arguments, **kwargs)

    def setup(self) -> None:
        """Register with the container's RPC consumer."""
        contracts.prepare(self)
        self.rpc_consumer.register_provider(self)

    def stop(self) -> None:
        """Stop taking requests."""
        self.rpc_consumer.unregister_provider(self)

    def handle_request(self, message: DeliveredMessage, args: list[Any], kwargs: dict[str, Any],
                       reply_to: str, correlation_id: Any) -> None:
        """Run a worker for one request; its reply is sent when it finishes."""
        if self.stream and not streaming.stream_requested(message.headers):
            self.rpc_consumer.reply_and_ack(
                message, reply_to, correlation_id, None,
                streaming.not_requested_error(self.container.service_name, _bound_name(self)))
            return
        # (reply_to and correlation_id are read from the message again
        # there: cheaper than a partial per request)
        self.rpc_consumer.queue_consumer.run_worker(
            self, message, args, kwargs, self._handle_result,
            context_data=self.unpack_message_headers(message), on_refused=self._refuse)

    def _refuse(self, message: DeliveredMessage, error: Exception) -> None:
        # arguments that don't fit the method: the caller hears why at once
        properties = message.properties
        self.rpc_consumer.reply_and_ack(message, properties["reply_to"],
                                        properties.get("correlation_id"), None, serialize(error))

    def _handle_result(self, message: DeliveredMessage, worker_ctx: WorkerContext, result: Any,
                       exc_info: ExcInfo | None) -> tuple[Any, ExcInfo | None]:
        properties = message.properties
        reply_to: str = properties["reply_to"]
        correlation_id = properties.get("correlation_id")
        queue_consumer = self.rpc_consumer.queue_consumer
        if self.stream and exc_info is None:
            return self._stream_result(message, reply_to, correlation_id, result)
        contract = contracts.contract_of(self)
        if contract is not None and exc_info is None:
            result = contract.dump_result(result)
        error = serialize(exc_info[1]) if exc_info is not None else None
        if exc_info is not None and self.rpc_consumer.queue is not None:
            outcome = retries.after_failure(queue_consumer, message, self.rpc_consumer.queue.name,
                                            self.retry, exc_info[1])
            if outcome is retries.Outcome.RETRYING:
                return result, exc_info  # no reply: the caller waits for the last attempt
            if outcome is retries.Outcome.EXHAUSTED:
                assert self.rpc_consumer.replies is not None
                self.rpc_consumer.replies.send(reply_to, correlation_id, None, error)
                return result, exc_info
        self.rpc_consumer.reply_and_ack(message, reply_to, correlation_id, result, error)
        return result, exc_info

    def _stream_result(self, message: DeliveredMessage, reply_to: str, correlation_id: Any,
                       result: Any) -> tuple[Any, ExcInfo | None]:
        # In the worker's greenthread: the worker is busy while it streams,
        # so max_workers also bounds the streams in progress.
        assert self.rpc_consumer.replies is not None
        end, error, count = streaming.send_stream(self.rpc_consumer.replies, reply_to,
                                                  correlation_id, result)
        self.rpc_consumer.settle_after(message, reply_to, correlation_id, end)
        return count, exc_info_of(error) if error is not None else None


rpc = Rpc.decorator
