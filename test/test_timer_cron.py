"""@timer(cron=...): ticks in a time zone across DST changes, no drift, no overlap, leader only.

The schedule loop (:func:`nameko_like.cron.run_cron`) runs with an injected
clock, so months of ticks and both DST changes take milliseconds; the
entrypoint itself runs in real containers on the real clock.
"""

import itertools
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from nameko_like._eventlet import eventlet
from nameko_like.cron import CronSchedule, run_cron
from nameko_like.testing.services import entrypoint_waiter
from nameko_like.timer import Timer, timer

STOCKHOLM = ZoneInfo("Europe/Stockholm")


def at(text, zone=STOCKHOLM):
    """Unix time of a local wall-clock time, e.g. at("2024-03-31 01:00")."""
    return datetime.fromisoformat(text).replace(tzinfo=zone).timestamp()


def local(moment, zone=STOCKHOLM):
    """``moment`` as local wall-clock time with its UTC offset."""
    return datetime.fromtimestamp(moment, zone).strftime("%Y-%m-%d %H:%M:%S%z")


def drive(expression, start, runs, zone="Europe/Stockholm", run_seconds=0.0, late=0.0,
          may_fire=lambda tick: True, eager=False):
    """Run ``run_cron`` on a fake clock from ``start`` until ``runs`` runs fired.

    Each run takes ``run_seconds``; each wait wakes ``late`` seconds after
    it was due (a busy hub). Returns the local times the runs started at.
    """
    now = [start]
    started = []

    def fire(tick):
        started.append(now[0])
        now[0] += run_seconds

    def wait(seconds):
        if len(started) >= runs:
            return True
        now[0] += seconds + (late if seconds else 0)
        return False

    run_cron(CronSchedule(expression, zone), fire, wait, clock=lambda: now[0],
             may_fire=may_fire, eager=eager)
    return [local(moment) for moment in started]


# --- DST ------------------------------------------------------------------------


def test_daily_job_keeps_its_wall_clock_time_across_both_dst_changes():
    # 09:00 in Stockholm is 08:00 UTC in winter and 07:00 UTC in summer.
    spring = drive("0 9 * * *", at("2024-03-29 12:00"), runs=4)
    assert spring == ["2024-03-30 09:00:00+0100", "2024-03-31 09:00:00+0200",
                      "2024-04-01 09:00:00+0200", "2024-04-02 09:00:00+0200"]
    autumn = drive("0 9 * * *", at("2024-10-25 12:00"), runs=3)
    assert autumn == ["2024-10-26 09:00:00+0200", "2024-10-27 09:00:00+0100",
                      "2024-10-28 09:00:00+0100"]


def test_spring_forward_a_tick_in_the_skipped_hour_fires_at_the_change():
    assert drive("30 2 * * *", at("2024-03-30 12:00"), runs=2) == [
        "2024-03-31 03:00:00+0200", "2024-04-01 02:30:00+0200"]


def test_spring_forward_every_30_minutes_keeps_real_time_rhythm():
    assert drive("*/30 * * * *", at("2024-03-31 01:10"), runs=4) == [
        "2024-03-31 01:30:00+0100", "2024-03-31 03:00:00+0200",
        "2024-03-31 03:30:00+0200", "2024-03-31 04:00:00+0200"]


def test_fall_back_a_job_with_named_hours_fires_once_in_the_repeated_hour():
    assert drive("30 2 * * *", at("2024-10-26 12:00"), runs=2) == [
        "2024-10-27 02:30:00+0200", "2024-10-28 02:30:00+0100"]
    assert drive("0 1-3 * * *", at("2024-10-27 00:30"), runs=4) == [
        "2024-10-27 01:00:00+0200", "2024-10-27 02:00:00+0200",
        "2024-10-27 03:00:00+0100", "2024-10-28 01:00:00+0100"]


def test_fall_back_every_30_minutes_runs_through_both_passes():
    fired = drive("*/30 * * * *", at("2024-10-27 01:10"), runs=6)
    assert fired == ["2024-10-27 01:30:00+0200", "2024-10-27 02:00:00+0200",
                     "2024-10-27 02:30:00+0200", "2024-10-27 02:00:00+0100",
                     "2024-10-27 02:30:00+0100", "2024-10-27 03:00:00+0100"]


def test_the_zone_matters():
    assert drive("0 9 * * *", at("2024-06-01 12:00", ZoneInfo("UTC")), runs=1,
                 zone="UTC") == ["2024-06-02 11:00:00+0200"]


# --- drift and overlap ------------------------------------------------------------------


def test_no_drift_runs_start_on_the_tick_whatever_the_run_length_and_wake_up_lateness():
    fired = drive("*/5 * * * *", at("2024-05-01 10:01:30"), runs=200, run_seconds=170,
                  late=0.25)
    # every run starts within the wake-up lateness of its tick, 5 minutes apart
    starts = [datetime.strptime(text, "%Y-%m-%d %H:%M:%S%z") for text in fired]
    assert starts[0].strftime("%H:%M:%S") == "10:05:00"
    assert all((b - a).total_seconds() == 300 for a, b in itertools.pairwise(starts))


def test_a_tick_during_a_run_is_skipped_never_overlapped(caplog):
    # runs take 7 minutes on a 5-minute schedule: every other tick is skipped
    fired = drive("*/5 * * * *", at("2024-05-01 09:59:00"), runs=4, run_seconds=420)
    assert fired == ["2024-05-01 10:00:00+0200", "2024-05-01 10:10:00+0200",
                     "2024-05-01 10:20:00+0200", "2024-05-01 10:30:00+0200"]
    assert "was still going at the next tick" in caplog.text


def test_eager_runs_at_once_then_on_the_ticks():
    assert drive("0 * * * *", at("2024-05-01 10:20:00"), runs=3, eager=True) == [
        "2024-05-01 10:20:00+0200", "2024-05-01 11:00:00+0200", "2024-05-01 12:00:00+0200"]


def test_ticks_the_leader_check_refuses_are_not_fired():
    refused = {at("2024-05-01 10:02"), at("2024-05-01 10:03")}
    assert drive("* * * * *", at("2024-05-01 10:00:30"), runs=3,
                 may_fire=lambda tick: tick not in refused) == [
        "2024-05-01 10:01:00+0200", "2024-05-01 10:04:00+0200", "2024-05-01 10:05:00+0200"]


def test_a_stepped_clock_is_noticed_within_a_minute():
    # The clock jumps an hour ahead while the loop waits for a tick a day
    # away: it re-reads the clock at least every MAX_WAIT seconds.
    now = [at("2024-05-01 10:00")]
    waits = []

    def wait(seconds):
        waits.append(seconds)
        if len(waits) == 1:
            now[0] += 3600
        else:
            now[0] += seconds
        return len(fired) == 1

    fired = []
    run_cron(CronSchedule("0 12 * * *", "Europe/Stockholm"), fired.append, wait,
             clock=lambda: now[0])
    assert max(waits) <= 60
    assert [local(tick) for tick in fired] == ["2024-05-01 12:00:00+0200"]
    assert sum(waits) < 2 * 3600


# --- bad arguments ------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "message"), [
    ({}, "needs either interval=SECONDS or cron='EXPRESSION'"),
    ({"interval": 5, "cron": "* * * * *"}, "needs either interval"),
    ({"cron": "*/5 * * *"}, "invalid cron expression '\\*/5 \\* \\* \\*': expected five fields"),
    ({"cron": "61 * * * *"}, "invalid cron expression"),
    ({"cron": "* * * * *", "timezone": "Europe/Stokholm"},
     "unknown timezone 'Europe/Stokholm': use an IANA name"),
    ({"interval": 5, "timezone": "UTC"}, "apply to cron schedules"),
    ({"interval": 5, "once_per_tick": True}, "apply to cron schedules"),
    ({"cron": "* * * * *", "once_per_tick": True, "eager": True}, "drop one of them"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Timer(**kwargs)


def test_description():
    assert Timer(interval=2.5, eager=True).description == "every 2.5s (eager)"
    assert Timer(cron="0 7 * * 1-5", timezone="Europe/Stockholm",
                 once_per_tick=True).description == (
        "cron '0 7 * * 1-5' Europe/Stockholm (once per tick)")
    assert Timer(cron="*/5 * * * *").description == "cron '*/5 * * * *' UTC"


# --- in a container, on the real clock ----------------------------------------------


def make_service(cron, work=0.0, **options):
    class Service:
        name = "cron_ticker"
        starts = []
        running = 0
        peak = 0

        @timer(cron=cron, **options)
        def tick(self):
            cls = type(self)
            cls.starts.append(time.time())
            cls.running += 1
            cls.peak = max(cls.peak, cls.running)
            try:
                eventlet.sleep(work)
            finally:
                cls.running -= 1

    return Service


def test_fires_on_whole_seconds(container_factory, empty_config):
    service = make_service("* * * * * *")
    container = container_factory(service, empty_config)
    container.start()
    eventlet.sleep(3.2)
    container.stop()

    assert 3 <= len(service.starts) <= 4
    assert all(start % 1 < 0.1 for start in service.starts), service.starts


def test_a_run_longer_than_a_tick_skips_ticks(container_factory, empty_config):
    service = make_service("* * * * * *", work=1.5)
    container = container_factory(service, empty_config)
    container.start()
    eventlet.sleep(5.2)
    container.stop()

    assert service.peak == 1
    assert 2 <= len(service.starts) <= 3
    gaps = [round(later - earlier) for earlier, later in itertools.pairwise(service.starts)]
    assert gaps and all(gap == 2 for gap in gaps), service.starts


def test_eager_cron_timer_fires_at_start(container_factory, empty_config):
    service = make_service("0 0 1 1 *", eager=True)
    container = container_factory(service, empty_config)
    with entrypoint_waiter(container, "tick", timeout=2):
        container.start()
    assert len(service.starts) == 1
    container.stop()


def test_once_per_tick_in_one_process_only_the_first_instance_fires(runner_factory,
                                                                     memory_config):
    first = make_service("* * * * * *", once_per_tick=True)
    second = make_service("* * * * * *", once_per_tick=True)
    second.name = first.name  # two instances of one service
    one = runner_factory(dict(memory_config), first)
    two = runner_factory(dict(memory_config), second)
    one.start()
    two.start()
    eventlet.sleep(2.2)
    assert len(first.starts) >= 2
    assert second.starts == []

    one.stop()  # the lead passes to the other instance
    eventlet.sleep(2.2)
    assert len(second.starts) >= 2
    two.stop()
