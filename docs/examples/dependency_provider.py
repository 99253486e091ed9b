from nameko_like.extensions import DependencyProvider
from nameko_like.rpc import rpc


class Ledger(DependencyProvider):
    """Gives each worker a list to write entries to; they are booked only
    if the worker succeeds, so a failed call leaves no half-written trace.
    """

    def setup(self):
        # Called once per container, before it starts.
        self.book = []
        self.pending = {}

    def get_dependency(self, worker_ctx):
        # Called for every worker: its return value is `self.ledger` there.
        entries = self.pending[worker_ctx] = []
        return entries

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        # Called once the method returned (exc_info is None) or raised.
        entries = self.pending.pop(worker_ctx)
        if exc_info is None:
            self.book.extend(entries)

    def worker_teardown(self, worker_ctx):
        # Called last, whatever happened: never leak per-worker state.
        self.pending.pop(worker_ctx, None)


class PaymentService:
    name = "payments"

    ledger = Ledger()

    @rpc
    def pay(self, account, amount):
        self.ledger.append((account, -amount))
        if amount > 100:
            raise ValueError("amount over the limit")
        self.ledger.append(("merchant", amount))
        return amount
