"""Health checks as service methods: they run as workers, with the service's dependencies."""

from nameko_like.health import health_check
from nameko_like.rpc import RpcProxy, rpc

#: Mails accepted and not sent yet (a real service would keep them in a store).
OUTBOX: list[str] = []
#: With more than this many waiting, the service reports itself degraded.
MAX_WAITING = 100


class Pricing:
    name = "pricing"

    @rpc
    def ping(self):
        return "pong"


class Mailer:
    name = "mailer"
    pricing = RpcProxy("pricing")

    @rpc
    def send(self, address):
        OUTBOX.append(address)

    @health_check
    def outbox(self):
        waiting = len(OUTBOX)
        return waiting <= MAX_WAITING or f"{waiting} mails waiting"

    @health_check(critical=True, timeout=2)
    def pricing_answers(self):
        # an exception (UnknownService while pricing is down) fails the check
        self.pricing.ping()
