"""nameko.messaging: Publisher (exchange / declare / deprecated queue) and @consume.

The test compares the topology too: what each Publisher declared, and when.
"""

import time
import warnings

import eventlet
from _side import config, module, outcome, run_main
from kombu import Exchange, Queue

messaging = module("messaging")
contextdata = module("contextdata")
rpc = module("rpc")
runners = module("runners")
standalone_rpc = module("standalone.rpc")

warnings.simplefilter("ignore", DeprecationWarning)

EXCHANGE = Exchange("diff-work", type="direct", durable=True)
WORK = Queue("diff-work-queue", exchange=EXCHANGE, routing_key="work", durable=True)
OTHER_EXCHANGE = Exchange("diff-other", type="topic", durable=True)
OTHER = Queue("diff-other-queue", exchange=OTHER_EXCHANGE, routing_key="other.#", durable=True)
NEVER_USED = Queue("diff-declared-only", exchange=EXCHANGE, routing_key="never", durable=True)

RECEIVED = []


class Producer:
    name = "producer"
    publish = messaging.Publisher(exchange=EXCHANGE, declare=[WORK])
    publish_other = messaging.Publisher(queue=OTHER)
    unused = messaging.Publisher(exchange=EXCHANGE, declare=[NEVER_USED])

    @rpc.rpc
    def send(self, payload):
        self.publish(payload, routing_key="work")

    @rpc.rpc
    def send_other(self, payload):
        self.publish_other(payload, routing_key="other.x")


class Worker:
    name = "worker"
    language = contextdata.Language()

    @messaging.consume(WORK)
    def work(self, payload):
        RECEIVED.append(["work", payload, self.language])

    @messaging.consume(OTHER)
    def other(self, payload):
        RECEIVED.append(["other", payload, self.language])


def wait_for(count, timeout=10):
    deadline = time.monotonic() + timeout
    while len(RECEIVED) < count and time.monotonic() < deadline:
        eventlet.sleep(0.02)
    eventlet.sleep(0.2)


def main():
    runner = runners.ServiceRunner(config())
    runner.add_service(Producer)
    runner.add_service(Worker)
    runner.start()
    try:
        with standalone_rpc.ClusterRpcProxy(config(), timeout=10,
                                            context_data={"language": "fr"}) as cluster:
            sent = outcome(cluster.producer.send, {"job": 1})
            sent_other = outcome(cluster.producer.send_other, [1, "x"])
        wait_for(2)
    finally:
        runner.stop()
    return {"sent": sent, "sent_other": sent_other, "received": sorted(RECEIVED)}


run_main(main)
