"""Typed RPC clients: a proxy that type checkers see as the service it calls.

``RpcProxy(Bookings)`` in a service, or ``typed(cluster.bookings, Bookings)``
with a standalone proxy, give ``self.bookings.book(...)`` the signature of
``Bookings.book`` for mypy and IDEs. The service class may be replaced by
a Protocol listing the methods, so a caller need not import the service.

With ``validate=True`` (needs pydantic) the client also checks the
arguments against the annotations before sending, sends models,
dataclasses and TypedDicts as JSON, and converts the result back to the
annotated type: a wrong call fails at once, with a
:class:`~nameko_like.contracts.ValidationError`, without a round trip.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

if TYPE_CHECKING:
    from nameko_like.contracts.signature import Contract
    from nameko_like.rpc.client import RpcReply, ServiceProxy

_S = TypeVar("_S")


def service_name_of(service: Callable[..., Any]) -> str:
    """The name a typed client calls: the class's ``name`` attribute."""
    name = getattr(service, "name", None)
    if isinstance(name, str) and name:
        return name
    raise TypeError(
        f"{getattr(service, '__qualname__', service)!r} has no 'name': give the service class, "
        "or add `name = \"<service>\"` to the Protocol describing it")


class ValidatingMethodProxy:
    """Calls one remote method, validating arguments and converting the result."""

    def __init__(self, method: Any, contract: Contract) -> None:
        self._method = method
        self._contract = contract

    def _encode(self, args: tuple[Any, ...], kwargs: dict[str, Any]
                ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        contract = self._contract
        args, kwargs = contract.validate_arguments(args, kwargs)
        if contract.arguments is None:
            return args, kwargs
        try:
            bound = contract.signature.bind(*args, **kwargs)
        except TypeError:  # the service answers IncorrectSignature, as usual
            return args, kwargs
        # models and dataclasses travel as the JSON they validate from
        bound.arguments.update(contract.arguments.dump_python(dict(bound.arguments),
                                                              mode="json"))
        return bound.args, bound.kwargs

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Validate, call and wait; the result converted to the annotated type."""
        return self.call_async(*args, **kwargs).result()

    def call_async(self, *args: Any, **kwargs: Any) -> _ConvertingReply:
        """Validate and send; ``result()`` of the returned reply converts."""
        args, kwargs = self._encode(args, kwargs)
        return _ConvertingReply(self._method.call_async(*args, **kwargs), self._contract)


class _ConvertingReply:
    """An :class:`~nameko_like.rpc.client.RpcReply` whose result is converted."""

    def __init__(self, reply: RpcReply, contract: Contract) -> None:
        self.reply = reply
        self._contract = contract

    def result(self) -> Any:
        """The remote result, as the annotated type."""
        result = self.reply.result()
        adapter = self._contract.result
        return result if adapter is None else adapter.validate_python(result)


class ValidatingServiceProxy:
    """A service proxy whose methods validate (see :class:`ValidatingMethodProxy`)."""

    def __init__(self, proxy: ServiceProxy, service: Callable[..., Any]) -> None:
        self._proxy = proxy
        self._service = service
        self._methods: dict[str, Contract] = {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        contract = self._methods.get(name)
        if contract is None:
            if not inspect.isfunction(getattr(self._service, name, None)):
                # not declared by the class or Protocol: call it unchecked
                return getattr(self._proxy, name)
            from nameko_like.contracts.signature import method_contract

            contract = self._methods[name] = method_contract(cast("type", self._service), name)
        return ValidatingMethodProxy(getattr(self._proxy, name), contract)

    def __repr__(self) -> str:
        return f"<validating {self._proxy!r}>"


def typed(proxy: ServiceProxy, service: Callable[..., _S], validate: bool = False) -> _S:
    """``proxy`` as type checkers see ``service`` (a service class or a Protocol).

    Example::

        with ClusterRpcProxy(config) as cluster:
            bookings = typed(cluster.bookings, Bookings, validate=True)
            bookings.book(Journey(traveller="ann", legs=[]))

    With ``validate`` the arguments are checked (and encoded) before sending
    and the result converted to the annotated type.
    """
    if validate:
        return cast("_S", ValidatingServiceProxy(proxy, service))
    return cast("_S", proxy)
