"""Cron schedules for ``@timer(cron=...)``: when the ticks are, and the loop that waits for them.

Ticks are computed by croniter in the schedule's time zone and kept as Unix
times, so waiting for one is plain arithmetic on the wall clock. Across
daylight-saving changes the rules are those of the classic cron daemons:

* when clocks go forward, a tick in the skipped hour fires at the moment
  of the change (``30 2 * * *`` fires at 03:00 that day);
* when clocks go back, a schedule that names its hours (``30 2 * * *``,
  ``0 1-3 * * *``) fires once, in the first pass of the repeated hour,
  while one that runs every hour (``*/15 * * * *``) keeps its real-time
  rhythm through both passes.

croniter is an optional dependency (the ``cron`` extra); it is imported
when a cron schedule is made.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:
    from croniter import croniter as Croniter

_log = logging.getLogger(__name__)

#: What to install for cron schedules.
CRON_EXTRA_HINT = "pip install 'nameko_like[cron]'"

#: Longest single wait for a tick, in seconds. Waits run on a monotonic
#: timer while ticks are wall-clock times: re-reading the clock this often
#: keeps a tick on time after the clock was stepped or the machine slept.
MAX_WAIT = 60.0

def _croniter_class() -> type[Croniter]:
    try:
        from croniter import croniter
    except ImportError:
        raise ImportError(f"@timer(cron=...) needs croniter: {CRON_EXTRA_HINT}") from None
    return croniter


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown timezone {name!r}: use an IANA name such as 'Europe/Stockholm' or "
            "'UTC' (on systems without a zone database: pip install tzdata)"
        ) from None


class CronSchedule:
    """The ticks of a cron expression in a time zone.

    ``expression`` has five fields (minute hour day month weekday) or six,
    the sixth being seconds (croniter's convention: ``* * * * * */10`` is
    every ten seconds). ``timezone`` is an IANA name, by default
    UTC, whatever the machine's zone, so every instance agrees.

    Raises ``ValueError`` naming the fix for a bad expression or zone, and
    ``ImportError`` naming the extra when croniter is not installed.
    """

    def __init__(self, expression: str, timezone: str = "UTC") -> None:
        croniter = _croniter_class()
        if not isinstance(expression, str) or not croniter.is_valid(expression):
            raise ValueError(
                f"invalid cron expression {expression!r}: expected five fields "
                "'minute hour day-of-month month day-of-week' (e.g. '*/5 * * * *'), "
                "optionally a sixth for seconds"
            )
        self.expression = expression
        self.timezone = timezone
        self.zone = _zone(timezone)
        self._croniter = croniter
        # Whether the hours are named: such a schedule fires once when an
        # autumn change repeats an hour (see the module's docstring).
        hours = croniter(expression).expanded[1]
        self._hours_named = hours != ["*"] and len(hours) < 24

    def __repr__(self) -> str:
        return f"cron {self.expression!r} {self.timezone}"

    def next_after(self, moment: float) -> float:
        """The first tick strictly after ``moment`` (both Unix times)."""
        start = datetime.fromtimestamp(moment, self.zone)
        ticks = self._croniter(self.expression, start)
        while True:
            tick: float = ticks.get_next(float)
            if not (self._hours_named and self._in_second_pass(tick)):
                return tick

    def _in_second_pass(self, tick: float) -> bool:
        """Whether ``tick`` is a wall-clock time an autumn change repeats, second time round."""
        # zoneinfo marks the second occurrence of a repeated local time fold=1
        return datetime.fromtimestamp(tick, self.zone).fold == 1


#: ``wait(seconds)`` -> True once the timer is stopping (it then returns at once).
Wait = Callable[[float], bool]


def run_cron(schedule: CronSchedule, fire: Callable[[float], None], wait: Wait,
             clock: Callable[[], float] = time.time,
             may_fire: Callable[[float], bool] = lambda tick: True,
             eager: bool = False) -> None:
    """Call ``fire(tick)`` at each tick of ``schedule`` until ``wait`` says stop.

    ``fire`` returns when its run is over. A tick that comes while a run is
    still going is skipped (logged), never overlapped nor made up for: the
    next run is at the first tick after the run ended. ``may_fire(tick)``
    decides per tick (the once-per-tick leader check). With ``eager`` the
    first run is at once. ``clock`` gives Unix times; a test injects its own
    together with a ``wait`` that moves it on.
    """
    if eager:
        if wait(0):
            return
        fire(clock())
    tick = schedule.next_after(clock())
    while True:
        # Loop on the clock, not on one long wait: waking a little early must
        # not fire before the tick, and a stepped clock is noticed.
        now = clock()
        while now < tick:
            if wait(min(tick - now, MAX_WAIT)):
                return
            now = clock()
        if wait(0):
            return
        if may_fire(tick):
            fire(tick)
        else:
            _log.debug("%s: tick at %s left to the leader", schedule, _when(schedule, tick))
        next_tick = schedule.next_after(tick)
        ended = clock()
        if next_tick <= ended:
            next_tick = schedule.next_after(ended)
            _log.warning("%s: the run for %s was still going at the next tick; ticks up to "
                         "%s were skipped, the next run is at %s", schedule,
                         _when(schedule, tick), _when(schedule, ended),
                         _when(schedule, next_tick))
        tick = next_tick


def _when(schedule: CronSchedule, moment: float) -> str:
    return datetime.fromtimestamp(moment, schedule.zone).isoformat(timespec="seconds")
