"""Unit tests: one service instance, its dependencies replaced. No broker."""

from nameko_like.testing.services import worker_factory

from dependency_provider import PaymentService
from rpc_greeting import WelcomeService


def test_welcome_one():
    # Every dependency is a MagicMock unless given.
    service = worker_factory(WelcomeService)
    service.greeting.hello.return_value = "Hi, Ada!"

    assert service.welcome_one("Ada") == "Hi, Ada!"
    service.greeting.hello.assert_called_once_with("Ada")


def test_pay_writes_both_entries():
    # Or give the object to inject: here a plain list for the ledger.
    entries = []
    service = worker_factory(PaymentService, ledger=entries)

    assert service.pay("alice", 30) == 30
    assert entries == [("alice", -30), ("merchant", 30)]
