"""Call and correlation ids: unique, uuid4-shaped, from the OS's random source."""

import re

from nameko_like import worker_context
from nameko_like.worker_context import unique_id

UUID4_SHAPE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$")


def test_ids_are_uuid4_shaped_and_unique():
    ids = [unique_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    assert all(UUID4_SHAPE.match(value) for value in ids)


def test_ids_come_from_os_urandom(monkeypatch):
    # A Mersenne Twister's next outputs can be computed from ~600 past ids;
    # the OS's source can't be predicted, so that is where ids must come from.
    blocks = []

    def fake_urandom(size):
        blocks.append(size)
        return bytes(range(16)) * (size // 16)

    worker_context._forget_random_block()
    monkeypatch.setattr(worker_context.os, "urandom", fake_urandom)
    first = unique_id()
    for _ in range(worker_context._ID_BLOCK_SIZE // 16):
        unique_id()
    monkeypatch.undo()
    worker_context._forget_random_block()
    assert first == "00010203-0405-4607-0809-0a0b0c0d0e0f"
    # one system call per block of ids, not one per id
    assert blocks == [worker_context._ID_BLOCK_SIZE] * 2
