"""``@timer``: run a service method every ``interval`` seconds, or on a cron schedule."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from nameko_like._eventlet import eventlet
from nameko_like.exceptions import DeclarationError
from nameko_like.extensions import Entrypoint

if TYPE_CHECKING:
    from nameko_like.amqp.leader_lock import LeaderLock
    from nameko_like.cron import CronSchedule
    from nameko_like.protocols import ExcInfo
    from nameko_like.worker_context import WorkerContext

_log = logging.getLogger(__name__)


class Timer(Entrypoint):
    """Fires the decorated method every ``interval`` seconds, or at each ``cron`` tick.

    Intervals are measured from the start of the previous run, so the
    schedule does not drift; a run that outlasts its interval is never
    overlapped: the next one starts as soon as it finishes. With ``eager``
    the first run happens at start-up instead of one interval later.

    ``cron`` (instead of ``interval``) is a cron expression, read in
    ``timezone`` (an IANA name, default UTC); see :mod:`nameko_like.cron`.
    A tick that comes while the previous run is still going is skipped.
    With ``once_per_tick`` only one instance of the service, the leader
    chosen by the broker (:mod:`nameko_like.amqp.leader_lock`), runs each
    tick; another takes over when it goes.

    Example::

        @timer(interval=5)
        def tick(self):
            ...

        @timer(cron="0 7 * * mon-fri", timezone="Europe/Stockholm", once_per_tick=True)
        def morning_report(self):
            ...
    """

    def __init__(self, interval: float | None = None, eager: bool = False,
                 cron: str | None = None, timezone: str | None = None,
                 once_per_tick: bool = False, **kwargs: Any) -> None:
        self.interval = interval
        self.eager = eager
        self.once_per_tick = once_per_tick
        self.schedule = _cron_schedule(interval, cron, timezone, once_per_tick, eager)
        self._lock: LeaderLock | None = None
        self._stopping = eventlet.event.Event()
        self._thread: Any = None  # eventlet's GreenThread (eventlet ships no types)
        super().__init__(**kwargs)

    @property
    def description(self) -> str:
        """The schedule in words: ``every 5s (eager)``, ``cron '0 7 * * *' UTC (once per tick)``."""
        text = f"every {self.interval:g}s" if self.schedule is None else repr(self.schedule)
        return text + (" (eager)" if self.eager else "") + (
            " (once per tick)" if self.once_per_tick else "")

    def start(self) -> None:
        """Begin the schedule in a container-managed thread."""
        if self.once_per_tick:
            from nameko_like.amqp.leader_lock import LeaderLock

            name = f"{self.container.service_name}.timer-leader.{self.method_name}"
            self._lock = LeaderLock(self.container.config, name)
            self._lock.start(lambda run: self.container.spawn_managed_thread(
                run, identifier=f"timer-leader:{self.method_name}"))
        self._thread = self.container.spawn_managed_thread(
            self._run, identifier=f"timer:{self.method_name}"
        )

    def stop(self) -> None:
        """Stop scheduling; a run in progress is left to the container.

        The container's graceful stop waits for running workers (within its
        grace period), so the scheduling loop itself can end at once. A
        leader hands the lead over now.
        """
        if not self._stopping.ready():
            self._stopping.send(True)
        self.kill()

    def kill(self) -> None:
        """Stop scheduling at once."""
        if self._lock is not None:
            self._lock.stop()
        if self._thread is not None:
            self._thread.kill()

    def _run(self) -> None:
        if self.schedule is not None:
            from nameko_like.cron import run_cron

            run_cron(self.schedule, lambda tick: self._fire_and_wait(), self._wait,
                     may_fire=self._leads_at, eager=self.eager)
            return
        interval = self.interval or 0.0
        next_run = time.monotonic() + (0 if self.eager else interval)
        while True:
            if self._wait(max(0.0, next_run - time.monotonic())):
                return
            started = time.monotonic()
            self._fire_and_wait()
            # Measured from the start of this run, so the schedule does not
            # drift; a run longer than the interval makes the next one start
            # right after it, never beside it.
            next_run = started + interval

    def _wait(self, delay: float) -> bool:
        """Sleep ``delay`` seconds; True if the timer is stopping."""
        if not delay:
            # never run back to back without letting others run
            eventlet.sleep(0)
            return bool(self._stopping.ready())
        return bool(self._stopping.wait(delay))

    def _leads_at(self, tick: float) -> bool:
        # The lead must have been held at the tick itself: an instance that
        # took over just after its old leader fired that tick must not fire it again.
        if self._lock is None:
            return True
        since = self._lock.held_since()
        return since is not None and since <= tick

    def _fire_and_wait(self) -> None:
        done = eventlet.event.Event()

        def handle_result(
            worker_ctx: WorkerContext, result: Any, exc_info: ExcInfo | None
        ) -> tuple[Any, ExcInfo | None]:
            done.send(None)
            return result, exc_info

        self.container.spawn_worker(self, (), {}, handle_result=handle_result)
        done.wait()


def _cron_schedule(interval: float | None, cron: str | None, timezone: str | None,
                   once_per_tick: bool, eager: bool) -> CronSchedule | None:
    """Check the arguments of ``@timer``; the cron schedule, if it has one."""
    if (interval is None) == (cron is None):
        raise DeclarationError("@timer needs either interval=SECONDS or cron='EXPRESSION' "
                         f"(got interval={interval!r}, cron={cron!r})")
    if cron is None:
        # 0 is allowed, as in Nameko: the method runs back to back, yielding
        # to other greenthreads between runs.
        if isinstance(interval, bool) or not isinstance(interval, (int, float)):
            raise DeclarationError(f"timer interval must be a number of seconds, got {interval!r}")
        if interval < 0:
            raise DeclarationError(f"timer interval must not be negative, got {interval!r}")
        if timezone is not None or once_per_tick:
            raise DeclarationError("timezone and once_per_tick apply to cron schedules: "
                             "use @timer(cron='EXPRESSION', ...) instead of interval")
        return None
    if once_per_tick and eager:
        raise DeclarationError("eager runs on every instance at start-up, which once_per_tick "
                         "forbids: drop one of them")
    from nameko_like.cron import CronSchedule

    return CronSchedule(cron, timezone or "UTC")


timer = Timer.decorator
