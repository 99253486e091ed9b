"""RPC through ServiceRunner and ClusterRpcProxy: values, errors, their wire form."""

import uuid

from _side import AMQP_URI, config, module, outcome, run_main
from kombu import Connection, Exchange, Queue

rpc = module("rpc")
runners = module("runners")
standalone_rpc = module("standalone.rpc")


class Calculator:
    name = "calculator"

    @rpc.rpc
    def add(self, a, b):
        return a + b

    @rpc.rpc
    def fail(self, message):
        raise ValueError(message, 42, [1, 2], None)

    @rpc.rpc
    def echo(self, *args, **kwargs):
        return {"args": list(args), "kwargs": kwargs}


class Caller:
    """Calls a service nobody runs, through its own RpcProxy."""

    name = "caller"
    ghost = rpc.RpcProxy("ghost")

    @rpc.rpc
    def call_ghost(self):
        return self.ghost.anything()


def raw_reply(routing_key, body):
    """Publish a request with kombu and return the reply message as it arrived."""
    reply_key = f"diff-replies-{uuid.uuid4()}"
    exchange = Exchange("nameko-rpc", type="topic", durable=True)
    with Connection(AMQP_URI) as connection:
        channel = connection.channel()
        queue = Queue(reply_key, exchange=exchange, routing_key=reply_key,
                      exclusive=True, auto_delete=True)
        queue(channel).declare()
        producer = connection.Producer(channel)
        producer.publish(body, exchange=exchange, routing_key=routing_key,
                         reply_to=reply_key, correlation_id="corr-1", serializer="json")
        received = []
        consumer = connection.Consumer(queue, callbacks=[lambda b, m: received.append((b, m))],
                                       accept=["json"])
        with consumer:
            while not received:
                try:
                    connection.drain_events(timeout=10)
                except TimeoutError:
                    return {"timed_out": True}
        reply_body, message = received[0]
        message.ack()
        return {"body": reply_body,
                "content_type": message.content_type,
                "correlation_id": message.properties.get("correlation_id")}


def main():
    runner = runners.ServiceRunner(config())
    runner.add_service(Calculator)
    runner.add_service(Caller)
    runner.start()
    try:
        with standalone_rpc.ClusterRpcProxy(config(), timeout=10) as cluster:
            calc = cluster.calculator
            return {
                "add": outcome(calc.add, 1, 2),
                "add_kwargs": outcome(calc.add, a="x", b="y"),
                "echo": outcome(calc.echo, 1, "two", three=[3]),
                "fail": outcome(calc.fail, "boom"),
                "unknown_method": outcome(calc.no_such_method),
                "bad_signature": outcome(calc.add, 1, 2, 3),
                "bad_keyword": outcome(calc.add, 1, c=2),
                "missing_argument": outcome(calc.add, 1),
                "async": outcome(lambda: calc.add.call_async(2, 3).result()),
                "unknown_service_via_proxy": outcome(cluster.caller.call_ghost),
                "raw_fail_reply": raw_reply("calculator.fail", {"args": ["boom"], "kwargs": {}}),
                "raw_bad_signature_reply": raw_reply("calculator.add",
                                                     {"args": [1, 2, 3], "kwargs": {}}),
                "raw_add_reply": raw_reply("calculator.add", {"args": [1, 2], "kwargs": {}}),
            }
    finally:
        runner.stop()


run_main(main)
