"""RPC calls end to end, written once and run on RabbitMQ and on ``memory://``.

Callers are services (``RpcProxy``) and the standalone ``ClusterRpcProxy``;
the callee reports what it saw through its worker context.
"""

import logging
import time

import pytest

from nameko_like._eventlet import eventlet
from nameko_like.contextdata import AuthToken, Language, UserId
from nameko_like.events import EventDispatcher, event_handler
from nameko_like.exceptions import (
    IncorrectSignature,
    MethodNotFound,
    RemoteError,
    RpcTimeout,
    UnknownService,
    deserialize_to_instance,
)
from nameko_like.extensions import DependencyProvider
from nameko_like.rpc import RpcProxy, rpc
from nameko_like.standalone.rpc import ClusterRpcProxy, ServiceRpcProxy
from nameko_like.testing.services import entrypoint_hook, entrypoint_waiter
from nameko_like.utils import get_redacted_args


class WorkerCtx(DependencyProvider):
    """Injects the worker context itself, so a method can report what it got."""

    def get_dependency(self, worker_ctx):
        return worker_ctx


@deserialize_to_instance
class OutOfStock(Exception):
    """Registered: callers get this type back, not a RemoteError."""


class Leaf:
    name = "leaf"
    ctx = WorkerCtx()
    language = Language()
    user_id = UserId()
    auth_token = AuthToken()

    @rpc
    def report(self):
        return {
            "call_id_stack": self.ctx.call_id_stack,
            "data": self.ctx.data,
            "language": self.language,
            "user_id": self.user_id,
            "auth_token": self.auth_token,
        }


class Middle:
    name = "middle"
    leaf = RpcProxy("leaf")

    @rpc
    def relay(self):
        return self.leaf.report()


class Top:
    name = "top"
    ctx = WorkerCtx()
    middle = RpcProxy("middle")

    @rpc
    def start(self):
        return {"own_call_id": self.ctx.call_id, "leaf": self.middle.relay()}


class Target:
    name = "target"
    ctx = WorkerCtx()

    @rpc
    def echo(self, value):
        return value

    @rpc
    def add(self, a, b=0):
        return a + b

    @rpc
    def slow(self, seconds, value=None):
        eventlet.sleep(seconds)
        return value

    @rpc
    def fail(self, *args):
        raise ValueError(*args)

    @rpc(expected_exceptions=KeyError)
    def expected_failure(self):
        raise KeyError("no such order")

    @rpc
    def sell(self, item):
        raise OutOfStock(item, 0)

    @rpc
    def unserializable(self):
        return object()

    @rpc(sensitive_arguments=("password", "credentials.token"))
    def login(self, user, password, credentials):
        redacted = get_redacted_args(self.ctx.entrypoint, *self.ctx.args, **self.ctx.kwargs)
        return {"redacted": redacted, "password_seen": password}


class Caller:
    name = "caller"
    target = RpcProxy("target")
    quick = RpcProxy("target", timeout=0.3)
    nobody = RpcProxy("nobody", timeout=10)

    @rpc
    def call(self, method, *args):
        return getattr(self.target, method)(*args)

    @rpc
    def call_async(self, values):
        replies = [self.target.echo.call_async(value) for value in values]
        return [reply.result() for reply in replies]

    @rpc
    def call_slow_with_timeout(self, seconds):
        return self.quick.slow(seconds)

    @rpc
    def call_unknown(self):
        return self.nobody.anything()


@pytest.fixture
def start(container_factory, backend):
    def start(*services, **config):
        containers = []
        for service in services:
            container = container_factory(service, dict(backend, **config))
            container.start()
            containers.append(container)
        return containers[0] if len(containers) == 1 else containers
    return start


@pytest.fixture
def proxy(backend):
    with ClusterRpcProxy(backend, timeout=10) as cluster:
        yield cluster


# --- results ------------------------------------------------------------------


def test_call_from_a_service_returns_the_result(start):
    caller, _ = start(Caller, Target)
    with entrypoint_hook(caller, "call") as call:
        assert call("add", 2, 3) == 5
        assert call("echo", {"nested": [1, "two", None]}) == {"nested": [1, "two", None]}


def test_call_async_results_match_their_calls(start):
    caller, _ = start(Caller, Target)
    with entrypoint_hook(caller, "call_async") as call_async:
        assert call_async(list(range(20))) == list(range(20))


def test_standalone_call_and_call_async(start, proxy):
    start(Target)
    assert proxy.target.add(1, b=41) == 42
    replies = [proxy.target.echo.call_async(i) for i in range(30)]
    assert [reply.result() for reply in replies] == list(range(30))


def test_service_rpc_proxy_calls_its_service(start, backend):
    start(Target)
    with ServiceRpcProxy("target", backend, timeout=10) as target:
        assert target.echo("hi") == "hi"
        assert target.add.call_async(5, 5).result() == 10


# --- context data ---------------------------------------------------------------


def test_context_data_and_call_id_stack_travel_down_a_chain(start):
    top, _, _ = start(Top, Middle, Leaf)
    context = {"language": "fr-FR", "user_id": 42, "auth_token": "t0ken", "foo": "bar"}
    with entrypoint_hook(top, "start", context_data=context) as start_chain:
        outcome = start_chain()

    leaf = outcome["leaf"]
    stack = leaf["call_id_stack"]
    assert len(stack) == 3  # one call id per hop, oldest first
    assert stack[0] == outcome["own_call_id"]
    assert [call_id.rsplit(".", 1)[0] for call_id in stack] == [
        "top.start", "middle.relay", "leaf.report"]
    assert len(set(stack)) == 3
    assert leaf["language"] == "fr-FR"
    assert leaf["user_id"] == 42
    assert leaf["auth_token"] == "t0ken"
    assert leaf["data"]["foo"] == "bar"


def test_standalone_context_data_reaches_the_callee(start, backend):
    start(Leaf)
    context = {"language": "de", "user_id": "u-1", "auth_token": "abc", "foo": {"x": 1}}
    with ClusterRpcProxy(backend, context_data=context, timeout=10) as cluster:
        report = cluster.leaf.report()
    assert report["language"] == "de"
    assert report["user_id"] == "u-1"
    assert report["auth_token"] == "abc"
    assert report["data"]["foo"] == {"x": 1}
    # as in Nameko, the standalone proxy's own id comes first
    caller, callee = report["call_id_stack"]
    assert caller.startswith("standalone_rpc_proxy.call.")
    assert callee.startswith("leaf.report.")


# --- errors ---------------------------------------------------------------------


def test_unknown_service_is_raised_promptly_to_a_standalone_caller(proxy):
    started = time.monotonic()
    with pytest.raises(UnknownService) as raised:
        proxy.nobody.anything()
    assert time.monotonic() - started < 1.0  # the timeout is 10 s
    assert raised.value.service_name == "nobody"


def test_unknown_service_is_raised_promptly_to_a_service(start):
    caller = start(Caller)
    started = time.monotonic()
    with entrypoint_hook(caller, "call_unknown") as call_unknown:
        with pytest.raises(UnknownService):
            call_unknown()
    assert time.monotonic() - started < 1.0


def test_method_not_found(start, proxy):
    start(Target)
    with pytest.raises(MethodNotFound) as raised:
        proxy.target.no_such_method()
    assert "no_such_method" in str(raised.value)
    # the service still answers afterwards
    assert proxy.target.echo(1) == 1


@pytest.mark.parametrize("args, kwargs", [((), {}), ((1, 2), {}), ((1,), {"nope": 2})])
def test_incorrect_signature(start, proxy, args, kwargs):
    start(Target)
    with pytest.raises(IncorrectSignature):
        proxy.target.echo(*args, **kwargs)
    assert proxy.target.echo("still fine") == "still fine"


def test_remote_error_carries_type_value_and_args(start, proxy):
    start(Target)
    with pytest.raises(RemoteError) as raised:
        proxy.target.fail("bad input", 3)
    error = raised.value
    assert error.exc_type == "ValueError"
    assert error.exc_path == "builtins.ValueError"
    assert error.exc_args == ["bad input", "3"]  # made safe as Nameko does: str() of non-strings
    assert error.value == str(ValueError("bad input", 3))


def test_remote_error_reaches_a_calling_service(start):
    caller, _ = start(Caller, Target)
    with entrypoint_hook(caller, "call") as call:
        with pytest.raises(RemoteError) as raised:
            call("fail", "boom")
    assert raised.value.exc_type == "ValueError"
    assert raised.value.exc_args == ["boom"]


def test_registered_exception_comes_back_as_itself(start, proxy):
    start(Target)
    with pytest.raises(OutOfStock) as raised:
        proxy.target.sell("socks")
    assert type(raised.value) is OutOfStock
    assert raised.value.args == ("socks", "0")  # args cross the wire as strings, as in Nameko


def test_expected_exceptions_are_logged_as_warnings_not_errors(start, proxy, caplog):
    start(Target)
    with caplog.at_level(logging.WARNING):
        with pytest.raises(RemoteError) as raised:
            proxy.target.expected_failure()
        with pytest.raises(RemoteError):
            proxy.target.fail("unexpected")
    assert raised.value.exc_type == "KeyError"
    expected = [r for r in caplog.records if "target.expected_failure" in r.getMessage()]
    unexpected = [r for r in caplog.records if "target.fail" in r.getMessage()]
    assert [r.levelno for r in expected] == [logging.WARNING]
    assert [r.levelno for r in unexpected] == [logging.ERROR]


def test_sensitive_arguments_are_redacted_but_reach_the_method(start, proxy):
    start(Target)
    outcome = proxy.target.login("alice", "s3cret", credentials={"token": "xyz", "scope": "read"})
    assert outcome["password_seen"] == "s3cret"
    assert outcome["redacted"] == {
        "user": "alice",
        "password": "********",
        "credentials": {"token": "********", "scope": "read"},
    }


def test_unserializable_result_gives_a_remote_error_not_a_hang(start, proxy):
    start(Target)
    started = time.monotonic()
    with pytest.raises(RemoteError) as raised:
        proxy.target.unserializable()
    assert time.monotonic() - started < 5
    assert raised.value.exc_type == "UnserializableValueError"
    assert "object object" in raised.value.value
    assert proxy.target.echo("next") == "next"


# --- timeouts -------------------------------------------------------------------


def test_rpc_proxy_timeout_raises_rpc_timeout(start):
    caller, _ = start(Caller, Target)
    started = time.monotonic()
    with entrypoint_hook(caller, "call_slow_with_timeout") as call_slow:
        with pytest.raises(RpcTimeout):
            call_slow(3)
    assert 0.25 < time.monotonic() - started < 1.5


@pytest.mark.parametrize("make_proxy", ["cluster", "service"])
def test_standalone_timeout_raises_rpc_timeout_and_late_replies_are_ignored(
        start, backend, make_proxy):
    start(Target)
    if make_proxy == "cluster":
        client = ClusterRpcProxy(backend, timeout=0.6)
        target = client.start().target
    else:
        client = ServiceRpcProxy("target", backend, timeout=0.6)
        target = client.start()
    try:
        started = time.monotonic()
        with pytest.raises(RpcTimeout):
            target.slow(0.8, "late")
        assert 0.55 < time.monotonic() - started < 1.5
        # The late reply (due at 0.8 s) arrives while this call (due at
        # 0.9 s) waits: it must not be taken for this call's reply.
        assert target.slow(0.3, "prompt") == "prompt"
        assert target.echo("after") == "after"
    finally:
        client.stop()


# --- several services in one process ---------------------------------------------


class Shop:
    name = "shop"
    dispatch = EventDispatcher()

    @rpc
    def buy(self, item):
        self.dispatch("sold", {"item": item})
        return f"bought {item}"


class Ledger:
    name = "ledger"
    shop = RpcProxy("shop")
    sold = []

    @rpc
    def purchase(self, item):
        return self.shop.buy(item)

    @event_handler("shop", "sold")
    def record(self, payload):
        Ledger.sold.append(payload["item"])
        return payload["item"]


def test_services_in_one_runner_talk_rpc_and_events(runner_factory, backend):
    Ledger.sold = []
    runner = runner_factory(dict(backend), Shop, Ledger)
    runner.start()
    ledger = next(c for c in runner.containers if c.service_name == "ledger")
    with entrypoint_waiter(ledger, "record", timeout=10) as handled:
        with ClusterRpcProxy(backend, timeout=10) as cluster:
            assert cluster.ledger.purchase("lamp") == "bought lamp"
    assert handled.get() == "lamp"
    assert Ledger.sold == ["lamp"]
