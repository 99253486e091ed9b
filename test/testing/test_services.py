"""nameko_like.testing.services, used the way the testing docs show."""

import time
# The package Nameko makes its mocks with, as ported suites import it.
from mock import MagicMock  # noqa: UP026 - that package, not unittest.mock, on purpose

import pytest

from nameko_like._eventlet import eventlet
from nameko_like.dependency_providers import Config
from nameko_like.exceptions import ContainerError, ExtensionNotFound, IncorrectSignature
from nameko_like.extensions import DependencyProvider, Extension, SharedExtension
from nameko_like.rpc import RpcProxy
from nameko_like.testing.services import (
    Dummy,
    MockDependencyProvider,
    Once,
    dummy,
    entrypoint_hook,
    entrypoint_waiter,
    once,
    replace_dependencies,
    restrict_entrypoints,
    worker_factory,
)
from nameko_like.testing.utils import get_extension
from nameko_like.testing.waiting import WaitTimeout
from nameko_like.timer import timer


class Rates(DependencyProvider):
    """Would fetch exchange rates from somewhere slow."""

    def get_dependency(self, worker_ctx):
        raise AssertionError("tests replace this provider")


class Ledger(DependencyProvider):
    def get_dependency(self, worker_ctx):
        return []


class ConversionService:
    name = "conversion"
    rates = Rates()
    ledger = Ledger()
    config = Config()

    @dummy
    def convert(self, amount, currency):
        converted = amount * self.rates.get_rate(currency)
        self.ledger.append(converted)
        return converted

    @dummy
    def fail(self):
        raise ValueError("conversion failed")

    @once("EUR")
    def warm_up(self, currency):
        self.rates.get_rate(currency)


# --- worker_factory ---------------------------------------------------------


def test_worker_factory_injects_mocks():
    service = worker_factory(ConversionService)
    service.rates.get_rate.return_value = 2

    assert service.convert(10, "EUR") == 20
    service.rates.get_rate.assert_called_once_with("EUR")
    service.ledger.append.assert_called_once_with(20)


def test_worker_factory_injects_the_objects_given():
    ledger = []
    service = worker_factory(ConversionService, ledger=ledger)
    service.rates.get_rate.return_value = 3

    service.convert(2, "USD")

    assert ledger == [6]
    assert isinstance(service.rates, MagicMock)
    # The class keeps its providers.
    assert isinstance(ConversionService.ledger, Ledger)


def test_worker_factory_mocks_rpc_proxies_without_a_spec():
    # A ServiceProxy's methods exist only when asked for, so a spec'd mock
    # would refuse them.
    class Caller:
        name = "caller"
        other = RpcProxy("other")

    service = worker_factory(Caller)
    service.other.any_method.return_value = 1
    assert service.other.any_method() == 1


def test_worker_factory_names_an_unknown_dependency():
    with pytest.raises(ExtensionNotFound, match=r"no dependency provider named bank .*, ledger, "):
        worker_factory(ConversionService, bank=object())


# --- entrypoint_hook --------------------------------------------------------


@pytest.fixture
def container(container_factory):
    container = container_factory(ConversionService)
    rates = replace_dependencies(container, "rates")
    rates.get_rate.return_value = 1.5
    container.start()
    return container


def test_hook_returns_the_result(container):
    with entrypoint_hook(container, "convert") as convert:
        assert convert(10, currency="GBP") == 15


def test_hook_reraises_the_method_error(container):
    with entrypoint_hook(container, "fail") as fail:
        with pytest.raises(ValueError, match="conversion failed"):
            fail()


def test_hook_passes_incorrect_signature_through(container):
    with entrypoint_hook(container, "convert") as convert, pytest.raises(IncorrectSignature):
        convert(1, 2, 3)


def test_hook_names_an_unknown_method(container):
    with pytest.raises(ExtensionNotFound, match=r"for 'convrt'.*convert, fail, warm_up"):
        with entrypoint_hook(container, "convrt"):
            pass


def test_hook_passes_context_data(container_factory):
    seen = []

    class Spy(DependencyProvider):
        def worker_setup(self, worker_ctx):
            seen.append(worker_ctx.data)

    class Service:
        name = "ctx"
        spy = Spy()

        @dummy
        def method(self):
            pass

    container = container_factory(Service)
    container.start()
    with entrypoint_hook(container, "method", context_data={"language": "de"}) as method:
        method()
    assert seen == [{"language": "de"}]


class SlowTeardown(DependencyProvider):
    torn_down = []

    def worker_teardown(self, worker_ctx):
        eventlet.sleep(0.05)
        self.torn_down.append(worker_ctx.call_id)


class TeardownService:
    name = "teardown"
    slow = SlowTeardown()

    @dummy
    def method(self, seconds=0):
        eventlet.sleep(seconds)
        return "done"


def test_hook_returns_after_the_worker_is_torn_down(container_factory):
    SlowTeardown.torn_down.clear()
    container = container_factory(TeardownService)
    container.start()

    with entrypoint_hook(container, "method") as method:
        assert method() == "done"
        assert len(SlowTeardown.torn_down) == 1


def test_hook_times_out(container_factory):
    container = container_factory(TeardownService)
    container.start()

    started = time.monotonic()
    with entrypoint_hook(container, "method", timeout=0.1) as method:
        with pytest.raises(WaitTimeout, match=r"teardown.method did not complete within 0.1s"):
            method(5)
    assert time.monotonic() - started < 2


class BrokenSetup(DependencyProvider):
    def worker_setup(self, worker_ctx):
        raise RuntimeError("setup broke")


def test_hook_raises_why_the_container_died_instead_of_hanging(container_factory):
    class Service:
        name = "broken"
        broken = BrokenSetup()

        @dummy
        def method(self):
            return "never"

    container = container_factory(Service)
    container.start()
    with entrypoint_hook(container, "method", timeout=5) as method:
        with pytest.raises(RuntimeError, match="setup broke"):
            method()


# --- entrypoint_waiter ------------------------------------------------------


class Ticker:
    name = "ticker"
    ticks = 0

    @timer(interval=0.05)
    def tick(self):
        type(self).ticks += 1
        return type(self).ticks

    @dummy
    def echo(self, value):
        if isinstance(value, Exception):
            raise value
        return value


@pytest.fixture
def ticker(container_factory):
    Ticker.ticks = 0
    container = container_factory(Ticker)
    container.start()
    return container


def test_waiter_waits_for_a_worker_the_block_caused(ticker):
    with entrypoint_waiter(ticker, "echo") as result:
        with entrypoint_hook(ticker, "echo") as echo:
            eventlet.spawn(echo, "hello")

    assert result.get() == "hello"


def test_waiter_waits_for_workers_started_elsewhere(ticker):
    with entrypoint_waiter(ticker, "tick", timeout=2) as result:
        pass
    assert result.get() >= 1


def test_waiter_callback_picks_the_worker(ticker):
    def third_tick(worker_ctx, result, exc_info):
        return result == 3

    with entrypoint_waiter(ticker, "tick", callback=third_tick, timeout=2) as result:
        pass

    assert result.get() == 3


def test_waiter_result_reraises_the_method_error(ticker):
    with entrypoint_waiter(ticker, "echo") as result:
        with entrypoint_hook(ticker, "echo") as echo:
            eventlet.spawn(echo, KeyError("boom"))

    with pytest.raises(KeyError, match="boom"):
        result.get()


def test_waiter_times_out_clearly(ticker):
    message = r"no worker of ticker.echo completed within 0.1s"
    with pytest.raises(entrypoint_waiter.Timeout, match=message):
        with entrypoint_waiter(ticker, "echo", timeout=0.1):
            pass


def test_waiter_timeout_mentions_the_callback(ticker):
    with pytest.raises(entrypoint_waiter.Timeout, match="satisfied the callback"):
        with entrypoint_waiter(ticker, "tick", timeout=0.2, callback=lambda *args: False):
            pass


def test_waiter_raises_what_the_callback_raised(ticker):
    def broken(worker_ctx, result, exc_info):
        raise LookupError("callback broke")

    with pytest.raises(LookupError, match="callback broke"):
        with entrypoint_waiter(ticker, "tick", callback=broken, timeout=2):
            pass


def test_waiter_names_an_unknown_method(ticker):
    with pytest.raises(ExtensionNotFound, match="'tock'"):
        with entrypoint_waiter(ticker, "tock"):
            pass


def test_waiter_leaves_no_patch_behind(ticker):
    with entrypoint_waiter(ticker, "tick", timeout=2):
        with entrypoint_waiter(ticker, "tick", timeout=2):
            assert "spawn_worker" in vars(ticker)
    assert "spawn_worker" not in vars(ticker)

    with pytest.raises(entrypoint_waiter.Timeout):
        with entrypoint_waiter(ticker, "echo", timeout=0.05):
            pass
    assert "spawn_worker" not in vars(ticker)


def test_waiter_waits_for_teardown(container_factory):
    SlowTeardown.torn_down.clear()
    container = container_factory(TeardownService)
    container.start()

    with entrypoint_waiter(container, "method"):
        with entrypoint_hook(container, "method") as method:
            eventlet.spawn(method)
    assert len(SlowTeardown.torn_down) == 1


def test_waiter_sees_the_result_the_entrypoint_handled(container_factory):
    class Wrapping(Dummy):
        """Hands on a changed result, as an RPC entrypoint serialising it would."""

        def fire(self, value):
            def handle_result(worker_ctx, result, exc_info):
                return {"wrapped": result}, exc_info

            self.container.spawn_worker(self, (value,), {}, handle_result=handle_result)

    class Service:
        name = "wrapping"

        @Wrapping.decorator
        def method(self, value):
            return value

    container = container_factory(Service)
    container.start()
    (entrypoint,) = container.entrypoints

    with entrypoint_waiter(container, "method") as result:
        entrypoint.fire(7)

    assert result.get() == {"wrapped": 7}


def test_waiter_raises_why_the_container_died(container_factory):
    class Service:
        name = "dying"
        broken = BrokenSetup()

        @timer(interval=0.05)
        def tick(self):
            pass

    container = container_factory(Service)
    container.start()
    with pytest.raises(RuntimeError, match="setup broke"):
        with entrypoint_waiter(container, "tick", timeout=5):
            pass


def test_waiter_on_a_stopped_container_fails_fast(ticker):
    ticker.stop()
    with pytest.raises(ContainerError, match="stopped before"):
        with entrypoint_waiter(ticker, "tick", timeout=5):
            pass


# --- replace_dependencies ---------------------------------------------------


def test_replace_one_dependency_returns_its_mock(container_factory):
    container = container_factory(ConversionService)
    rates = replace_dependencies(container, "rates")
    rates.get_rate.return_value = 4
    container.start()

    with entrypoint_hook(container, "convert") as convert:
        assert convert(2, "CHF") == 8
    rates.get_rate.assert_any_call("CHF")


def test_replace_several_dependencies_and_give_replacements(container_factory):
    container = container_factory(ConversionService)
    ledger = []
    rates, config = replace_dependencies(container, "rates", "config", ledger=ledger)
    rates.get_rate.return_value = 10
    container.start()

    with entrypoint_hook(container, "convert") as convert:
        convert(1, "JPY")

    assert ledger == [10]
    assert isinstance(config, MagicMock)
    assert get_extension(container, MockDependencyProvider, attr_name="ledger").dependency is ledger


def test_replacing_changes_this_container_only(container_factory):
    replaced = container_factory(ConversionService)
    replace_dependencies(replaced, "rates")
    untouched = container_factory(ConversionService)

    assert get_extension(replaced, Rates) is None
    assert get_extension(untouched, Rates) is not None
    assert isinstance(ConversionService.rates, Rates)


def test_replace_refuses_bad_requests(container_factory):
    container = container_factory(ConversionService)

    with pytest.raises(ExtensionNotFound, match="no dependency named bank, vault"):
        replace_dependencies(container, "bank", vault=1)
    with pytest.raises(ValueError, match="rates named both"):
        replace_dependencies(container, "rates", rates=1)

    container.start()
    with pytest.raises(RuntimeError, match="before the container is started"):
        replace_dependencies(container, "rates")


class Connection(SharedExtension):
    started = 0

    def start(self):
        type(self).started += 1


class Client(DependencyProvider):
    connection = Connection()


class ClientService:
    name = "client"
    client = Client()

    @dummy
    def method(self):
        pass


def test_replaced_provider_sub_extensions_are_not_started(container_factory):
    Connection.started = 0
    container = container_factory(ClientService)
    replace_dependencies(container, "client")

    container.start()

    assert Connection.started == 0
    assert container.shared_extensions == {}
    assert container.subextensions == set()


# --- restrict_entrypoints ---------------------------------------------------


class Listener(SharedExtension):
    started = 0

    def start(self):
        type(self).started += 1


class Listening(Dummy):
    listener = Listener()


class BusyService:
    name = "busy"
    calls = []

    @once("boot")
    def boot(self, arg):
        self.calls.append(arg)

    @Listening.decorator
    def listen(self):
        pass

    @dummy
    def handle(self, value):
        return value


def test_restrict_entrypoints_keeps_only_those_named(container_factory):
    BusyService.calls.clear()
    Listener.started = 0
    container = container_factory(BusyService)

    restrict_entrypoints(container, "handle")
    container.start()
    eventlet.sleep(0.05)

    assert {ep.method_name for ep in container.entrypoints} == {"handle"}
    assert BusyService.calls == []  # @once did not fire
    assert Listener.started == 0  # the listener only `listen` needed is gone
    with entrypoint_hook(container, "handle") as handle:
        assert handle(3) == 3
    with pytest.raises(ExtensionNotFound):
        with entrypoint_hook(container, "boot"):
            pass


def test_restrict_entrypoints_refuses_bad_requests(container_factory):
    container = container_factory(BusyService)

    with pytest.raises(ExtensionNotFound, match="No entrypoint for 'nope'"):
        restrict_entrypoints(container, "handle", "nope")
    assert len(container.entrypoints) == 3

    container.start()
    with pytest.raises(RuntimeError, match="before the container is started"):
        restrict_entrypoints(container, "handle")


# --- once, dummy, MockDependencyProvider ------------------------------------


def test_once_fires_once_at_start_with_its_arguments(container_factory):
    BusyService.calls.clear()
    container = container_factory(BusyService)
    restrict_entrypoints(container, "boot")

    with entrypoint_waiter(container, "boot", timeout=1):
        container.start()
    eventlet.sleep(0.05)

    assert BusyService.calls == ["boot"]


def test_once_and_dummy_declare_entrypoints():
    declared = [ext for ext in vars(BusyService.boot)["nameko_entrypoints"]]
    assert [type(ext) for ext in declared] == [Once]
    assert declared[0].args == ("boot",) and declared[0].kwargs == {}

    @dummy
    def method(self):
        pass

    assert [type(ext) for ext in method.nameko_entrypoints] == [Dummy]


def test_mock_dependency_provider_injects_its_dependency(mock_container):
    given = object()
    assert MockDependencyProvider("thing", given).get_dependency(None) is given

    default = MockDependencyProvider("thing").bind(mock_container, "thing")
    assert isinstance(default.get_dependency(None), MagicMock)
    assert default.attr_name == "thing"


def test_helpers_work_with_any_extension_written_on_the_public_api(container_factory):
    """A provider composed of sub-extensions is replaced whole."""

    class Part(Extension):
        pass

    class Whole(DependencyProvider):
        part = Part()

        def get_dependency(self, worker_ctx):
            return "real"

    class Service:
        name = "composed"
        whole = Whole()

        @dummy
        def method(self):
            return self.whole

    container = container_factory(Service)
    assert len(container.subextensions) == 1
    replace_dependencies(container, whole="fake")
    assert container.subextensions == set()
    container.start()

    with entrypoint_hook(container, "method") as method:
        assert method() == "fake"


def test_worker_factory_mock_of_a_dependency_typed_any_takes_any_attribute():
    # typing.Any is a class on Python 3.11+: it must not become the spec
    from typing import Any as AnyType

    from nameko_like.extensions import DependencyProvider
    from nameko_like.testing.services import worker_factory

    class Anything(DependencyProvider):
        def get_dependency(self, worker_ctx) -> AnyType:
            return object()

    class Service:
        name = "service_with_anything"
        thing = Anything()

    service = worker_factory(Service)
    service.thing.get.side_effect = lambda key: key.upper()
    assert service.thing.get("x") == "X"
