"""The leader lock of once_per_tick timers on the real broker: one leader, kept, handed over."""

import time

import pytest
from kombu import Connection, Queue

from nameko_like._eventlet import eventlet
from nameko_like.amqp import leader_lock
from nameko_like.amqp.leader_lock import LeaderLock
from nameko_like.testing.utils import assert_stops_raising

pytestmark = pytest.mark.integration


def test_one_leader_keeps_the_lead_through_token_swaps_then_hands_it_over(
        rabbit_config, monkeypatch):
    monkeypatch.setattr(leader_lock, "TOKEN_RENEW_INTERVAL", 0.1)
    first, second = LeaderLock(rabbit_config, "svc.lock"), LeaderLock(rabbit_config, "svc.lock")
    threads = []
    try:
        first.start(lambda run: threads.append(eventlet.spawn(run)))
        assert_stops_raising(lambda: first.held_since() + 1, timeout=5)
        second.start(lambda run: threads.append(eventlet.spawn(run)))
        since = first.held_since()

        eventlet.sleep(1.5)  # about 15 token swaps
        assert first.held_since() == since
        assert second.held_since() is None
        with Connection(rabbit_config["AMQP_URI"]) as connection:
            declared = Queue("svc.lock", no_declare=True)(connection.channel()).queue_declare(
                passive=True)
        assert declared.consumer_count == 2
        assert declared.message_count <= 1  # ready tokens; the leader holds one more

        first.stop()
        stopped = time.time()
        assert first.held_since() is None
        assert_stops_raising(lambda: second.held_since() + 1, timeout=5)
        print(f"hand-over in {second.held_since() - stopped:.3f}s")
        assert second.held_since() - stopped < 1
    finally:
        first.stop()
        second.stop()
        for thread in threads:
            thread.kill()
