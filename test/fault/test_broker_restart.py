"""The broker goes away for ~10 s under load, then comes back (issue 8.1, 8.2).

The private node's application is stopped (``rabbitmqctl stop_app``: every
client connection drops, new ones are refused) and started again; durable
queues and their persistent messages survive, as in a real broker restart.
"""

from __future__ import annotations

import collections
import re
import signal
import time
from dataclasses import dataclass

import pytest

from nameko_like._eventlet import eventlet
from nameko_like.exceptions import RpcConnectionError, RpcTimeout
from nameko_like.rpc.client import RpcReply
from nameko_like.standalone.rpc import ClusterRpcProxy

pytestmark = pytest.mark.fault

#: How long the broker stays stopped.
OUTAGE_SECONDS = 10.0
CALL_TIMEOUT = 5.0
#: How much longer than its timeout a call may take to raise.
TIMEOUT_MARGIN = 1.5
CALLERS = 10
#: Successful calls each caller must make after the restart.
CALLS_AFTER_RESTART = 5
RECOVERY_DEADLINE = 40.0


@dataclass
class Call:
    caller: int
    call_id: str
    started: float
    duration: float
    error: str | None
    #: whether the broker confirmed the request (None: never published)
    confirmed: bool | None


class Phases:
    """When the fault happened, on the test process's monotonic clock."""

    stop_issued = stop_done = start_issued = start_done = float("inf")


def _restart(broker, phases: Phases, outage: float) -> None:
    phases.stop_issued = time.monotonic()
    broker.stop_app()
    phases.stop_done = time.monotonic()
    time.sleep(outage)
    phases.start_issued = time.monotonic()
    broker.start_app()
    phases.start_done = time.monotonic()


@pytest.mark.timeout(150)
def test_broker_restart_under_rpc_load(fault_broker, fault_config, spawn_service, wait_ready,
                                       records, wait_until, count_tracebacks, monkeypatch, caplog):
    backend = spawn_service("fault_services:Backend", fault_config)
    frontend = spawn_service("fault_services:Frontend", fault_config)
    wait_ready(fault_config, "fault_backend")
    wait_ready(fault_config, "fault_frontend")

    # Which requests did the broker confirm? (The outcome of a request's
    # publish is reported to its RpcReply.)
    confirmed: dict[str, bool] = {}
    original = RpcReply.on_publish_outcome

    def tracking(reply, outcome):
        confirmed[reply.correlation_id] = outcome.error is None
        original(reply, outcome)

    monkeypatch.setattr(RpcReply, "on_publish_outcome", tracking)

    calls: list[Call] = []
    unexpected: list[BaseException] = []
    phases = Phases()
    stop = eventlet.event.Event()

    def caller(index: int, cluster) -> None:
        for number in range(10 ** 6):
            if stop.ready():
                return
            call_id = f"c{index}-{number}"
            started = time.monotonic()
            correlation_id = None
            error = None
            try:
                reply = cluster.fault_frontend.relay.call_async(call_id)
                correlation_id = reply.correlation_id
                assert reply.result() == {"id": call_id, "pid": backend.pid}
            except (RpcConnectionError, RpcTimeout) as exc:
                error = type(exc).__name__
            except Exception as exc:  # noqa: BLE001 - anything else is a finding
                unexpected.append(exc)
                error = type(exc).__name__
            calls.append(Call(index, call_id, started, time.monotonic() - started, error,
                              confirmed.get(correlation_id) if correlation_id else None))
            time.sleep(0.2 if error else 0.05)

    def recovered() -> bool:
        after = collections.Counter(call.caller for call in calls
                                    if call.error is None and call.started > phases.start_done)
        return all(after[index] >= CALLS_AFTER_RESTART for index in range(CALLERS))

    proxies = [ClusterRpcProxy(fault_config, timeout=CALL_TIMEOUT) for _ in range(CALLERS)]
    callers = []
    try:
        clusters = [proxy.start() for proxy in proxies]
        callers = [eventlet.spawn(caller, index, cluster) for index, cluster in enumerate(clusters)]
        time.sleep(2.0)  # steady load first
        _restart(fault_broker, phases, OUTAGE_SECONDS)
        deadline = time.monotonic() + RECOVERY_DEADLINE
        while not recovered() and time.monotonic() < deadline:
            time.sleep(0.2)
        recovery_seconds = time.monotonic() - phases.start_done
        if not recovered():
            # for the report: where each service's greenthreads wait
            for process in (backend, frontend):
                process.process.send_signal(signal.SIGUSR1)
            time.sleep(1.0)
    finally:
        stop.send(None)
        for thread in callers:
            thread.wait()
        for proxy in proxies:
            proxy.stop()

    # -- what happened -----------------------------------------------------------
    errors = collections.Counter(call.error for call in calls if call.error)
    during = [call for call in calls if call.error]
    slowest = max(calls, key=lambda call: call.duration)
    confirmed_failed = [call for call in calls if call.error and call.confirmed]
    print(f"calls: {len(calls)}, ok {len(calls) - len(during)}, errors {dict(errors)}; "
          f"slowest {slowest.duration:.2f}s ({slowest.error}); "
          f"stop_app took {phases.stop_done - phases.stop_issued:.2f}s, "
          f"start_app {phases.start_done - phases.start_issued:.2f}s; "
          f"every caller recovered within {recovery_seconds:.2f}s; "
          f"{len(confirmed_failed)} failed calls had been confirmed by the broker")

    # both services survived
    assert backend.alive and frontend.alive
    # no call raised anything but a clear connection error or timeout
    assert not unexpected, unexpected[:5]
    assert set(errors) <= {"RpcConnectionError", "RpcTimeout"}
    assert during, "the outage was not noticed by any caller"
    # the SAME proxies work again after the restart
    assert recovered(), "some callers never got a result after the restart"
    # no call waited much longer than its timeout
    assert slowest.duration <= CALL_TIMEOUT + TIMEOUT_MARGIN, slowest

    # at least once: every request the broker confirmed ran, even if its
    # caller gave up on it (requeued with the lost ack, or still queued)
    wait_until(lambda: {call.call_id for call in confirmed_failed} <= set(records.ids("frontend")),
               timeout=40, message="every confirmed request ran")
    relayed = records.ids("frontend")
    duplicates = sum(count - 1 for count in collections.Counter(relayed).values() if count > 1)
    ok_ids = {call.call_id for call in calls if call.error is None}
    assert ok_ids <= set(records.ids("backend"))
    print(f"requests run twice or more (redelivered after a lost ack): {duplicates}")

    # logs: one warning per reconnect attempt, password masked, no flood
    for process in (backend, frontend):
        log = process.log()
        assert fault_broker.password not in log
        attempts = [int(number) for number in
                    re.findall(r"cannot connect to \S+ \(.*?\); attempt (\d+)", log)]
        # one outage: one numbered warning per attempt, then "reconnected"
        assert attempts == list(range(1, len(attempts) + 1)), attempts
        assert 1 <= len(attempts) <= 10
        assert "reconnected to" in log
        assert "********" in log
        warnings = sum(1 for line in log.splitlines() if " WARNING " in line)
        tracebacks = count_tracebacks(log)
        print(f"{process.label}: {len(attempts)} reconnect attempts logged "
              f"({attempts}), {warnings} warnings, {tracebacks} tracebacks")
        assert tracebacks == 0
        assert warnings <= 60
    assert fault_broker.password not in caplog.text


@pytest.mark.timeout(150)
def test_broker_restart_under_event_load(fault_broker, fault_config, spawn_service, wait_ready,
                                         records, wait_until, count_tracebacks, dispatcher):
    total, rate = 2000, 200.0
    listener = spawn_service("fault_services:Listener", fault_config)
    wait_ready(fault_config, "fault_listener")

    dispatch = dispatcher(fault_config)
    dispatched: list[str] = []
    raised: collections.Counter = collections.Counter()
    slowest = 0.0
    phases = Phases()
    restarter = None
    started = next_at = time.monotonic()
    try:
        for number in range(total):
            if number == int(2 * rate):
                restarter = eventlet.spawn(_restart, fault_broker, phases, 5.0)
            # a steady ~200/s: no burst to catch up after a slow dispatch
            next_at = max(next_at + 1 / rate, time.monotonic() - 0.05)
            pause = next_at - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            event_id = f"e{number}"
            before = time.monotonic()
            try:
                dispatch("fault_source", "tick", {"id": event_id})
            # a dispatch that raised promised nothing
            except Exception as exc:  # noqa: BLE001
                raised[type(exc).__name__] += 1
            else:
                dispatched.append(event_id)
            slowest = max(slowest, time.monotonic() - before)
    finally:
        if restarter is not None:
            restarter.wait()
    dispatch_seconds = time.monotonic() - started

    wait_until(lambda: set(dispatched) <= set(records.ids("event")),
               timeout=60, message="every confirmed event handled")
    handled = records.read("event")
    handled_ids = [record.id for record in handled]
    lost = set(dispatched) - set(handled_ids)
    duplicates = sum(count - 1 for count in collections.Counter(handled_ids).values() if count > 1)
    # handlers resumed by themselves: how soon after start_app the first
    # event was handled (records carry wall-clock times)
    wall_start_done = time.time() - (time.monotonic() - phases.start_done)
    after = [record.time for record in handled if record.time >= wall_start_done]
    resumed = min(after) - wall_start_done if after else None
    print(f"dispatched {len(dispatched)} confirmed of {total} in {dispatch_seconds:.1f}s; "
          f"raised: {dict(raised)}; slowest dispatch {slowest:.2f}s; lost {len(lost)}; "
          f"duplicates {duplicates}; first event handled {resumed:.2f}s after start_app; "
          f"stop_app took {phases.stop_done - phases.stop_issued:.2f}s")

    assert listener.alive
    assert not lost
    assert raised, "the outage was not noticed by the dispatcher"
    assert len(dispatched) + sum(raised.values()) == total
    assert resumed is not None and resumed < 15
    assert slowest < 10
    log = listener.log()
    assert fault_broker.password not in log
    assert count_tracebacks(log) <= 2


@pytest.mark.timeout(60)
def test_burst_where_every_worker_waits_for_a_reply(fault_config, spawn_service, wait_ready):
    """After a restart the requests queued meanwhile arrive at once, and every
    worker of the relaying service calls the backend: the replies must not
    wait for a free worker (the workers are waiting for them)."""
    config = dict(fault_config, max_workers=2)
    spawn_service("fault_services:Backend", config)
    spawn_service("fault_services:Frontend", config)
    wait_ready(config, "fault_backend")
    wait_ready(config, "fault_frontend")
    with ClusterRpcProxy(config, timeout=CALL_TIMEOUT) as cluster:
        started = time.monotonic()
        replies = [cluster.fault_frontend.relay.call_async(f"b{number}") for number in range(20)]
        results = [reply.result()["id"] for reply in replies]
        elapsed = time.monotonic() - started
    print(f"20 relayed calls through 2 workers in {elapsed:.3f}s")
    assert results == [f"b{number}" for number in range(20)]
    # milliseconds when replies are not held back (it took 0.5 s per
    # blocked reply, or the relays' whole 4 s timeout, when they were)
    assert elapsed < 2.0
