"""Malformed messages on a service's queues (issue 8.4).

They are published raw with py-amqp, interleaved with valid ones, onto the
RPC queue (``rpc-fault_poison`` through ``nameko-rpc``), an event queue and
a plain ``@consume`` queue. A message the service cannot process must end up
in ``fault_poison.dead-letter`` exactly once, with its reason in the
``x-dead-letter-reason`` header, and never loop back; a caller that named a
``reply_to`` must hear ``MalformedRequest`` at once; the valid messages must
all be answered; and the service must stay up.
"""

from __future__ import annotations

import collections
import json
import pickle
import time
import uuid
from urllib.parse import unquote, urlsplit

import amqp
import pytest

pytestmark = pytest.mark.fault

SERVICE = "fault_poison"
DEAD_LETTER_QUEUE = f"{SERVICE}.dead-letter"
EVENT_EXCHANGE = "fault_poison_source.events"
ALWAYS_FAILS_QUEUE = "fault-always-fails"
MAX_REDELIVERIES = 3
JSON = "application/json"


class SideEffect:
    """Unpickling this creates ``path``: proof that a pickle was loaded."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def raw_connection(config: dict) -> amqp.Connection:
    parts = urlsplit(config["AMQP_URI"])
    connection = amqp.Connection(
        host=f"{parts.hostname}:{parts.port}", userid=unquote(parts.username),
        password=unquote(parts.password), virtual_host=unquote(parts.path[1:]),
        connect_timeout=5,
    )
    connection.connect()
    return connection


def take_all(connection: amqp.Connection, queue: str) -> list[amqp.Message]:
    """Every message ready on ``queue`` (acknowledged); [] if there is no such queue."""
    channel = connection.channel()
    taken = []
    try:
        while True:
            message = channel.basic_get(queue, no_ack=True)
            if message is None:
                break
            taken.append(message)
    except amqp.exceptions.NotFound:
        return taken  # the channel is closed by the broker
    channel.close()
    return taken


def ready_count(connection: amqp.Connection, queue: str) -> tuple[int, int]:
    """``(ready messages, consumers)`` of ``queue``."""
    channel = connection.channel()
    _name, messages, consumers = channel.queue_declare(queue, passive=True)
    channel.close()
    return messages, consumers


# label -> (routing key suffix, body, content type, content encoding, with reply_to)
RPC_POISON = {
    "invalid-json": ("echo", b'{"args": [1', JSON, "utf-8", True),
    "pickle": ("echo", None, "application/x-python-serialize", "binary", True),
    "unknown-content-type": ("echo", b"hello", "application/x-bogus", "binary", True),
    "non-utf8": ("echo", b"\xff\xfe\xfa{", JSON, "utf-8", True),
    "json-list": ("echo", b"[1, 2]", JSON, "utf-8", True),
    "empty-body": ("echo", b"", JSON, "utf-8", True),
    "args-not-a-list": ("echo", b'{"args": "abc", "kwargs": {}}', JSON, "utf-8", True),
    "no-reply-to": ("echo", b'{"args": ["x"], "kwargs": {}}', JSON, "utf-8", False),
}
# well-formed requests that get an error reply (and are not dead-lettered)
RPC_BAD_CALLS = {
    "unknown-method": ("no_such_method", b'{"args": [], "kwargs": {}}', "MethodNotFound"),
    "wrong-arguments": ("echo", b'{"args": [1, 2, 3], "kwargs": {}}', "IncorrectSignature"),
}
# valid JSON for an event (a handler may take any payload): handled, once
EVENT_ODD = {
    "event-json-list": b"[1, 2]",
    "event-empty-body": b"",
}
EVENT_POISON = {
    "event-invalid-json": (b'{"id": ', JSON, "utf-8"),
    "event-pickle": (None, "application/x-python-serialize", "binary"),
    "event-unknown-content-type": (b"hello", "application/x-bogus", "binary"),
    "event-non-utf8": (b"\xff\xfe\xfa{", JSON, "utf-8"),
}


@pytest.mark.timeout(90)
def test_poison_messages_are_dead_lettered_once_and_valid_ones_answered(
        fault_config, spawn_service, wait_ready, records, wait_until, tmp_path, count_tracebacks):
    config = dict(fault_config, MAX_REDELIVERIES=MAX_REDELIVERIES)
    service = spawn_service("fault_services:PoisonTarget", config)
    wait_ready(config, SERVICE)
    pickled_rpc = pickle.dumps(SideEffect(str(tmp_path / "unpickled-rpc")))
    pickled_event = pickle.dumps(SideEffect(str(tmp_path / "unpickled-event")))

    connection = raw_connection(config)
    channel = connection.channel()
    reply_key = str(uuid.uuid4())
    reply_queue, _, _ = channel.queue_declare("", exclusive=True)
    channel.queue_bind(reply_queue, "nameko-rpc", reply_key)
    replies: dict[str, tuple[dict, float]] = {}

    def on_reply(message: amqp.Message) -> None:
        replies[message.properties["correlation_id"]] = (json.loads(message.body), time.monotonic())

    channel.basic_consume(reply_queue, callback=on_reply, no_ack=True)

    sent_at: dict[str, float] = {}

    def send_rpc(label: str, method: str, body: bytes, content_type: str, encoding: str,
                 reply: bool = True) -> None:
        properties = {"content_type": content_type, "content_encoding": encoding,
                      "correlation_id": label, "message_id": label, "delivery_mode": 2}
        if reply:
            properties["reply_to"] = reply_key
        sent_at[label] = time.monotonic()
        channel.basic_publish(amqp.Message(body, **properties), exchange="nameko-rpc",
                              routing_key=f"{SERVICE}.{method}")

    def send_event(label: str, body: bytes, content_type: str, encoding: str) -> None:
        channel.basic_publish(
            amqp.Message(body, content_type=content_type, content_encoding=encoding,
                         message_id=label, delivery_mode=2),
            exchange=EVENT_EXCHANGE, routing_key="note")

    def valid(number: int) -> None:
        request = json.dumps({"args": [f"v{number}"], "kwargs": {}}).encode()
        send_rpc(f"valid-{number}", "echo", request, JSON, "utf-8")
        event = json.dumps({"id": f"ev{number}"}).encode()
        send_event(f"valid-event-{number}", event, JSON, "utf-8")

    number = 0
    valid(number)
    for label, (method, body, content_type, encoding, reply) in RPC_POISON.items():
        body = pickled_rpc if body is None else body
        send_rpc(label, method, body, content_type, encoding, reply)
        number += 1
        valid(number)
    for label, (method, body, _error) in RPC_BAD_CALLS.items():
        send_rpc(label, method, body, JSON, "utf-8")
        number += 1
        valid(number)
    for label, (body, content_type, encoding) in EVENT_POISON.items():
        send_event(label, pickled_event if body is None else body, content_type, encoding)
        number += 1
        valid(number)
    for label, body in EVENT_ODD.items():
        send_event(label, body, JSON, "utf-8")
        number += 1
        valid(number)
    # a plain queue whose handler always fails, with requeue_on_error=True
    doomed = amqp.Message(b'{"id": "doomed"}', content_type=JSON, content_encoding="utf-8",
                          message_id="always-fails", delivery_mode=2)
    channel.basic_publish(doomed, exchange="", routing_key=ALWAYS_FAILS_QUEUE)
    valid_labels = {f"valid-{n}" for n in range(number + 1)}
    expected_replies = valid_labels | set(RPC_BAD_CALLS) | {
        label for label, spec in RPC_POISON.items() if spec[4]}

    deadline = time.monotonic() + 20
    while not expected_replies <= set(replies) and time.monotonic() < deadline:
        try:
            connection.drain_events(timeout=0.2)
        except TimeoutError:
            pass
    assert set(replies) == expected_replies

    # every valid request answered with its result, once
    for n in range(number + 1):
        assert replies[f"valid-{n}"][0] == {"result": f"v{n}", "error": None}
    assert sorted(records.ids("rpc")) == sorted(f"v{n}" for n in range(number + 1))
    # well-formed requests the service can't serve get their specific error
    for label, (_method, _body, error) in RPC_BAD_CALLS.items():
        assert replies[label][0]["error"]["exc_type"] == error
    # malformed requests with a reply_to: MalformedRequest, at once
    slowest_error_reply = 0.0
    for label, spec in RPC_POISON.items():
        if spec[4]:
            body, received = replies[label]
            assert body["result"] is None
            assert body["error"]["exc_type"] == "MalformedRequest", (label, body)
            slowest_error_reply = max(slowest_error_reply, received - sent_at[label])
    assert slowest_error_reply < 2.0

    # each malformed message is in the dead-letter queue, once, with a reason
    expected_dead = set(RPC_POISON) | set(EVENT_POISON) | {"always-fails"}
    dead: list[amqp.Message] = []
    deadline = time.monotonic() + 20
    while len(dead) < len(expected_dead) and time.monotonic() < deadline:
        dead += take_all(connection, DEAD_LETTER_QUEUE)
        time.sleep(0.1)
    time.sleep(1.0)  # anything looping would show up again by now
    dead += take_all(connection, DEAD_LETTER_QUEUE)
    labels = collections.Counter(message.properties.get("message_id") for message in dead)
    reasons = {message.properties.get("message_id"): message.headers.get("x-dead-letter-reason")
               for message in dead}
    for label, reason in sorted(reasons.items()):
        print(f"dead-lettered {label}: {reason}")
    assert labels == collections.Counter(expected_dead)
    assert all(reasons.values())
    assert "MAX_REDELIVERIES=3" in reasons["always-fails"]
    # the dead-lettered copy is the original body, unchanged (the pickle
    # is kept for inspection, never loaded)
    by_label = {message.properties.get("message_id"): message for message in dead}
    assert bytes(by_label["pickle"].body) == pickled_rpc
    assert not (tmp_path / "unpickled-rpc").exists()
    assert not (tmp_path / "unpickled-event").exists()

    # the always-failing handler ran exactly 1 + MAX_REDELIVERIES times
    assert records.ids("attempt") == ["doomed"] * (MAX_REDELIVERIES + 1)
    # valid events all handled, once
    assert sorted(records.ids("event")) == sorted(
        [f"ev{n}" for n in range(number + 1)] + ["non-dict"] * len(EVENT_ODD))
    # nothing left on (or looping through) the service's queues
    assert ready_count(connection, f"rpc-{SERVICE}") == (0, 1)
    assert ready_count(connection, ALWAYS_FAILS_QUEUE) == (0, 1)
    assert ready_count(connection, f"evt-fault_poison_source-note--{SERVICE}.on_note") == (0, 1)
    connection.close()

    assert service.alive
    log = service.log()
    dead_letter_lines = sum(1 for line in log.splitlines() if "dead-lettering" in line)
    print(f"MalformedRequest replies within {slowest_error_reply * 1000:.0f} ms; "
          f"{len(dead)} dead letters; {dead_letter_lines} dead-letter warnings; "
          f"{count_tracebacks(log)} tracebacks (the always-failing handler's attempts)")
    assert dead_letter_lines == len(expected_dead)
    assert count_tracebacks(log) <= MAX_REDELIVERIES + 1
