"""A service for the hygiene faults: hooks that raise, and hostile headers.

Run by the fault tier in a subprocess (``fault_services`` records what ran).
"""

import os

from fault_services import Pingable, record

from nameko_like.events import event_handler
from nameko_like.extensions import DependencyProvider
from nameko_like.rpc import rpc


class FailingHooks(DependencyProvider):
    """Raises in ``worker_result`` and ``worker_teardown`` of every worker."""

    def get_dependency(self, worker_ctx):
        return None

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        raise RuntimeError("worker_result bug")

    def worker_teardown(self, worker_ctx):
        raise RuntimeError("worker_teardown bug")


class Hygiene(Pingable):
    name = "fault_hygiene"
    hooks = FailingHooks()

    @rpc
    def double(self, call_id, value):
        record("double", call_id)
        return {"value": value * 2, "pid": os.getpid()}

    @event_handler("fault_hygiene_source", "note")
    def on_note(self, payload):
        record("event", payload["id"] if isinstance(payload, dict) else "non-dict")
