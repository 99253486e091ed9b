"""Checked by mypy in test_contract_typing.py: typed clients carry the service's signatures."""

# reveal_type is mypy's builtin here (typing.reveal_type is 3.11+).
# ruff: noqa: F821
from __future__ import annotations

from typing import Protocol

from nameko_like.contracts.clients import typed
from nameko_like.rpc import RpcProxy, rpc
from nameko_like.rpc.client import ServiceProxy
from nameko_like.standalone.rpc import ClusterRpcProxy


class Greeter:
    name = "greeter"

    @rpc
    def hello(self, who: str, times: int = 1) -> str:
        return f"hello {who}" * times


class GreeterApi(Protocol):
    name: str = "greeter"

    def hello(self, who: str, times: int = 1) -> str: ...


class Caller:
    name = "caller"
    greeter = RpcProxy(Greeter, timeout=5)
    by_protocol = RpcProxy(GreeterApi, validate=True)
    untyped = RpcProxy("greeter")

    @rpc
    def call(self) -> str:
        reveal_type(self.greeter.hello)  # R: def (who: str, times: int =) -> str
        reveal_type(self.by_protocol.hello("x"))  # R: str
        reveal_type(self.untyped)  # R: nameko_like.rpc.client.ServiceProxy
        self.greeter.hello(3)  # E: arg-type
        return self.greeter.hello("x", times=2)


reveal_type(Caller.greeter)  # R: nameko_like.rpc.proxy.RpcProxy[typing_clients.Greeter]


def standalone() -> None:
    with ClusterRpcProxy({}) as cluster:
        proxy: ServiceProxy = cluster.greeter
        greeter = typed(proxy, GreeterApi, validate=True)
        reveal_type(greeter.hello("you"))  # R: str
        greeter.hello(who=1)  # E: arg-type
