"""``RpcProxy``: a dependency for calling other services over RPC."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from nameko_like import serialization
from nameko_like.extensions import DependencyProvider
from nameko_like.rpc import wire
from nameko_like.rpc.client import ServiceProxy
from nameko_like.rpc.reply_listener import ReplyListener
from nameko_like.worker_context import WorkerContext

if TYPE_CHECKING:
    from typing_extensions import Self

#: what the proxy looks like to type checkers: the service (class or
#: Protocol) it was given, or a ServiceProxy for a service named by a string
_S = TypeVar("_S")


class RpcProxy(DependencyProvider, Generic[_S]):
    """Injects a proxy to call ``target_service``'s RPC methods.

    Args:
        target_service: the name of the service to call, or its class (or
            a Protocol with a ``name``) so that type checkers see its
            methods' signatures (see :mod:`nameko_like.contracts.clients`).
        timeout: seconds to wait for each reply before ``RpcTimeout``
            (None waits forever, as in Nameko).
        validate: with a class or Protocol, check arguments against its
            annotations before sending and convert results (needs pydantic).

    Example::

        class Gateway:
            name = "gateway"
            greeter = RpcProxy("greeter", timeout=5)

            @rpc
            def greet(self, name):
                return self.greeter.hello(name)
    """

    rpc_reply_listener = ReplyListener()

    @overload
    def __init__(self: RpcProxy[ServiceProxy], target_service: str,
                 timeout: float | None = None, validate: bool = False, **options: Any) -> None: ...

    @overload
    def __init__(self: RpcProxy[_S], target_service: Callable[..., _S],
                 timeout: float | None = None, validate: bool = False, **options: Any) -> None: ...

    def __init__(self, target_service: str | Callable[..., Any], timeout: float | None = None,
                 validate: bool = False, **options: Any) -> None:
        self.contract_service: Callable[..., Any] | None = None
        if isinstance(target_service, str):
            self.target_service = target_service
        else:
            from nameko_like.contracts.clients import service_name_of

            self.target_service = service_name_of(target_service)
            self.contract_service = target_service
        self.validate = validate
        self.timeout = timeout
        self.options = options
        self._exchange: str | None = None
        self._serializer = "json"

    def setup(self) -> None:
        """Read exchange and serializer from the config."""
        config = self.container.config
        self._exchange = wire.rpc_exchange(config).name
        self._serializer = serialization.setup(config).serializer

    if TYPE_CHECKING:
        # Only for type checkers: on a worker's service instance the
        # attribute is the injected proxy, typed as the service it calls.
        @overload
        def __get__(self, instance: None, owner: type) -> Self: ...

        @overload
        def __get__(self, instance: object, owner: type) -> _S: ...

        def __get__(self, instance: object, owner: type) -> Self | _S: ...

    def get_dependency(self, worker_ctx: WorkerContext) -> Any:
        """A proxy carrying this worker's context data to the callee."""
        proxy = ServiceProxy(
            self.rpc_reply_listener.router,
            self.target_service,
            context_data=worker_ctx.context_data,
            timeout=self.timeout,
            serializer=self._serializer,
            exchange=self._exchange,
        )
        if self.validate and self.contract_service is not None:
            from nameko_like.contracts.clients import ValidatingServiceProxy

            return ValidatingServiceProxy(proxy, self.contract_service)
        return proxy

    def get_async_dependency(self, worker_ctx: WorkerContext) -> Any:
        """For ``async def`` methods: ``await self.other.method(...)`` (asyncio hub)."""
        from nameko_like.asyncio_support import AwaitingProxy

        return AwaitingProxy(self.get_dependency(worker_ctx))
