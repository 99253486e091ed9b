"""A broker-side consumer cancel touches only its queue (issue 12 B).

Deleting a queue a service consumes makes the broker cancel that consumer
(basic.cancel). Before, the service took it for a lost connection: it
dropped the whole consumer connection, and every message in flight on every
queue was redelivered and ran twice.
"""

from __future__ import annotations

import collections
import time

import pytest
from kombu import Connection

from nameko_like.standalone.rpc import ClusterRpcProxy

pytestmark = pytest.mark.fault

EVENT_QUEUE = "evt-fault_source-job--fault_worker.on_job"
IN_FLIGHT = 5


@pytest.mark.timeout(60)
def test_a_deleted_queue_is_consumed_again_alone(fault_config, spawn_service, wait_ready,
                                                 records, wait_until, dispatcher):
    worker = spawn_service("fault_services:Worker", fault_config)
    wait_ready(fault_config, "fault_worker")
    with ClusterRpcProxy(fault_config, timeout=20) as cluster:
        replies = [cluster.fault_worker.slow.call_async(f"c{n}", 2.0) for n in range(IN_FLIGHT)]
        wait_until(lambda: len(records.ids("call")) == IN_FLIGHT, timeout=10,
                   message="calls in flight")
        with Connection(fault_config["AMQP_URI"]) as connection:
            connection.channel().queue_delete(EVENT_QUEUE)
        deleted_at = time.monotonic()
        results = [reply.result()["id"] for reply in replies]
    assert results == [f"c{n}" for n in range(IN_FLIGHT)]

    # the deleted queue is back (declared and bound again) and consumed
    dispatch = dispatcher(fault_config)
    wait_until(lambda: _queue_exists(fault_config, EVENT_QUEUE), timeout=5,
               message="event queue declared again")
    dispatch("fault_source", "job", {"id": "after", "seconds": 0})
    wait_until(lambda: "after" in records.ids("job"), timeout=10, message="event handled")
    handled_after = time.monotonic() - deleted_at

    runs = collections.Counter(records.ids("call"))
    reruns = sum(count - 1 for count in runs.values())
    log = worker.log()
    print(f"{IN_FLIGHT} calls in flight while their service's event queue was deleted: "
          f"{reruns} ran again; event on the re-declared queue handled "
          f"{handled_after:.2f}s after the delete")
    assert reruns == 0
    assert worker.alive
    assert "reconnect" not in log and "lost" not in log


def _queue_exists(config: dict, queue: str) -> bool:
    with Connection(config["AMQP_URI"]) as connection:
        try:
            connection.channel().queue_declare(queue, passive=True)
        except Exception:  # noqa: BLE001 - NOT_FOUND: not there (yet)
            return False
        return True
