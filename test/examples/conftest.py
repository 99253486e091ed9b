"""Fixtures for the travel example's tests.

The example lives in ``examples/travel``; its ``travel`` package and
``launch.py`` are made importable here, as they are when the example runs
from its own directory, and so is ``travel_tutorial`` beside this file.
"""

from __future__ import annotations

import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

TRAVEL_DIR = Path(__file__).resolve().parents[2] / "examples" / "travel"
#: This folder, for the tests' helper module travel_tutorial.
HERE = Path(__file__).resolve().parent

for folder in (TRAVEL_DIR, HERE):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

#: The local Redis the suite uses when it runs (scripts/test starts it).
REDIS_URI = "redis://localhost:6379/0"


def _redis_answers() -> bool:
    try:
        with socket.create_connection(("localhost", 6379), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture
def redis_config() -> Iterator[dict]:
    """``REDIS_URI`` and a ``REDIS_KEY_PREFIX`` of this test's own.

    Every key under the prefix is deleted afterwards. Skips when no Redis
    answers on localhost:6379 (scripts/test starts one when it can).
    """
    if not _redis_answers():
        pytest.skip("Redis does not answer on localhost:6379")
    import redis

    prefix = f"travel-test-{uuid.uuid4().hex[:12]}:"
    yield {"REDIS_URI": REDIS_URI, "REDIS_KEY_PREFIX": prefix}
    client = redis.Redis.from_url(REDIS_URI)
    try:
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
