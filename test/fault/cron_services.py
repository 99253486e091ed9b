"""A service with a once-per-tick cron timer, run in three processes by test_cron_leader."""

import time

from fault_services import Pingable, record

from nameko_like.timer import timer

#: Seconds between ticks (a six-field cron expression: the last field is seconds).
TICK_SECONDS = 2


class CronLeader(Pingable):
    name = "fault_cron"

    @timer(cron=f"* * * * * */{TICK_SECONDS}", once_per_tick=True)
    def tick(self):
        # the tick's second, as an id: two instances firing one tick record the same id
        record("tick", str(round(time.time() / TICK_SECONDS) * TICK_SECONDS))
