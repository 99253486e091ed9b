"""Messages waiting for a retry survive a broker crash and a service crash (issue 15.1).

Jobs fail their first attempt and wait in the delay queue (6 s, persistent).
While they wait, the service is ``kill -9``ed and the private broker's node
is killed (SIGKILL, as a crash) and booted again from its data; then a new
service process starts. Every job must come back, run, and be settled:
done, or dead-lettered after its last attempt. Nothing lost, nothing extra.
"""

from __future__ import annotations

import collections
import time

import pytest
from kombu import Connection, Queue

from nameko_like.retries import ATTEMPTS_HEADER

pytestmark = pytest.mark.fault

#: jobs that fail once, then succeed
FLAKY = 30
#: jobs that always fail: dead-lettered after 3 attempts
BROKEN = 10
DELAY_QUEUE = "retry_worker.retry.6000ms"
JOBS_QUEUE = Queue("retry-jobs", durable=True)
#: seconds to wait past the end for an attempt that should not happen (> the delay)
BACKOFF_MARGIN = 7.0


def _ready(config, name):
    with Connection(config["AMQP_URI"]) as connection:
        _name, ready, _consumers = connection.default_channel.queue_declare(name, passive=True)
        return ready


def _drain(config, name):
    found = []
    with Connection(config["AMQP_URI"]) as connection:
        queue = Queue(name, no_declare=True)(connection.default_channel)
        while (message := queue.get(no_ack=True, accept=["application/json"])) is not None:
            found.append(message)
    return found


@pytest.mark.timeout(180)
def test_waiting_messages_survive_broker_and_service_crashes(
        fault_broker, fault_config, spawn_service, wait_ready, records, wait_until):
    first = spawn_service("retry_services:RetryWorker", fault_config)
    wait_ready(fault_config, "retry_worker")
    jobs = ([{"id": f"flaky-{n}", "fail": 1} for n in range(FLAKY)]
            + [{"id": f"broken-{n}", "fail": 99} for n in range(BROKEN)])
    with Connection(fault_config["AMQP_URI"]) as connection:
        producer = connection.Producer()
        for job in jobs:
            producer.publish(job, routing_key=JOBS_QUEUE.name, declare=[JOBS_QUEUE],
                             serializer="json", delivery_mode=2)
    wait_until(lambda: len(records.ids("attempt")) >= len(jobs), 15, message="first attempts")
    wait_until(lambda: _ready(fault_config, DELAY_QUEUE) == len(jobs), 5,
               message="every job waiting in the delay queue")
    waiting = _ready(fault_config, DELAY_QUEUE)
    failed_at = time.monotonic()

    # the crash: service first, then the broker, while every job waits
    first.kill9()
    first.wait(10)
    fault_broker.stop_node(kill=True)
    fault_broker.start_node()
    broker_back = time.monotonic()
    second = spawn_service("retry_services:RetryWorker", fault_config)
    wait_ready(fault_config, "retry_worker")

    wait_until(lambda: len(set(records.ids("done"))) == FLAKY
               and len(records.ids("attempt")) == FLAKY * 2 + BROKEN * 3, 60,
               message="every job retried to the end")
    time.sleep(BACKOFF_MARGIN)  # anything extra would run now
    attempts = collections.Counter(records.ids("attempt"))
    done = collections.Counter(records.ids("done"))
    dead = _drain(fault_config, "retry_worker.dead-letter")

    print(f"waiting before the crash: {waiting}; broker down+up in "
          f"{broker_back - failed_at:.1f}s; attempts {sum(attempts.values())}, "
          f"done {sum(done.values())}, dead-lettered {len(dead)}")
    assert waiting == len(jobs)
    assert {job_id: count for job_id, count in attempts.items() if job_id.startswith("flaky")} \
        == {f"flaky-{n}": 2 for n in range(FLAKY)}
    assert {job_id: count for job_id, count in attempts.items() if job_id.startswith("broken")} \
        == {f"broken-{n}": 3 for n in range(BROKEN)}
    assert done == collections.Counter({f"flaky-{n}": 1 for n in range(FLAKY)})
    assert sorted(message.decode()["id"] for message in dead) == sorted(
        f"broken-{n}" for n in range(BROKEN))
    assert {message.headers[ATTEMPTS_HEADER] for message in dead} == {3}
    # the later attempts ran in the new process, the first ones in the old
    assert {record.pid for record in records.read("done")} == {second.pid}
    assert _ready(fault_config, DELAY_QUEUE) == 0
    assert _ready(fault_config, JOBS_QUEUE.name) == 0

