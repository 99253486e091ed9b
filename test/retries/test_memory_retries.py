"""On ``memory://`` messages wait in the process (nothing is persistent there anyway)."""

from __future__ import annotations

import time

from kombu import Connection, Queue

from nameko_like._eventlet import eventlet
from nameko_like.messaging import consume
from nameko_like.retries import ATTEMPTS_HEADER, Retry

QUEUE = Queue("memory-jobs")
attempts: list[float] = []


class MemoryJobs:
    name = "memory_jobs"

    @consume(QUEUE, retry=Retry(on=OSError, attempts=3, backoff=0.2, jitter=0))
    def work(self, body):
        attempts.append(time.monotonic())
        raise OSError("still down")


def test_memory_transport_retries_in_process(container_factory, memory_config, take_messages):
    attempts.clear()
    container = container_factory(MemoryJobs, memory_config)
    container.start()
    with Connection(memory_config["AMQP_URI"]) as connection:
        connection.Producer().publish("job", routing_key=QUEUE.name, declare=[QUEUE],
                                      serializer="json")
    [dead] = take_messages(memory_config, "memory_jobs.dead-letter", timeout=10)
    assert dead.headers[ATTEMPTS_HEADER] == 3
    first, second, third = attempts
    # 0.2 s then 0.4 s (the memory transport polls every few ms)
    assert 0.2 <= second - first < 0.45
    assert 0.4 <= third - second < 0.65
    eventlet.sleep(0.3)
    assert len(attempts) == 3
