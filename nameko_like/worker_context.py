"""WorkerContext: everything known about one call while it runs."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

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
#: The ids formatted from the current block, not yet handed out. Taking one
#: is a ``next()``, atomic under the GIL: no lock, for threads or greenthreads.
_ids: Iterator[str] = iter(())


def _forget_random_block() -> None:
    # A forked child must not hand out the ids its parent will.
    global _ids
    _ids = iter(())


os.register_at_fork(after_in_child=_forget_random_block)


#: An id's characters: ``x`` the next of its 32 hex digits, ``4`` the version
#: (in place of digit 12), ``-`` itself.
_ID_LAYOUT = "xxxxxxxx-xxxx-4xxx-xxxx-xxxxxxxxxxxx"


def _ids_of(block: bytes) -> list[str]:
    """The uuid4-shaped ids of a random block, 16 bytes each, in order.

    Formatted column by column (each character position of every id at
    once, by strided slice assignment) rather than id by id: an f-string of
    five slices costs more than the rest of an id's worker.
    """
    digits = block.hex().encode("ascii")
    count = len(block) // 16
    width = len(_ID_LAYOUT) + 1  # each id and a newline
    text = bytearray(count * width)
    digit = 0
    for position, char in enumerate(_ID_LAYOUT):
        if char == "x":
            text[position::width] = digits[digit::32]
        else:
            text[position::width] = char.encode("ascii") * count
        if char != "-":
            digit += 1
    text[width - 1::width] = b"\n" * count
    return text.decode("ascii").split()


def unique_id() -> str:
    """A random id in uuid4's textual form, from the OS's random source."""
    global _ids
    value = next(_ids, None)
    while value is None:
        # Two threads may both refill: each gets ids of its own block.
        _ids = iter(_ids_of(os.urandom(_ID_BLOCK_SIZE)))
        value = next(_ids, None)
    return value


def new_call_id() -> str:
    """Return a fresh, unique id for one call (tests patch it to get predictable ids)."""
    # unique_id's fast path inline (one call less per worker)
    return next(_ids, None) or unique_id()


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
        tracked: int = self.config.get(PARENT_CALLS_CONFIG_KEY, DEFAULT_PARENT_CALLS_TRACKED)
        self.parent_calls_tracked = tracked
        self.call_id = call_id = (
            f"{container.service_name}.{entrypoint.method_name}.{new_call_id()}")
        parents = self.data.pop(CALL_ID_STACK_CONTEXT_KEY, None) if data else None
        if not parents:  # a call nothing called (HTTP, timers): no need to trim
            self.call_id_stack: list[str] = [call_id]
        else:
            parents = list(parents)
            if tracked >= 0:
                parents = parents[-tracked:] if tracked else []
            self.call_id_stack = [*parents, call_id]
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
