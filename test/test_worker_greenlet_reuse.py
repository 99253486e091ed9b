"""A spawned worker (RPC, events, timers...) runs in a worker greenlet nothing remembers.

The greenlet may be one that ran an earlier worker: only if nothing could
tell it from a new one (its threading.local values, context variables,
attributes, a timer or reference kept for it). The @http side of the same
mechanism is tested in test/web/test_worker_greenlet.py.
"""

import contextvars
import gc
import sys
import threading
import weakref

import pytest

from nameko_like._eventlet import eventlet
from nameko_like.containers import ServiceContainer
from nameko_like.testing.services import dummy, entrypoint_hook
from nameko_like.worker_greenlet import WorkerGreenlet

_local = threading.local()
_var = contextvars.ContextVar("_var", default="empty")
_remembered = []
_containers = {}
_services = []


class Payload:
    """Something a worker is given (its only reference is the call's)."""


class Service:
    name = "service"

    @dummy
    def greenlet(self):
        return id(eventlet.getcurrent())

    @dummy
    def local(self):
        previous = getattr(_local, "value", "empty")
        _local.value = "set by an earlier worker"
        return previous

    @dummy
    def contextvar(self):
        previous = _var.get()
        _var.set("set by an earlier worker")
        return previous

    @dummy
    def greenlet_attribute(self):
        current = eventlet.getcurrent()
        previous = getattr(current, "marker", "empty")
        current.marker = "set by an earlier worker"
        return previous

    @dummy
    def handled_error(self):
        previous = repr(sys.exc_info()[1])
        try:
            raise ValueError("handled by an earlier worker")
        except ValueError:
            eventlet.sleep(0)  # switches out with the error being handled
        return previous

    @dummy
    def remember(self):
        _remembered.append(eventlet.getcurrent())
        return id(_remembered[-1])

    @dummy
    def leaky_timeout(self):
        eventlet.Timeout(0.1)  # armed and never cancelled: a user's slip
        return "leaked"

    @dummy
    def slow(self):
        eventlet.sleep(0.3)
        return "slow done"

    @dummy
    def keep_track(self, payload):
        _services.append(weakref.ref(self))
        _services.append(weakref.ref(payload))
        return "tracked"

    @dummy
    def stray_switch_later(self):
        # a switch into this greenlet after the worker ended, with no job
        eventlet.hubs.get_hub().schedule_call_global(0.01, eventlet.getcurrent().switch)
        return "armed"

    @dummy
    def kill_own_container(self):
        _containers["self"].kill()  # an admin entrypoint, say
        return "killed"


def _live_worker_greenlets():
    return [obj for obj in gc.get_objects()
            if isinstance(obj, WorkerGreenlet) and not obj.dead]


def _calls(container, method, count):
    with entrypoint_hook(container, method) as call:
        return [call() for _ in range(count)]


def test_a_worker_greenlet_nothing_remembers_runs_the_next_worker(container_factory):
    container = container_factory(Service)
    container.start()
    assert len(set(_calls(container, "greenlet", 4))) == 1


@pytest.mark.parametrize("method", ["local", "contextvar", "greenlet_attribute"])
def test_state_a_worker_left_on_its_greenlet_is_not_seen_by_the_next(container_factory,
                                                                      method):
    container = container_factory(Service)
    container.start()
    assert _calls(container, method, 3) == ["empty"] * 3


def test_the_error_an_earlier_worker_handled_is_not_the_next_ones(container_factory):
    container = container_factory(Service)
    container.start()
    assert _calls(container, "handled_error", 3) == ["None"] * 3


def test_a_worker_greenlet_someone_remembers_is_not_reused(container_factory):
    container = container_factory(Service)
    container.start()
    try:
        remembered = _calls(container, "remember", 1)[0]
        assert _calls(container, "greenlet", 1)[0] != remembered
    finally:
        _remembered.clear()


def test_a_timeout_a_finished_worker_left_armed_spares_the_next_worker(container_factory):
    container = container_factory(Service)
    container.start()
    assert _calls(container, "leaky_timeout", 1) == ["leaked"]
    assert _calls(container, "slow", 1) == ["slow done"]


def test_a_worker_that_outlives_its_container_is_not_kept(container_factory):
    container = container_factory(Service)
    _containers["self"] = container
    container.start()
    try:
        assert _calls(container, "kill_own_container", 1) == ["killed"]
    finally:
        _containers.clear()
    eventlet.sleep(0.1)
    assert len(container._idle_worker_greenlets) == 0
    assert _live_worker_greenlets() == []


def test_a_container_dropped_without_stopping_leaves_no_worker_greenlet():
    container = ServiceContainer(Service, {})
    container.start()
    _calls(container, "greenlet", 2)
    assert len(container._idle_worker_greenlets) == 1
    del container
    gc.collect()
    assert _live_worker_greenlets() == []


def test_a_parked_worker_greenlet_holds_nothing_of_its_last_worker(container_factory):
    container = container_factory(Service)
    container.start()
    _services.clear()
    with entrypoint_hook(container, "keep_track") as call:
        for _ in range(3):
            call(Payload())
    gc.collect()
    assert len(container._idle_worker_greenlets) == 1
    assert [alive() for alive in _services] == [None] * 6


def test_a_stray_switch_into_a_parked_worker_greenlet_is_ignored(container_factory, capfd):
    container = container_factory(Service)
    container.start()
    assert _calls(container, "stray_switch_later", 1) == ["armed"]
    eventlet.sleep(0.05)
    assert len(set(_calls(container, "greenlet", 3))) == 1
    assert capfd.readouterr().err == ""


def test_a_parked_worker_greenlet_killed_before_it_starts_runs_nothing(container_factory,
                                                                      capfd):
    container = container_factory(Service)
    container.start()
    _calls(container, "greenlet", 1)
    parked = id(container._idle_worker_greenlets._idle[0])  # (a reference would rule it out)
    entrypoint = next(entrypoint for entrypoint in container.entrypoints
                      if entrypoint.method_name == "keep_track")
    _services.clear()
    worker_ctx = container.spawn_worker(entrypoint, (Payload(),), {})
    assert id(container._worker_threads[worker_ctx]) == parked
    del worker_ctx
    # what stop() after its grace period and kill() do, before the hub
    # has had a turn to start the worker
    container._kill_worker_threads()
    assert container.free_worker_slots == container.max_workers
    eventlet.sleep(0.01)  # the switch that would have started it comes and goes
    gc.collect()
    assert _services == []  # the worker never ran
    assert _live_worker_greenlets() == []
    assert "Traceback" not in capfd.readouterr().err
