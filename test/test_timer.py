"""@timer: schedule without drift or overlap, eager start, prompt stop."""

import itertools
import time

import pytest

from nameko_like._eventlet import eventlet
from nameko_like.testing.services import entrypoint_waiter
from nameko_like.timer import Timer, timer


def make_service(interval, work=0.0, eager=False):
    """A service whose timer records when each run started and overlaps."""

    class Service:
        name = "ticker"
        starts = []
        running = 0
        peak = 0

        @timer(interval=interval, eager=eager)
        def tick(self):
            cls = type(self)
            cls.starts.append(time.monotonic())
            cls.running += 1
            cls.peak = max(cls.peak, cls.running)
            try:
                eventlet.sleep(work)
            finally:
                cls.running -= 1

    return Service


def test_schedule_does_not_drift(container_factory):
    # Intervals are counted from the start of each run, so a 0.05 s run
    # every 0.1 s still fires 10 times a second (drifting: about 6.7).
    service = make_service(interval=0.1, work=0.05)
    container = container_factory(service)
    container.start()
    eventlet.sleep(1.05)
    container.stop()

    assert 8 <= len(service.starts) <= 11


def test_a_run_longer_than_the_interval_is_never_overlapped(container_factory):
    service = make_service(interval=0.1, work=0.25)
    container = container_factory(service)
    container.start()
    eventlet.sleep(1.1)
    container.stop()

    assert service.peak == 1
    # Back to back: the next run starts as soon as the previous one ends.
    gaps = [later - earlier for earlier, later in itertools.pairwise(service.starts)]
    assert len(service.starts) >= 3
    assert all(0.24 < gap < 0.5 for gap in gaps)


def test_eager_timer_fires_at_start(container_factory):
    service = make_service(interval=5, eager=True)
    container = container_factory(service)

    with entrypoint_waiter(container, "tick", timeout=1):
        started = time.monotonic()
        container.start()

    assert service.starts[0] - started < 0.5
    container.stop()


def test_lazy_timer_waits_one_interval_first(container_factory):
    service = make_service(interval=0.3)
    container = container_factory(service)
    container.start()
    started = time.monotonic()

    eventlet.sleep(0.15)
    assert service.starts == []
    with entrypoint_waiter(container, "tick", timeout=2):
        pass
    assert service.starts[0] - started >= 0.25
    container.stop()


def test_stop_is_prompt_between_runs(container_factory):
    service = make_service(interval=30)
    container = container_factory(service)
    container.start()
    eventlet.sleep(0.05)

    started = time.monotonic()
    container.stop()

    assert time.monotonic() - started < 1
    assert service.starts == []


def test_stop_lets_a_run_in_progress_finish(container_factory):
    service = make_service(interval=0.05, work=0.3, eager=True)
    container = container_factory(service)
    container.start()
    eventlet.sleep(0.1)
    assert service.running == 1

    container.stop()

    assert service.running == 0
    assert len(service.starts) == 1


def test_a_failing_run_does_not_stop_the_timer(container_factory):
    class Service:
        name = "flaky"
        runs = 0

        @timer(interval=0.05)
        def tick(self):
            type(self).runs += 1
            raise ValueError("tick failed")

    container = container_factory(Service)
    container.start()
    eventlet.sleep(0.3)

    assert Service.runs >= 3
    assert container.running
    container.stop()


def test_interval_must_not_be_negative():
    with pytest.raises(ValueError, match="must not be negative"):
        Timer(interval=-1)


def test_zero_interval_runs_back_to_back_and_lets_others_run(container_factory):
    service = make_service(interval=0)
    container = container_factory(service)
    others = []

    def other():
        for _ in range(5):
            others.append(time.monotonic())
            eventlet.sleep(0)

    container.start()
    eventlet.spawn(other).wait()
    eventlet.sleep(0.05)
    container.stop()

    assert len(others) == 5
    assert len(service.starts) > 10
    assert service.peak == 1
