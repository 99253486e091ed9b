"""Raw py-amqp baseline: the fastest RPC/events with nameko_like's guarantees.

Single-threaded py-amqp, no framework: durable topic exchange, persistent
messages, publisher confirms (pipelined: publish, then settle confirms as
they arrive), ``mandatory`` requests, prefetch 10, and each request acked
only after its reply is confirmed. Run as a server process
(``serve-rpc``/``serve-events``) and a client (``rpc-seq``, ``rpc-async``,
``events``); ``bench/run.py`` drives both.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid

import amqp

from bench_zone import measure_start, measure_stop

EXCHANGE = os.environ.get("RAW_EXCHANGE", "bench-raw-rpc")
ROUTE = os.environ.get("RAW_ROUTE", "echo.echo")
EVENTS_EXCHANGE = "bench-raw.events"


def connect(uri_host: str = "localhost:5672", vhost: str = "/") -> amqp.Connection:
    connection = amqp.Connection(host=uri_host, userid="guest", password="guest", virtual_host=vhost)
    connection.connect()
    return connection


def serve_rpc(vhost: str) -> None:
    """Echo server: reply to each request, ack it once the reply is confirmed."""
    connection = connect(vhost=vhost)
    channel = connection.channel()
    channel.exchange_declare(EXCHANGE, "topic", durable=True, auto_delete=False)
    channel.queue_declare("raw-rpc-echo", durable=True, auto_delete=False)
    channel.queue_bind("raw-rpc-echo", EXCHANGE, "echo.*")
    channel.basic_qos(0, 10, False)
    channel.confirm_select()
    pending_acks: dict[int, int] = {}
    state = {"tag": 0}

    def on_ack(delivery_tag: int, multiple: bool) -> None:
        tags = [t for t in pending_acks if t <= delivery_tag] if multiple else [delivery_tag]
        for tag in tags:
            request_tag = pending_acks.pop(tag, None)
            if request_tag is not None:
                channel.basic_ack(request_tag)

    channel.events["basic_ack"].add(on_ack)

    def on_request(message: amqp.Message) -> None:
        body = json.loads(message.body)
        reply = amqp.Message(
            json.dumps({"result": body["args"][0], "error": None}),
            content_type="application/json", delivery_mode=2,
            correlation_id=message.properties["correlation_id"],
        )
        channel.basic_publish(reply, EXCHANGE, message.properties["reply_to"])
        state["tag"] += 1
        pending_acks[state["tag"]] = message.delivery_info["delivery_tag"]

    channel.basic_consume("raw-rpc-echo", callback=on_request)
    print("ready", flush=True)
    while True:
        connection.drain_events()


WARM_UP_CALLS = 20


def rpc_client(vhost: str, count: int, pipelined: bool) -> dict:
    """Calls per second and CPU per call for ``count`` echo calls, sequential or all at once."""
    connection = connect(vhost=vhost)
    channel = connection.channel()
    routing_key = str(uuid.uuid4())
    queue = f"rpc.reply-raw-{routing_key}"
    channel.queue_declare(queue, durable=True, auto_delete=False, arguments={"x-expires": 300000})
    channel.queue_bind(queue, EXCHANGE, routing_key)
    channel.confirm_select()
    replies: dict[str, object] = {}
    channel.basic_consume(queue, callback=lambda m: replies.__setitem__(m.properties["correlation_id"], m.body),
                          no_ack=True)
    channel.events["basic_ack"].add(lambda tag, multiple: None)
    channel.events["basic_return"].add(lambda *args: None)

    def send(i: int) -> str:
        correlation_id = str(uuid.uuid4())
        message = amqp.Message(json.dumps({"args": [i], "kwargs": {}}), content_type="application/json",
                               delivery_mode=2, correlation_id=correlation_id, reply_to=routing_key)
        channel.basic_publish(message, EXCHANGE, ROUTE, mandatory=True)
        return correlation_id

    def call(i: int) -> None:
        cid = send(i)
        while cid not in replies:
            connection.drain_events()

    for i in range(WARM_UP_CALLS):  # as the nameko_like client does
        call(i)
    replies.clear()
    start = time.perf_counter()
    cpu_start = time.process_time()
    if pipelined:
        ids = [send(i) for i in range(count)]
        while len(replies) < count:
            connection.drain_events()
        assert all(cid in replies for cid in ids)
    else:
        measure_start()
        for i in range(count):
            call(i)
        measure_stop()
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    connection.close()
    return {"rate": count / elapsed, "client_cpu_us": cpu / count * 1e6}


def probe_first_answer(vhost: str, exchange: str) -> None:
    """Print a wall-clock stamp when a just-starting echo service first answers.

    Connects and prints ``ready``; then publishes one echo request
    (``mandatory``) again and again until the broker routes it, that is
    until the service's queue is bound, and prints ``time.time()`` when the
    reply arrives. ``bench/run.py`` starts the service after ``ready``.
    """
    connection = connect(vhost=vhost)
    channel = connection.channel()
    channel.exchange_declare(exchange, "topic", durable=True, auto_delete=False)
    routing_key = str(uuid.uuid4())
    queue = f"rpc.reply-probe-{routing_key}"
    channel.queue_declare(queue, exclusive=True)
    channel.queue_bind(queue, exchange, routing_key)
    channel.confirm_select()
    replies: list[float] = []
    state = {"acked": False, "returned": False}
    channel.basic_consume(queue, callback=lambda m: replies.append(time.time()), no_ack=True)
    channel.events["basic_ack"].add(lambda tag, multiple: state.__setitem__("acked", True))
    channel.events["basic_return"].add(lambda *args: state.__setitem__("returned", True))
    print("ready", flush=True)
    sys.stdin.readline()  # the service is being started
    while True:
        state.update(acked=False, returned=False)
        message = amqp.Message(json.dumps({"args": [1], "kwargs": {}}), content_type="application/json",
                               delivery_mode=2, correlation_id=str(uuid.uuid4()), reply_to=routing_key)
        channel.basic_publish(message, exchange, ROUTE, mandatory=True)
        while not state["acked"]:
            connection.drain_events()
        if not state["returned"]:
            break
        time.sleep(0.002)
    while not replies:
        connection.drain_events()
    print(replies[0], flush=True)
    connection.close()


def serve_events(vhost: str) -> None:
    """Consume events, ack each, print a count and timestamp every 1,000."""
    connection = connect(vhost=vhost)
    channel = connection.channel()
    channel.exchange_declare(EVENTS_EXCHANGE, "topic", durable=True, auto_delete=False)
    channel.queue_declare("raw-evt", durable=True, auto_delete=False)
    channel.queue_bind("raw-evt", EVENTS_EXCHANGE, "ping")
    channel.basic_qos(0, 10, False)
    seen = {"n": 0}

    def on_event(message: amqp.Message) -> None:
        json.loads(message.body)
        channel.basic_ack(message.delivery_info["delivery_tag"])
        seen["n"] += 1
        if seen["n"] % 1000 == 0:
            print(seen["n"], time.time(), flush=True)

    channel.basic_consume("raw-evt", callback=on_event)
    print("ready", flush=True)
    while True:
        connection.drain_events()


def events_client(vhost: str, count: int) -> None:
    """Dispatch ``count`` confirmed events, pipelined; wait for all confirms."""
    connection = connect(vhost=vhost)
    channel = connection.channel()
    channel.confirm_select()
    acked = {"n": 0}

    def on_ack(tag: int, multiple: bool) -> None:
        acked["n"] = tag if multiple else acked["n"] + 1

    channel.events["basic_ack"].add(on_ack)
    for i in range(count):
        message = amqp.Message(json.dumps({"i": i}), content_type="application/json", delivery_mode=2)
        channel.basic_publish(message, EVENTS_EXCHANGE, "ping", mandatory=True)
    while acked["n"] < count:
        connection.drain_events()
    connection.close()


if __name__ == "__main__":
    command, vhost = sys.argv[1], sys.argv[2]
    if command == "serve-rpc":
        serve_rpc(vhost)
    elif command == "serve-events":
        serve_events(vhost)
    elif command == "rpc-seq":
        print(json.dumps(rpc_client(vhost, int(sys.argv[3]), pipelined=False)))
    elif command == "rpc-async":
        print(json.dumps(rpc_client(vhost, int(sys.argv[3]), pipelined=True)))
    elif command == "probe":
        probe_first_answer(vhost, sys.argv[3])
    elif command == "events":
        events_client(vhost, int(sys.argv[3]))
