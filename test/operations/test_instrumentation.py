"""The instrumentation seam itself: dispatch to observers, publishing(), failures."""

import logging

import pytest

from nameko_like import instrumentation


class Recorder(instrumentation.Observer):
    def __init__(self):
        self.seen = []

    def rpc_call_sent(self, service_name, method_name):
        self.seen.append(("sent", service_name, method_name))

    def message_publishing(self, exchange, routing_key, headers, correlation_id):
        headers["added"] = "by observer"
        self.seen.append(("publishing", exchange, routing_key, correlation_id))

    def message_published(self, exchange, routing_key, error):
        self.seen.append(("published", exchange, routing_key, error))


class Broken(instrumentation.Observer):
    def rpc_call_sent(self, service_name, method_name):
        raise RuntimeError("observer bug")


@pytest.fixture
def registered():
    # Observers registered before this test stay (a JSONFormatter made by an
    # earlier test registers its worker tracker for the process's life).
    before = instrumentation.observers
    observers = []

    def register(observer):
        observers.append(observer)
        instrumentation.register(observer)
        return observer

    yield register
    for observer in observers:
        instrumentation.unregister(observer)
    assert instrumentation.observers == before


def test_hooks_reach_observers_that_override_them(registered, caplog):
    before = instrumentation.observers
    broken, recorder = registered(Broken()), registered(Recorder())
    registered(recorder)  # registering again does nothing
    assert instrumentation.observers == (*before, broken, recorder)
    # an instance attribute overrides a hook too
    replies = []
    plain = registered(instrumentation.Observer())
    plain.rpc_call_replied = lambda *args: replies.append(args)
    instrumentation.unregister(plain)
    registered(plain)

    with caplog.at_level(logging.ERROR, logger="nameko_like.instrumentation"):
        instrumentation.emit("rpc_call_sent", "shop", "hello")
        instrumentation.emit("rpc_call_replied", "shop", "hello", 0.5)
    # the broken observer is logged and skipped; the next one still runs
    assert recorder.seen == [("sent", "shop", "hello")]
    assert "failed in rpc_call_sent" in caplog.text
    assert replies == [("shop", "hello", 0.5)]

    instrumentation.unregister(recorder)
    instrumentation.emit("rpc_call_sent", "shop", "again")
    assert recorder.seen == [("sent", "shop", "hello")]


def test_publishing_brackets_the_publish(registered):
    recorder = registered(Recorder())
    headers = {}
    with instrumentation.publishing("orders", "placed", headers, "corr-1"):
        assert headers == {"added": "by observer"}
    error = OSError("connection lost")
    with pytest.raises(OSError), instrumentation.publishing("orders", "placed", {}):
        raise error
    assert recorder.seen == [
        ("publishing", "orders", "placed", "corr-1"), ("published", "orders", "placed", None),
        ("publishing", "orders", "placed", None), ("published", "orders", "placed", error)]


def test_observed_tells_which_hooks_an_observer_overrides(registered):
    class Confirms(instrumentation.Observer):
        def publish_confirmed(self, latency):
            pass

    before = instrumentation.observed("publish_confirmed")
    registered(Recorder())
    assert instrumentation.observed("rpc_call_sent")
    assert instrumentation.observed("publish_confirmed") is before
    confirms = registered(Confirms())
    assert instrumentation.observed("publish_confirmed")
    instrumentation.unregister(confirms)
    assert instrumentation.observed("publish_confirmed") is before


def test_publishing_costs_nothing_when_no_observer_watches_publishes(registered):
    if instrumentation.observed("message_publishing") or instrumentation.observed(
            "message_published"):
        pytest.skip("an observer registered by an earlier test watches publishes")

    class Counts(instrumentation.Observer):
        def rpc_call_sent(self, service_name, method_name):
            pass

    registered(Counts())  # as metrics: observers, none of them watching publishes
    assert instrumentation.publishing("orders", "placed", {}) is instrumentation.UNOBSERVED
    recorder = registered(Recorder())
    with instrumentation.publishing("orders", "placed", {}):
        pass
    assert recorder.seen == [("publishing", "orders", "placed", None),
                             ("published", "orders", "placed", None)]
