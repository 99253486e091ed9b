"""The real Nameko's client calling a nameko_like streaming method.

Nameko expects exactly one reply per call: it must get a clear error at
once (``StreamNotRequested``), not wait for its timeout, and the method
must not run.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from nameko_like.rpc import rpc

pytestmark = pytest.mark.integration


class Numbers:
    name = "nl_numbers"
    runs = 0

    @rpc(stream=True)
    def upto(self, n: int) -> Iterator[int]:
        Numbers.runs += 1
        yield from range(n)

    @rpc
    def plain(self) -> str:
        return "plain"


def test_nameko_client_gets_a_prompt_error_from_a_streaming_method(
        start_container, container_factory, rabbit_config, nameko_client):
    Numbers.runs = 0
    start_container(container_factory(Numbers, rabbit_config))

    started = time.monotonic()
    streamed, plain = nameko_client({"calls": [
        {"service": "nl_numbers", "method": "upto", "args": [3]},
        {"service": "nl_numbers", "method": "plain"},
    ]})
    took = time.monotonic() - started

    assert streamed["error"]["class"] == "nameko.exceptions.RemoteError"
    assert streamed["error"]["exc_type"] == "StreamNotRequested"
    assert "nl_numbers.upto.stream(" in streamed["error"]["value"]
    assert plain == {"result": "plain"}
    assert Numbers.runs == 0
    # the client's timeout is 20 s; a subprocess start takes a few seconds at most
    assert took < 15
