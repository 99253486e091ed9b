"""Streaming RPC results: a report whose rows arrive as they are read."""

from nameko_like.exceptions import RemoteError
from nameko_like.rpc import RpcProxy, rpc
from nameko_like.standalone.rpc import ClusterRpcProxy


class Ledger:
    name = "ledger"

    # stream=True: the method returns an iterable (here it is a generator)
    # and each item goes to the caller as soon as it is produced
    @rpc(stream=True)
    def entries(self, account, limit):
        for number in range(1, limit + 1):
            if number > 1000:
                raise ValueError(f"account {account} has only 1000 entries")
            yield {"account": account, "number": number, "amount": number * 10}


class Statements:
    name = "statements"

    ledger = RpcProxy("ledger")

    @rpc
    def total(self, account, limit):
        # inside a service: iterate as the items arrive
        return sum(entry["amount"] for entry in self.ledger.entries.stream(account, limit))


def main(config):
    """From a script: read the first entries, then the whole stream."""
    # the timeout applies between items, not to the whole stream
    with ClusterRpcProxy(config, timeout=5) as cluster:
        stream = cluster.ledger.entries.stream("acc-1", 500)
        first = [next(stream) for _ in range(3)]
        stream.close()  # stop early: the rest is dropped with the stream's queue
        everything = list(cluster.ledger.entries.stream("acc-1", 500))
        try:
            for _entry in cluster.ledger.entries.stream("acc-1", 2000):
                pass  # 1000 entries arrive before the error does
        except RemoteError as exc:  # the ValueError, raised after the entries
            failure = f"{type(exc).__name__}: {exc}"
    return first, len(everything), failure
