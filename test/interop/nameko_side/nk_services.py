"""Services written for the real Nameko, run by the interop tests.

This file is imported by ``nameko run`` in the Nameko virtualenv
(.venv-nameko), never by the nameko_like test process.
"""

import json

from nameko.contextdata import Language, UserId
from nameko.dependency_providers import Config
from nameko.events import EventDispatcher, event_handler
from nameko.extensions import DependencyProvider
from nameko.rpc import RpcProxy, rpc


class CallIdStack(DependencyProvider):
    """The worker's call id stack, to check what callers passed on."""

    def get_dependency(self, worker_ctx):
        return list(worker_ctx.call_id_stack)


class Greeter:
    name = "nk_greeter"

    language = Language()
    user_id = UserId()
    call_id_stack = CallIdStack()

    @rpc
    def echo(self, value):
        return value

    @rpc
    def fail(self, message):
        raise ValueError(message)

    @rpc
    def context(self):
        return {
            "language": self.language,
            "user_id": self.user_id,
            "call_id_stack": self.call_id_stack,
        }


class Gateway:
    """Calls the nameko_like service ``nl_backend`` through Nameko's RpcProxy."""

    name = "nk_gateway"

    backend = RpcProxy("nl_backend")

    @rpc
    def relay(self, value):
        return self.backend.echo(value)

    @rpc
    def relay_context(self):
        return self.backend.context()

    @rpc
    def relay_missing(self):
        try:
            self.backend.no_such_method()
        except Exception as exc:  # noqa: BLE001 - the type is the answer
            return f"{type(exc).__module__}.{type(exc).__name__}"
        return None


class Listener:
    """Records events from the nameko_like service ``nl_source`` to a file."""

    name = "nk_listener"

    config = Config()
    language = Language()
    dispatch = EventDispatcher()

    @event_handler("nl_source", "ping")
    def on_ping(self, payload):
        record = {"payload": payload, "language": self.language}
        with open(self.config["RECORD_PATH"], "a") as record_file:
            record_file.write(json.dumps(record) + "\n")

    @rpc
    def announce(self, payload):
        self.dispatch("announced", payload)


class Shared:
    """Same name as the nameko_like service in the mixed-instance test."""

    name = "shared"

    @rpc
    def who(self):
        return "nameko"
