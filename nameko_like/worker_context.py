"""WorkerContext: everything known about one call while it runs."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nameko_like._eventlet import eventlet
from nameko_like.constants import (
    CALL_ID_STACK_CONTEXT_KEY,
    DEFAULT_PARENT_CALLS_TRACKED,
    PARENT_CALLS_CONFIG_KEY,
)

if TYPE_CHECKING:
    from nameko_like.extensions import Entrypoint
    from nameko_like.protocols import ContainerInterface


# Call and correlation ids must be unique and unpredictable: whoever can
# guess the next correlation id can answer a call in the callee's place. A
# seeded Mersenne Twister is predictable from a few hundred ids it gave out,
# so ids come from os.urandom, fetched a block at a time to spare a system
# call per id.
#: Random bytes fetched per system call; each id takes 16.
_ID_BLOCK_SIZE = 4096
# An OS lock even in a monkey-patched process: nothing in it yields to the
# hub, and eventlet's green lock is Python code, paid twice per call.
_os_lock = eventlet.patcher.original("threading").Lock
_id_lock = _os_lock()
_id_block = b""
_id_offset = 0


def _forget_random_block() -> None:
    # A forked child must not hand out the ids its parent will.
    global _id_block, _id_offset, _id_lock
    _id_block, _id_offset, _id_lock = b"", 0, _os_lock()


os.register_at_fork(after_in_child=_forget_random_block)


def unique_id() -> str:
    """A random id in uuid4's textual form, from the OS's random source."""
    global _id_block, _id_offset
    with _id_lock:
        if _id_offset >= len(_id_block):
            _id_block, _id_offset = os.urandom(_ID_BLOCK_SIZE), 0
        digits = _id_block[_id_offset:_id_offset + 16].hex()
        _id_offset += 16
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{digits[16:20]}-{digits[20:]}"


def new_call_id() -> str:
    """Return a fresh, unique id for one call (tests patch it to get predictable ids)."""
    return unique_id()


class WorkerContext:
    """The state of one worker: its service instance, call and context data.

    ``call_id_stack`` lists the call ids of the chain of calls that led here,
    oldest first, ending with this call's own id; it keeps at most
    ``parent_calls_tracked`` ancestors.
    """

    __slots__ = (
        # Weak-referenceable, as Nameko's are: extensions keep per-worker state
        # in a WeakKeyDictionary keyed by the worker context (nameko-sqlalchemy).
        "__weakref__",
        "_teardown_callbacks", "args", "call_id", "call_id_stack", "config", "container",
        "data", "entrypoint", "kwargs", "parent_calls_tracked", "service",
    )

    def __init__(
        self,
        container: ContainerInterface,
        service: Any,
        entrypoint: Entrypoint,
        args: tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        self.container = container
        self.config = container.config
        # an instance of the user's service class: anything
        self.service: Any = service
        self.entrypoint = entrypoint
        self.args: tuple[Any, ...] = args if args is not None else ()
        self.kwargs: dict[str, Any] = kwargs if kwargs is not None else {}
        self.data: dict[str, Any] = dict(data) if data else {}
        self.parent_calls_tracked: int = self.config.get(
            PARENT_CALLS_CONFIG_KEY, DEFAULT_PARENT_CALLS_TRACKED
        )
        self.call_id = f"{container.service_name}.{entrypoint.method_name}.{new_call_id()}"
        parents = list(self.data.pop(CALL_ID_STACK_CONTEXT_KEY, None) or ())
        if self.parent_calls_tracked >= 0:
            parents = parents[-self.parent_calls_tracked:] if self.parent_calls_tracked else []
        self.call_id_stack: list[str] = [*parents, self.call_id]
        self._teardown_callbacks: list[Callable[[], object]] | None = None

    def after_teardown(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` once this worker has been torn down.

        For code that observes workers (e.g. the testing helpers), which
        must not see a worker as done while its providers still clean up.
        """
        if self._teardown_callbacks is None:
            self._teardown_callbacks = []
        self._teardown_callbacks.append(callback)

    def run_teardown_callbacks(self) -> None:
        """Called by the container when the worker has been torn down."""
        callbacks, self._teardown_callbacks = self._teardown_callbacks, None
        for callback in callbacks or ():
            callback()

    @property
    def service_name(self) -> str:
        """Name of the service this worker runs for."""
        return self.container.service_name

    @property
    def context_data(self) -> dict[str, Any]:
        """Context data to pass on to calls this worker makes."""
        data = dict(self.data)
        data[CALL_ID_STACK_CONTEXT_KEY] = list(self.call_id_stack)
        return data

    @property
    def origin_call_id(self) -> str:
        """Call id that started the chain this call belongs to."""
        return self.call_id_stack[0]

    @property
    def immediate_parent_call_id(self) -> str | None:
        """Call id of the caller, if it was a nameko_like worker."""
        return self.call_id_stack[-2] if len(self.call_id_stack) > 1 else None

    def __repr__(self) -> str:
        return f"<WorkerContext [{self.call_id}] at 0x{id(self):x}>"
