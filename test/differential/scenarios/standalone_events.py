"""nameko.standalone.events: event_dispatcher, side by side.

A handler service on this side receives the events; a queue of our own,
bound to the same exchange with kombu, captures the raw messages, so the
report shows what went over the wire (exchange, routing key, content type,
headers, delivery mode, body).
"""

import time  # green: _side monkey-patches

from _side import AMQP_URI, FRAMEWORK, config, module, outcome, run_main
from kombu import Connection, Exchange, Queue

events = module("events")
runners = module("runners")
extensions = module("extensions")
standalone_events = module("standalone.events")

received = []


class WorkerContextOf(extensions.DependencyProvider):
    """Injects the worker context itself, so a handler can report what it got."""

    def get_dependency(self, worker_ctx):
        return worker_ctx


class Listener:
    name = "listener"

    ctx = WorkerContextOf()

    @events.event_handler("emitter", "hello")
    def on_hello(self, payload):
        data = dict(self.ctx.context_data)
        stack = data.pop("call_id_stack", [])
        received.append({"payload": payload, "context_data": data,
                         "call_id_stack_depth": len(stack)})


def wait_for(count, timeout=10):
    deadline = time.monotonic() + timeout
    while len(received) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)  # nothing more should arrive


def raw_message(message):
    """What a message carried, minus what is random (ids, timestamps)."""
    properties = dict(message.properties)
    headers = dict(message.headers or {})
    return {
        "exchange": message.delivery_info["exchange"],
        "routing_key": message.delivery_info["routing_key"],
        "content_type": message.content_type,
        "content_encoding": message.content_encoding,
        "delivery_mode": properties.get("delivery_mode"),
        # nameko_like leaves out a priority of 0 (Nameko sends it); to the
        # broker a missing priority is 0, so this is compared as 0 on purpose
        # (docs/migrating.rst)
        "priority": properties.get("priority") or 0,
        "property_names": sorted(key for key, value in properties.items()
                                 if value is not None and key != "application_headers"
                                 and not (key == "priority" and not value)),
        "headers": headers,
        "body": message.body.decode() if isinstance(message.body, bytes) else message.body,
    }


def unheard_exchange(dispatch):
    """Dispatch as a service whose events exchange nobody has declared yet.

    Nameko's standalone dispatcher does not declare the exchange, so the
    broker refuses the publish (NotFound); nameko_like's declares it, as a
    service's EventDispatcher does, and the event is dropped like any event
    nobody handles. A deliberate difference (docs/migrating.rst): each side
    is checked for its own behaviour, and ours removes the exchange again
    so that the rest of the topology is compared.
    """
    result = outcome(dispatch, "nobody", "shout", "anyone?")
    if FRAMEWORK == "nameko":
        return result.get("raised", {}).get("type") == "NotFound"
    with Connection(AMQP_URI) as connection:
        channel = connection.channel()
        Exchange("nobody.events", type="topic", durable=True)(channel).declare(passive=True)
        Exchange("nobody.events")(channel).delete()
    return result == {"value": None}


def main():
    runner = runners.ServiceRunner(config())
    runner.add_service(Listener)
    runner.start()
    try:
        with Connection(AMQP_URI) as connection:
            # our own queue, gone with the connection: not part of the topology
            capture = Queue("capture", Exchange("emitter.events", type="topic", durable=True),
                            routing_key="hello", exclusive=True, auto_delete=True,
                            durable=False)(connection.channel())
            capture.declare()

            dispatch = standalone_events.event_dispatcher(config())
            seen = {
                "dispatch": outcome(dispatch, "emitter", "hello", {"n": 1, "text": "hi"}),
                "dispatch_list": outcome(dispatch, "emitter", "hello", [1, "two"]),
            }
            tuned = standalone_events.event_dispatcher(
                config(), delivery_mode=1, priority=3, headers={"x-extra": "yes"})
            seen["dispatch_tuned"] = outcome(tuned, "emitter", "hello", "tuned")
            wait_for(3)
            seen["handled"] = sorted(received, key=repr)

            raw = []
            for _ in range(3):
                message = capture.get(no_ack=True)
                raw.append(None if message is None else raw_message(message))
            seen["raw"] = raw
            seen["leftover"] = capture.get(no_ack=True) is not None
            seen["dispatch_unheard"] = unheard_exchange(dispatch)
        return seen
    finally:
        runner.stop()


run_main(main)
