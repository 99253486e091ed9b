"""Standalone RPC proxies: call services from any Python program.

Usable with or without eventlet's monkey patch. In a patched process a
reader greenthread receives replies; in a plain script the caller reads
the connection while it waits. Either way one proxy can have many calls in
flight (``call_async``), and a long-lived proxy recovers by itself after the
broker restarts: calls caught by the outage fail with
``RpcConnectionError``, the next call reconnects.
"""

from __future__ import annotations

import logging
import os
import weakref
from typing import Any, Generic, TypeVar

from kombu import Connection

from nameko_like import serialization
from nameko_like.amqp.connection import BrokerChannel
from nameko_like.amqp.publish_channel import PublishChannel
from nameko_like.amqp.transport import transport_of
from nameko_like.constants import (
    CALL_ID_STACK_CONTEXT_KEY,
    DEFAULT_PARENT_CALLS_TRACKED,
    PARENT_CALLS_CONFIG_KEY,
)
from nameko_like.exceptions import RpcConnectionError
from nameko_like.protocols import DeliveredMessage
from nameko_like.rpc import wire
from nameko_like.rpc.client import RpcReply, ServiceProxy
from nameko_like.rpc.reply_ready import ReplyReady
from nameko_like.rpc.reply_router import RpcReplyRouter
from nameko_like.worker_context import unique_id

_log = logging.getLogger(__name__)

#: Owner part of standalone reply-queue names, as in Nameko.
STANDALONE_OWNER = "standalone_rpc_proxy"


#: Every router, to give each a connection and reply queue of its own in a
#: forked child.
_routers: weakref.WeakSet[StandaloneReplyRouter] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for router in list(_routers):
        router.after_fork()


class StandaloneReplyRouter(RpcReplyRouter):
    """A reply router with a connection of its own, which publishes the
    requests and consumes their replies."""

    def __init__(self, config: dict[str, Any], owner: str = STANDALONE_OWNER) -> None:
        super().__init__(config)
        self.owner = owner
        self.accept = serialization.content_types(serialization.setup(config).accept)
        #: whether stop() closed the current publish channel (closing is final)
        self._stopped = False
        self._open_channel()
        _routers.add(self)

    def after_fork(self) -> None:
        """In a forked child: a connection and a reply queue of its own.

        The parent's socket and reply queue stay the parent's; the calls it
        was waiting for are not the child's.
        """
        self._publish_channel.forget_after_fork()
        self._pending = {}
        if not self._stopped:
            self._open_channel()

    @property
    def publish_channel(self) -> PublishChannel:
        """The channel of this router's own connection."""
        return self._publish_channel

    def _open_channel(self) -> None:
        """A new connection with a new reply queue, as Nameko sets up on every start."""
        self._publish_channel = PublishChannel(self.config)
        # auto-delete: the queue goes away with the proxy (see wire.reply_queue)
        self.queue, self.routing_key = wire.reply_queue(self.config, self.owner, auto_delete=True)
        self.publish_channel.on_connected.append(self._consume_replies)
        self.publish_channel.on_lost.append(self._fail_pending)

    def start(self) -> None:
        """Connect (with retries) and start consuming the reply queue.

        A stopped router can start again: a closed publish channel stays
        closed, so a fresh one (and reply queue) replaces it.
        """
        if self._stopped:
            self._open_channel()
            self._stopped = False
        self.publish_channel.ensure_connected()

    def stop(self) -> None:
        """Close the connection; calls still waiting fail."""
        self._stopped = True
        self.publish_channel.close()
        self._fail_pending(RpcConnectionError("the proxy was stopped"))

    def _consume_replies(self, connection: Connection, _channel: BrokerChannel) -> None:
        # on_connected passes the publish connection's raw channel; replies get their own
        channel = connection.channel()
        bound = self.queue(channel)
        bound.declare()
        # no_ack: replies are read by the thread that also publishes, and
        # a reply lost with a connection fails its call anyway (see on_lost)
        transport_of(self.config).consume(channel, self.queue.name, self._on_reply, no_ack=True)

    def _on_reply(self, message: DeliveredMessage) -> None:
        self.route(message, self._decode)

    def _decode(self, message: DeliveredMessage) -> Any:
        # the transport's deliveries name a compression only while the body has it
        return serialization.decode(message.body, message.content_type,
                                    message.content_encoding, self.accept, message.headers)

    def _fail_pending(self, exc: BaseException) -> None:
        self.fail_pending(exc if isinstance(exc, RpcConnectionError) else RpcConnectionError(
            f"connection to the broker lost while waiting for the reply: {exc}"))

    def register(self, correlation_id: str, reply: RpcReply) -> None:
        """Expect a reply for ``correlation_id``."""
        # before the call is pending: a connection found dead here (after
        # an idle spell) fails the calls waiting on it, not this new one
        self.publish_channel.check_connection()
        super().register(correlation_id, reply)

    def wait_until(self, ready: ReplyReady, timeout: float | None) -> bool:
        """Block until ``ready`` is set, or ``timeout``; False on timeout.

        Without a reader greenthread (a plain script) the replies arrive
        only while someone reads the connection: the waiting caller does.
        """
        if self.publish_channel.has_reader:
            return ready.wait(timeout)
        return self.publish_channel.drain_until(ready.is_set, timeout)


class ClusterProxy:
    """``proxy.<service>.<method>(...)`` for any service of the cluster."""

    def __init__(self, router: StandaloneReplyRouter, **options: Any) -> None:
        self._router = router
        self._options = options
        self._proxies: dict[str, ServiceProxy] = {}

    def __getattr__(self, service_name: str) -> ServiceProxy:
        if service_name.startswith("__"):
            raise AttributeError(service_name)
        return self[service_name]

    def __getitem__(self, service_name: str) -> ServiceProxy:
        proxy = self._proxies.get(service_name)
        if proxy is None:
            proxy = ServiceProxy(self._router, service_name, **self._options)
            self._proxies[service_name] = proxy
        return proxy


def _with_call_id(config: dict[str, Any], context_data: dict[str, Any] | None,
                  call_id: str) -> dict[str, Any]:
    """``context_data`` with ``call_id`` on top of its call id stack.

    As a Nameko worker does, a stack given in ``context_data`` is the
    parent calls, kept to the last ``parent_calls_tracked`` of them.
    """
    data = dict(context_data or {})
    parents = list(data.pop(CALL_ID_STACK_CONTEXT_KEY, None) or [])
    tracked = config.get(PARENT_CALLS_CONFIG_KEY, DEFAULT_PARENT_CALLS_TRACKED)
    data[CALL_ID_STACK_CONTEXT_KEY] = [*parents, call_id][-(tracked + 1):]
    return data


#: What a standalone proxy's ``start()`` gives: a cluster or a service proxy.
ProxyT = TypeVar("ProxyT", ClusterProxy, ServiceProxy)


class StandaloneProxyBase(Generic[ProxyT]):
    """Shared set-up of the standalone proxies; use as a context manager."""

    def __init__(self, config: dict[str, Any], context_data: dict[str, Any] | None = None,
                 timeout: float | None = None, **options: Any) -> None:
        self.config = config
        self._router = StandaloneReplyRouter(config)
        #: the id this proxy's calls carry as their caller, as Nameko's
        #: ``standalone_rpc_proxy.call.<uuid>``; one per proxy object
        self.call_id = f"{STANDALONE_OWNER}.call.{unique_id()}"
        self._options: dict[str, Any] = {
            "context_data": _with_call_id(config, context_data, self.call_id),
            "timeout": timeout,
            "serializer": serialization.setup(config).serializer,
            "exchange": wire.rpc_exchange(config).name,
        }
        self._options.update(options)
        # One proxy object for the lifetime of this one, so that what an
        # earlier start() returned keeps working after a later start().
        self._proxy: ProxyT = self._make_proxy()

    def __enter__(self) -> ProxyT:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> ProxyT:
        """Connect and return the proxy object (the same one every time)."""
        self._router.start()
        return self._proxy

    def stop(self) -> None:
        """Disconnect."""
        self._router.stop()

    def _make_proxy(self) -> ProxyT:
        raise NotImplementedError


class ClusterRpcProxy(StandaloneProxyBase[ClusterProxy]):
    """Calls any service: ``with ClusterRpcProxy(config) as n: n.svc.method()``.

    Args:
        config: at least ``AMQP_URI``.
        context_data: context data sent with every call.
        timeout: seconds to wait for each reply (``RpcTimeout`` after).
    """

    def _make_proxy(self) -> ClusterProxy:
        return ClusterProxy(self._router, **self._options)


class ServiceRpcProxy(StandaloneProxyBase[ServiceProxy]):
    """Calls one service: ``with ServiceRpcProxy("svc", config) as svc: svc.method()``."""

    def __init__(self, service_name: str, config: dict[str, Any],
                 context_data: dict[str, Any] | None = None,
                 timeout: float | None = None, **options: Any) -> None:
        self.service_name = service_name
        super().__init__(config, context_data=context_data, timeout=timeout, **options)

    def _make_proxy(self) -> ServiceProxy:
        return ServiceProxy(self._router, self.service_name, **self._options)


os.register_at_fork(after_in_child=_after_fork_in_child)
