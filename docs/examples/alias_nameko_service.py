"""A service written for Nameko: it imports only ``nameko``, as extensions do."""

from nameko.extensions import DependencyProvider
from nameko.rpc import rpc


class Tally(DependencyProvider):
    """Shaped like nameko-redis: state made at start, handed to every worker."""

    def start(self):
        self.counts = {}

    def get_dependency(self, worker_ctx):
        return self.counts


class VisitsService:
    name = "visits"

    tally = Tally()

    @rpc
    def visit(self, page):
        self.tally[page] = self.tally.get(page, 0) + 1
        return self.tally[page]
