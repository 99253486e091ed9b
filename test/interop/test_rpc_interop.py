"""RPC between the real Nameko 2.x and nameko_like, both ways, on RabbitMQ.

Nameko's side (``nameko_side/``) runs as subprocesses in ``.venv-nameko``;
nameko_like's services and clients run in this process. Each test has a
fresh vhost.
"""

from __future__ import annotations

from typing import Any

import pytest

from nameko_like.contextdata import Language, UserId
from nameko_like.exceptions import IncorrectSignature, MethodNotFound, RemoteError
from nameko_like.extensions import DependencyProvider
from nameko_like.rpc import RpcProxy, rpc
from nameko_like.standalone.rpc import ClusterRpcProxy

pytestmark = pytest.mark.integration

#: Seconds a nameko_like caller waits for each reply.
CALL_TIMEOUT = 20

PAYLOAD = {"text": "héllo", "numbers": [1, 2.5, None, True], "nested": {"a": []}}


class CallIdStack(DependencyProvider):
    """The worker's call id stack, to check what callers passed on."""

    def get_dependency(self, worker_ctx: Any) -> list:
        return list(worker_ctx.call_id_stack)


class Backend:
    """The nameko_like service Nameko's clients call."""

    name = "nl_backend"

    language = Language()
    user_id = UserId()
    call_id_stack = CallIdStack()

    @rpc
    def echo(self, value: Any) -> Any:
        return value

    @rpc
    def fail(self, message: str) -> None:
        raise ValueError(message)

    @rpc
    def context(self) -> dict:
        return {"language": self.language, "user_id": self.user_id,
                "call_id_stack": self.call_id_stack}


class Gateway:
    """A nameko_like service calling the Nameko service ``nk_greeter``."""

    name = "nl_gateway"

    greeter = RpcProxy("nk_greeter", timeout=CALL_TIMEOUT)

    @rpc
    def relay(self, value: Any) -> Any:
        return self.greeter.echo(value)

    @rpc
    def relay_context(self) -> dict:
        return self.greeter.context()

    @rpc
    def relay_fail(self, message: str) -> dict:
        try:
            self.greeter.fail(message)
        except RemoteError as exc:
            return {"class": type(exc).__name__, "exc_type": exc.exc_type, "value": exc.value}
        return {}

    @rpc
    def relay_missing(self) -> str:
        try:
            self.greeter.no_such_method()
        except MethodNotFound as exc:
            return f"MethodNotFound: {exc}"
        return "no error"


class Shared:
    """Same name as a Nameko service; both consume ``rpc-shared``."""

    name = "shared"

    @rpc
    def who(self) -> str:
        return "nameko_like"


def start_greeter(nameko_run: Any, wait_for_consumers: Any) -> Any:
    greeter = nameko_run("nk_services:Greeter")
    wait_for_consumers("rpc-nk_greeter", watch=(greeter,))
    return greeter


# --- Nameko client -> nameko_like service -------------------------------------


def test_nameko_client_calls_nameko_like_service(start_container, container_factory,
                                                 rabbit_config, nameko_client):
    start_container(container_factory(Backend, rabbit_config))

    echo, echo_kwargs, failed, missing, bad_args, context = nameko_client({"calls": [
        {"service": "nl_backend", "method": "echo", "args": [PAYLOAD]},
        {"service": "nl_backend", "method": "echo", "kwargs": {"value": "by keyword"}},
        {"service": "nl_backend", "method": "fail", "args": ["boom"]},
        {"service": "nl_backend", "method": "no_such_method"},
        {"service": "nl_backend", "method": "echo", "args": [1, 2]},
        {"service": "nl_backend", "method": "context",
         "context_data": {"language": "fr-FR", "user_id": "u-1"}},
    ]})

    assert echo == {"result": PAYLOAD}
    assert echo_kwargs == {"result": "by keyword"}
    assert failed["error"]["class"] == "nameko.exceptions.RemoteError"
    assert (failed["error"]["exc_type"], failed["error"]["value"]) == ("ValueError", "boom")
    # Nameko rebuilds its own MethodNotFound only from Nameko's exc_path
    assert missing["error"]["class"] == "nameko.exceptions.MethodNotFound"
    assert "no_such_method" in missing["error"]["str"]
    assert bad_args["error"]["class"] == "nameko.exceptions.IncorrectSignature"
    context = context["result"]
    assert (context["language"], context["user_id"]) == ("fr-FR", "u-1")
    # Nameko's standalone proxy starts the stack; our worker appends its own id
    caller, callee = context["call_id_stack"]
    assert caller.startswith("standalone_rpc_proxy.call.")
    assert callee.startswith("nl_backend.context.")


# --- nameko_like client -> Nameko service -------------------------------------


def test_nameko_like_client_calls_nameko_service(rabbit_config, nameko_run, wait_for_consumers):
    start_greeter(nameko_run, wait_for_consumers)

    with ClusterRpcProxy(rabbit_config, timeout=CALL_TIMEOUT) as cluster:
        assert cluster.nk_greeter.echo(PAYLOAD) == PAYLOAD
        assert cluster.nk_greeter.echo(value="by keyword") == "by keyword"
        with pytest.raises(RemoteError) as failed:
            cluster.nk_greeter.fail("boom")
        with pytest.raises(MethodNotFound) as missing:
            cluster.nk_greeter.no_such_method()
        with pytest.raises(IncorrectSignature):
            cluster.nk_greeter.echo(1, 2)

    assert (failed.value.exc_type, failed.value.value) == ("ValueError", "boom")
    assert failed.value.exc_path == "builtins.ValueError"
    assert "no_such_method" in str(missing.value)

    context_data = {"language": "fr-FR", "user_id": "u-1"}
    with ClusterRpcProxy(rabbit_config, context_data=context_data, timeout=CALL_TIMEOUT) as cluster:
        context = cluster.nk_greeter.context()
    assert (context["language"], context["user_id"]) == ("fr-FR", "u-1")
    assert context["call_id_stack"][-1].startswith("nk_greeter.context.")


# --- services calling across frameworks ---------------------------------------


def test_nameko_like_service_calls_nameko_service(start_container, container_factory, rabbit_config,
                                                  nameko_run, wait_for_consumers):
    start_greeter(nameko_run, wait_for_consumers)
    start_container(container_factory(Gateway, rabbit_config))

    with ClusterRpcProxy(rabbit_config, context_data={"language": "de-DE"},
                         timeout=CALL_TIMEOUT) as cluster:
        assert cluster.nl_gateway.relay(PAYLOAD) == PAYLOAD
        assert cluster.nl_gateway.relay_fail("boom") == {
            "class": "RemoteError", "exc_type": "ValueError", "value": "boom"}
        assert cluster.nl_gateway.relay_missing().startswith("MethodNotFound")
        context = cluster.nl_gateway.relay_context()

    assert context["language"] == "de-DE"
    # our worker's id travels to Nameko, which appends its own
    assert context["call_id_stack"][-2].startswith("nl_gateway.relay_context.")
    assert context["call_id_stack"][-1].startswith("nk_greeter.context.")


def test_nameko_service_calls_nameko_like_service(start_container, container_factory, rabbit_config,
                                                  nameko_run, nameko_client, wait_for_consumers):
    start_container(container_factory(Backend, rabbit_config))
    gateway = nameko_run("nk_services:Gateway")
    wait_for_consumers("rpc-nk_gateway", watch=(gateway,))

    relayed, missing, context = nameko_client({"calls": [
        {"service": "nk_gateway", "method": "relay", "args": [PAYLOAD]},
        {"service": "nk_gateway", "method": "relay_missing"},
        {"service": "nk_gateway", "method": "relay_context",
         "context_data": {"language": "de-DE"}},
    ]})

    assert relayed == {"result": PAYLOAD}
    assert missing == {"result": "nameko.exceptions.MethodNotFound"}
    context = context["result"]
    assert context["language"] == "de-DE"
    caller, gateway_call, backend_call = context["call_id_stack"]
    assert caller.startswith("standalone_rpc_proxy.call.")
    assert gateway_call.startswith("nk_gateway.relay_context.")
    assert backend_call.startswith("nl_backend.context.")


# --- one service, an instance of each framework -------------------------------


@pytest.mark.parametrize("first", ["nameko", "nameko_like"])
def test_mixed_instances_share_the_rpc_queue(first, start_container, container_factory,
                                             rabbit_config, nameko_run, nameko_client,
                                             wait_for_consumers, management):
    # Whoever declares rpc-shared second must declare it with the same
    # arguments, or the broker refuses with PRECONDITION_FAILED.
    def start_nameko() -> Any:
        service = nameko_run("nk_services:Shared")
        wait_for_consumers("rpc-shared", count=1 if first == "nameko" else 2, watch=(service,))
        return service

    def start_nameko_like() -> None:
        start_container(container_factory(Shared, rabbit_config))
        wait_for_consumers("rpc-shared", count=1 if first == "nameko_like" else 2)

    if first == "nameko":
        start_nameko()
        start_nameko_like()
    else:
        start_nameko_like()
        start_nameko()

    with ClusterRpcProxy(rabbit_config, timeout=CALL_TIMEOUT) as cluster:
        replies = [cluster.shared.who.call_async() for _ in range(20)]
        ours = {reply.result() for reply in replies}
    theirs = {answer["result"] for answer in nameko_client(
        {"calls": [{"service": "shared", "method": "who"}] * 6})}

    assert ours == {"nameko", "nameko_like"}
    assert theirs == {"nameko", "nameko_like"}
    queue = management.queue("rpc-shared")
    assert (queue["durable"], queue["auto_delete"], queue["exclusive"]) == (True, False, False)
    assert queue["arguments"] == {}
