"""One hostile message must never take a service down (issue 12, part 1).

Published raw with py-amqp onto the RPC and event queues of a service
running in its own process: deeply nested JSON (a RecursionError in the
decoder), a bz2 "bomb" of a few hundred bytes that inflates to 256 MiB,
a compression scheme the service does not accept, and a message over
``MAX_MESSAGE_SIZE``. Each must be dead-lettered once with its reason, the
RPC ones answered with ``MalformedRequest``; the handler must never run for
them; the service's peak memory must stay within ``MAX_DECODED_SIZE`` of
where it started, and a probe call made right behind the bomb must be
answered promptly.
"""

from __future__ import annotations

import bz2
import collections
import json
import time
import uuid
import zlib
from pathlib import Path
from urllib.parse import unquote, urlsplit

import amqp
import pytest

pytestmark = pytest.mark.fault

SERVICE = "fault_poison"
DEAD_LETTER_QUEUE = f"{SERVICE}.dead-letter"
EVENT_EXCHANGE = "fault_poison_source.events"
JSON = "application/json"
MAX_MESSAGE_SIZE = 1024 * 1024
MAX_DECODED_SIZE = 8 * 1024 * 1024
BOMB_SIZE = 256 * 1024 * 1024


def bz2_bomb(size: int) -> bytes:
    """Zeros that inflate to ``size`` bytes, compressed by bz2 to a few hundred bytes."""
    compressor = bz2.BZ2Compressor(9)
    chunk = bytes(1024 * 1024)
    parts = [compressor.compress(chunk) for _ in range(size // len(chunk))]
    parts.append(compressor.flush())
    return b"".join(parts)


def peak_rss_kib(pid: int) -> int:
    """The process's peak resident set size (VmHWM), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM for pid {pid}")


@pytest.mark.timeout(120)
def test_hostile_messages_are_dead_lettered_without_harm(
        fault_config, spawn_service, wait_ready, records):
    config = dict(fault_config, MAX_MESSAGE_SIZE=MAX_MESSAGE_SIZE,
                  MAX_DECODED_SIZE=MAX_DECODED_SIZE, ACCEPT_COMPRESSION=["bzip2", "zlib"])
    service = spawn_service("fault_services:PoisonTarget", config)
    wait_ready(config, SERVICE)
    peak_before = peak_rss_kib(service.pid)

    connection = _raw_connection(config)
    channel = connection.channel()
    reply_key = str(uuid.uuid4())
    reply_queue, _, _ = channel.queue_declare("", exclusive=True)
    channel.queue_bind(reply_queue, "nameko-rpc", reply_key)
    replies: dict[str, tuple[dict, float]] = {}

    def on_reply(message: amqp.Message) -> None:
        replies[message.properties["correlation_id"]] = (json.loads(message.body),
                                                         time.monotonic())

    channel.basic_consume(reply_queue, callback=on_reply, no_ack=True)
    sent_at: dict[str, float] = {}

    def send_rpc(label: str, body: bytes, **headers: str) -> None:
        sent_at[label] = time.monotonic()
        channel.basic_publish(
            amqp.Message(body, content_type=JSON, content_encoding="utf-8", correlation_id=label,
                         message_id=label, reply_to=reply_key, delivery_mode=2,
                         application_headers=headers),
            exchange="nameko-rpc", routing_key=f"{SERVICE}.echo")

    def send_event(label: str, body: bytes, **headers: str) -> None:
        channel.basic_publish(
            amqp.Message(body, content_type=JSON, content_encoding="utf-8", message_id=label,
                         delivery_mode=2, application_headers=headers),
            exchange=EVENT_EXCHANGE, routing_key="note")

    nested = b"[" * 100_000 + b"]" * 100_000
    assert len(nested) > MAX_MESSAGE_SIZE / 10  # well under the size limit
    deep_request = b'{"args": [' + b"[" * 50_000 + b"]" * 50_000 + b'], "kwargs": {}}'
    bomb = bz2_bomb(BOMB_SIZE)
    assert len(bomb) < 2048
    not_accepted = zlib.compress(json.dumps({"args": ["lzma?"], "kwargs": {}}).encode())
    oversized = json.dumps({"args": ["x" * (MAX_MESSAGE_SIZE + 10)], "kwargs": {}}).encode()

    send_rpc("rpc-nested-json", deep_request)
    send_rpc("rpc-bz2-bomb", bomb, compression="application/x-bz2")
    send_rpc("probe-after-bomb", json.dumps({"args": ["probe"], "kwargs": {}}).encode())
    send_rpc("rpc-refused-compression", not_accepted, compression="application/x-lzma")
    send_rpc("rpc-oversized", oversized)
    send_event("event-nested-json", nested)
    send_event("event-bz2-bomb", bomb, compression="application/x-bz2")
    send_event("event-oversized", b'{"id": "' + b"y" * (MAX_MESSAGE_SIZE + 10) + b'"}')
    send_rpc("probe-last", json.dumps({"args": ["last"], "kwargs": {}}).encode())

    expected_replies = {"rpc-nested-json", "rpc-bz2-bomb", "probe-after-bomb",
                        "rpc-refused-compression", "rpc-oversized", "probe-last"}
    deadline = time.monotonic() + 30
    while not expected_replies <= set(replies) and time.monotonic() < deadline:
        try:
            connection.drain_events(timeout=0.2)
        except TimeoutError:
            pass
    assert set(replies) == expected_replies, service.log()

    for label in ("rpc-nested-json", "rpc-bz2-bomb", "rpc-refused-compression", "rpc-oversized"):
        body, _received = replies[label]
        assert body["result"] is None
        assert body["error"]["exc_type"] == "MalformedRequest", (label, body)
    assert replies["probe-after-bomb"][0] == {"result": "probe", "error": None}
    assert replies["probe-last"][0] == {"result": "last", "error": None}
    probe_latency = replies["probe-after-bomb"][1] - sent_at["probe-after-bomb"]

    # every hostile message dead-lettered exactly once, with a reason that says why
    expected_dead = {"rpc-nested-json", "rpc-bz2-bomb", "rpc-refused-compression",
                     "rpc-oversized", "event-nested-json", "event-bz2-bomb", "event-oversized"}
    dead: list[amqp.Message] = []
    deadline = time.monotonic() + 20
    while len(dead) < len(expected_dead) and time.monotonic() < deadline:
        dead += _take_all(channel, DEAD_LETTER_QUEUE)
        time.sleep(0.1)
    time.sleep(1.0)  # a redelivery loop would show by now
    dead += _take_all(channel, DEAD_LETTER_QUEUE)
    labels = collections.Counter(message.properties.get("message_id") for message in dead)
    assert labels == collections.Counter(expected_dead)
    reasons = {message.properties["message_id"]: message.headers["x-dead-letter-reason"]
               for message in dead}
    assert "RecursionError" in reasons["rpc-nested-json"]
    assert "RecursionError" in reasons["event-nested-json"]
    assert "MAX_DECODED_SIZE" in reasons["rpc-bz2-bomb"]
    assert "MAX_DECODED_SIZE" in reasons["event-bz2-bomb"]
    assert "ACCEPT_COMPRESSION" in reasons["rpc-refused-compression"]
    assert "MAX_MESSAGE_SIZE" in reasons["rpc-oversized"]
    assert "MAX_MESSAGE_SIZE" in reasons["event-oversized"]
    # the dead-lettered bomb is the original bytes, not inflated
    by_label = {message.properties["message_id"]: message for message in dead}
    assert bytes(by_label["rpc-bz2-bomb"].body) == bomb

    # the handlers never ran for a hostile message; the probes ran once each
    assert sorted(records.ids("rpc")) == ["last", "probe"]
    assert records.ids("event") == []
    assert service.alive
    peak_after = peak_rss_kib(service.pid)
    growth_mib = (peak_after - peak_before) / 1024
    print(f"peak RSS {peak_before / 1024:.0f} -> {peak_after / 1024:.0f} MiB "
          f"(+{growth_mib:.0f}); probe behind the bomb answered in {probe_latency * 1000:.0f} ms")
    # a 256 MiB bomb capped at 8 MiB: the peak grows by a few MiB, not hundreds
    assert growth_mib < 40
    assert probe_latency < 2.0
    connection.close()


def _take_all(channel: amqp.Channel, queue: str) -> list[amqp.Message]:
    taken = []
    while True:
        message = channel.basic_get(queue, no_ack=True)
        if message is None:
            return taken
        taken.append(message)


def _raw_connection(config: dict) -> amqp.Connection:
    parts = urlsplit(config["AMQP_URI"])
    connection = amqp.Connection(
        host=f"{parts.hostname}:{parts.port}", userid=unquote(parts.username or ""),
        password=unquote(parts.password or ""), virtual_host=unquote(parts.path[1:]),
        connect_timeout=5)
    connection.connect()
    return connection
