"""``RpcProxy``: a dependency for calling other services over RPC."""

from __future__ import annotations

from typing import Any

from nameko_like import serialization
from nameko_like.extensions import DependencyProvider
from nameko_like.rpc import wire
from nameko_like.rpc.client import ServiceProxy
from nameko_like.rpc.reply_listener import ReplyListener
from nameko_like.worker_context import WorkerContext


class RpcProxy(DependencyProvider):
    """Injects a proxy to call ``target_service``'s RPC methods.

    Args:
        target_service: the name of the service to call.
        timeout: seconds to wait for each reply before ``RpcTimeout``
            (None waits forever, as in Nameko).

    Example::

        class Gateway:
            name = "gateway"
            greeter = RpcProxy("greeter", timeout=5)

            @rpc
            def greet(self, name):
                return self.greeter.hello(name)
    """

    rpc_reply_listener = ReplyListener()

    def __init__(self, target_service: str, timeout: float | None = None, **options: Any) -> None:
        self.target_service = target_service
        self.timeout = timeout
        self.options = options
        self._exchange: str | None = None
        self._serializer = "json"

    def setup(self) -> None:
        """Read exchange and serializer from the config."""
        config = self.container.config
        self._exchange = wire.rpc_exchange(config).name
        self._serializer = serialization.setup(config).serializer

    def get_dependency(self, worker_ctx: WorkerContext) -> ServiceProxy:
        """A proxy carrying this worker's context data to the callee."""
        return ServiceProxy(
            self.rpc_reply_listener,
            self.target_service,
            context_data=worker_ctx.context_data,
            timeout=self.timeout,
            serializer=self._serializer,
            exchange=self._exchange,
        )
