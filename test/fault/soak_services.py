"""Services of the soak test (test_soak.py), run in subprocesses."""

from nameko_like.exceptions import UnknownService
from nameko_like.rpc import RpcProxy, rpc


class SoakBackend:
    name = "soak_backend"

    @rpc
    def ping(self):
        return "pong"

    @rpc
    def echo(self, value):
        return value


class SoakGateway:
    """Calls the backend and a service that does not exist, through RpcProxy."""

    name = "soak_gateway"
    backend = RpcProxy("soak_backend", timeout=10)
    missing = RpcProxy("soak_nobody_serves_this", timeout=10)

    @rpc
    def ping(self):
        return "pong"

    @rpc
    def fan_out(self, rounds, window):
        """``rounds`` x ``window`` pipelined calls to the backend and as many
        fast-failing ones; what came back, and how many replies are still
        expected by this container's reply listener afterwards."""
        ok = unknown = 0
        for _ in range(rounds):
            replies = [self.backend.echo.call_async(index) for index in range(window)]
            missing = [self.missing.anything.call_async(index) for index in range(window)]
            ok += sum(1 for index, reply in enumerate(replies) if reply.result() == index)
            for reply in missing:
                try:
                    reply.result()
                except UnknownService:
                    unknown += 1
        # white-box: the reply listener's table of calls awaiting a reply
        pending = self.backend._router.waiting
        return {"ok": ok, "unknown": unknown, "pending": pending}
