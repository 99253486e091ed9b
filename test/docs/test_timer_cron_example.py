"""docs/examples/timer_cron.py, run in a container on the real broker."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from nameko_like.testing.services import entrypoint_hook
from nameko_like.testing.utils import assert_stops_raising, get_extension
from nameko_like.timer import Timer


@pytest.mark.integration
def test_timer_cron(container_factory, rabbit_config, rabbit_manager):
    from timer_cron import ReportService

    container = container_factory(ReportService, rabbit_config)
    container.start()
    with entrypoint_hook(container, "morning_report") as morning_report:
        assert morning_report() == "morning report sent"

    report = get_extension(container, Timer, method_name="morning_report")
    stockholm = ZoneInfo("Europe/Stockholm")
    friday_noon = datetime(2024, 3, 29, 12, 0, tzinfo=stockholm).timestamp()
    monday = datetime.fromtimestamp(report.schedule.next_after(friday_noon), stockholm)
    assert monday.isoformat() == "2024-04-01T07:00:00+02:00"  # summer time by then

    # the leader lock: a single-active-consumer queue, one consumer per
    # instance; this one, alone, leads within moments
    assert_stops_raising(lambda: report._lock.held_since() + 1, timeout=5)
    queue = rabbit_manager.get_queue(rabbit_config["vhost"], "reports.timer-leader.morning_report")
    assert queue["arguments"]["x-single-active-consumer"] is True
    cache = get_extension(container, Timer, method_name="refresh_cache")
    assert cache.description == "cron '*/5 * * * *' UTC"
