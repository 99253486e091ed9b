"""``@timer``: run a service method every ``interval`` seconds."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from nameko_like._eventlet import eventlet
from nameko_like.extensions import Entrypoint

if TYPE_CHECKING:
    from nameko_like.protocols import ExcInfo
    from nameko_like.worker_context import WorkerContext

_log = logging.getLogger(__name__)


class Timer(Entrypoint):
    """Fires the decorated method every ``interval`` seconds.

    Intervals are measured from the start of the previous run, so the
    schedule does not drift; a run that outlasts its interval is never
    overlapped: the next one starts as soon as it finishes. With ``eager``
    the first run happens at start-up instead of one interval later.

    Example::

        @timer(interval=5)
        def tick(self):
            ...
    """

    def __init__(self, interval: float, eager: bool = False, **kwargs: Any) -> None:
        # 0 is allowed, as in Nameko: the method runs back to back, yielding
        # to other greenthreads between runs.
        if interval < 0:
            raise ValueError(f"timer interval must not be negative, got {interval!r}")
        self.interval = interval
        self.eager = eager
        self._stopping = eventlet.event.Event()
        self._thread: Any = None  # eventlet's GreenThread (eventlet ships no types)
        super().__init__(**kwargs)

    def start(self) -> None:
        """Begin the schedule in a container-managed thread."""
        self._thread = self.container.spawn_managed_thread(
            self._run, identifier=f"timer:{self.method_name}"
        )

    def stop(self) -> None:
        """Stop scheduling; a run in progress is left to the container.

        The container's graceful stop waits for running workers (within its
        grace period), so the scheduling loop itself can end at once.
        """
        if not self._stopping.ready():
            self._stopping.send(True)
        if self._thread is not None:
            self._thread.kill()

    def kill(self) -> None:
        """Stop scheduling at once."""
        if self._thread is not None:
            self._thread.kill()

    def _run(self) -> None:
        next_run = time.monotonic() + (0 if self.eager else self.interval)
        while True:
            delay = max(0.0, next_run - time.monotonic())
            if not delay:
                # never run back to back without letting others run
                eventlet.sleep(0)
            if self._stopping.wait(delay) if delay else self._stopping.ready():
                return
            started = time.monotonic()
            self._fire_and_wait()
            # Measured from the start of this run, so the schedule does not
            # drift; a run longer than the interval makes the next one start
            # right after it, never beside it.
            next_run = started + self.interval

    def _fire_and_wait(self) -> None:
        done = eventlet.event.Event()

        def handle_result(
            worker_ctx: WorkerContext, result: Any, exc_info: ExcInfo | None
        ) -> tuple[Any, ExcInfo | None]:
            done.send(None)
            return result, exc_info

        self.container.spawn_worker(self, (), {}, handle_result=handle_result)
        done.wait()


timer = Timer.decorator
