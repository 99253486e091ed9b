"""ReplyReady: the flag a call's caller waits on, in plain and monkey-patched processes."""

import threading
import time

from nameko_like._eventlet import eventlet
from nameko_like.rpc.reply_ready import ReplyReady


def test_set_before_waiting_returns_at_once():
    ready = ReplyReady()
    assert not ready.is_set()
    ready.set()
    ready.set()  # a second set changes nothing
    assert ready.is_set()
    assert ready.wait(0) is True


def test_wait_times_out_unset():
    ready = ReplyReady()
    started = time.monotonic()
    assert ready.wait(0.05) is False
    assert time.monotonic() - started >= 0.04
    assert not ready.is_set()


def test_another_thread_wakes_every_waiter():
    ready = ReplyReady()
    results = []
    waiters = [threading.Thread(target=lambda: results.append(ready.wait(10))) for _ in range(3)]
    for waiter in waiters:
        waiter.start()
    time.sleep(0.05)  # let them wait
    ready.set()
    for waiter in waiters:
        waiter.join(10)
    assert results == [True, True, True]


def test_where_threading_is_patched_greenthreads_wait_on_eventlet(monkeypatch):
    # what a monkey-patched process sees, without patching this test process
    monkeypatch.setattr(eventlet.patcher, "is_monkey_patched", lambda module: module == "thread")
    ready = ReplyReady()
    eventlet.spawn_after(0.02, ready.set)
    assert ready.wait(10) is True
    timed_out = ReplyReady()
    assert timed_out.wait(0.02) is False
    timed_out.set()  # after its waiter gave up: nothing left to wake, no error
    assert timed_out.wait(0) is True


def test_patched_set_wakes_every_green_waiter_and_only_them(monkeypatch):
    monkeypatch.setattr(eventlet.patcher, "is_monkey_patched", lambda module: module == "thread")
    ready = ReplyReady()
    results = []
    waiters = [eventlet.spawn(lambda: results.append(ready.wait(10))) for _ in range(3)]
    patient = eventlet.spawn(lambda: results.append(ready.wait(0.01)))
    eventlet.sleep(0.05)  # the short waiter times out and leaves
    assert results == [False]
    ready.set()
    for waiter in waiters:
        waiter.wait()
    patient.wait()
    assert results == [False, True, True, True]
    # the woken greenthreads are not woken again by anything left behind
    eventlet.sleep(0.01)
    assert results == [False, True, True, True]


def test_patched_waiter_killed_while_waiting_is_not_woken_later(monkeypatch):
    monkeypatch.setattr(eventlet.patcher, "is_monkey_patched", lambda module: module == "thread")
    ready = ReplyReady()
    waiter = eventlet.spawn(ready.wait, 10)
    eventlet.sleep(0)
    waiter.kill()
    ready.set()  # nobody to wake: no switch into a dead greenthread
    eventlet.sleep(0.01)
    assert ready.wait(0) is True
