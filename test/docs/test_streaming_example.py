"""docs/streaming.rst: its example, run on the real broker."""

import pytest

from nameko_like.exceptions import RemoteError
from nameko_like.rpc.streaming import StreamNotRequested
from nameko_like.standalone.rpc import ClusterRpcProxy
from nameko_like.testing.services import entrypoint_hook

pytestmark = pytest.mark.integration


def test_streaming_example(container_factory, rabbit_config):
    from rpc_streaming import Ledger, Statements, main

    container_factory(Ledger, rabbit_config).start()
    statements = container_factory(Statements, rabbit_config)
    statements.start()

    first, count, failure = main(rabbit_config)
    assert [entry["number"] for entry in first] == [1, 2, 3]
    assert count == 500
    assert failure == "RemoteError: ValueError account acc-1 has only 1000 entries"
    with entrypoint_hook(statements, "total") as total:
        assert total("acc-2", 100) == sum(n * 10 for n in range(1, 101))
    with ClusterRpcProxy(rabbit_config, timeout=5) as cluster:
        with pytest.raises(RemoteError) as raised:
            cluster.ledger.entries("acc-1", 3)
    assert raised.value.exc_type == StreamNotRequested.__name__
