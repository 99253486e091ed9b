"""ServiceContainer: binding, lifecycle order, workers, stopping and killing."""

import logging
import sys
import time

import pytest

from nameko_like._eventlet import eventlet
from nameko_like.containers import ServiceContainer, get_container_cls, get_service_name
from nameko_like.exceptions import ContainerBeingKilled, IncorrectSignature
from nameko_like.extensions import DependencyProvider, Entrypoint, SharedExtension
from nameko_like.rpc import rpc
from nameko_like.standalone.rpc import ClusterRpcProxy
from nameko_like.testing.rabbit import wait_for
from nameko_like.testing.services import dummy, entrypoint_hook


class Log(list):
    """Events recorded by the extensions below, in order."""


class Recorder(DependencyProvider):
    """A provider written only against the public API, recording every hook."""

    def __init__(self, log):
        self.log = log

    def setup(self):
        self.log.append("setup")

    def start(self):
        self.log.append("start")

    def stop(self):
        self.log.append("stop")

    def kill(self):
        self.log.append("kill")

    def get_dependency(self, worker_ctx):
        self.log.append("get_dependency")
        return self.log

    def worker_setup(self, worker_ctx):
        self.log.append("worker_setup")

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        self.log.append(("worker_result", result, exc_info and exc_info[0]))

    def worker_teardown(self, worker_ctx):
        self.log.append("worker_teardown")


class Trigger(Entrypoint):
    """A custom entrypoint: fires its method whenever ``fire`` is called."""

    def __init__(self, log, **kwargs):
        self.log = log
        super().__init__(**kwargs)

    def start(self):
        self.log.append("entrypoint start")

    def stop(self):
        self.log.append("entrypoint stop")

    def fire(self, *args):
        done = eventlet.event.Event()

        def handle_result(worker_ctx, result, exc_info):
            self.log.append("handle_result")
            done.send(result)
            return result, exc_info

        self.container.spawn_worker(self, args, {}, handle_result=handle_result)
        return done.wait()


trigger = Trigger.decorator
LOG = Log()


class LifecycleService:
    name = "lifecycle"
    recorder = Recorder(LOG)

    @trigger(LOG)
    def method(self, value):
        self.recorder.append(("method", value))
        return value * 2


def test_custom_extensions_see_the_lifecycle_in_order(container_factory):
    LOG.clear()
    container = container_factory(LifecycleService)
    container.start()
    (entrypoint,) = container.entrypoints

    assert entrypoint.fire(21) == 42
    container.stop()

    assert LOG == [
        "setup", "start", "entrypoint start",
        "get_dependency", "worker_setup", ("method", 21), "handle_result",
        ("worker_result", 42, None), "worker_teardown",
        "entrypoint stop", "stop",
    ]


def test_provider_sees_the_error_the_method_raised(container_factory):
    LOG.clear()
    container = container_factory(LifecycleService)
    container.start()
    (entrypoint,) = container.entrypoints

    assert entrypoint.fire(None) is None  # None * 2 raises TypeError
    assert ("worker_result", None, TypeError) in LOG
    assert LOG[-1] == "worker_teardown"


# --- binding ----------------------------------------------------------------


class Shared(SharedExtension):
    pass


class UsesShared(Entrypoint):
    shared = Shared()


class BindingService:
    name = "binding"
    recorder = Recorder(Log())

    @UsesShared.decorator
    def one(self):
        pass

    @UsesShared.decorator
    def two(self):
        pass


def test_one_declaration_serves_two_containers(container_factory):
    first = container_factory(BindingService)
    second = container_factory(BindingService)

    (first_dep,) = first.dependencies
    (second_dep,) = second.dependencies
    assert first_dep is not second_dep
    assert (first_dep.container, second_dep.container) == (first, second)
    assert first_dep.log is second_dep.log is BindingService.recorder.log
    # The declaration on the class stays unbound.
    assert not BindingService.recorder.is_bound()
    assert {ep.container for ep in first.entrypoints} == {first}


def test_shared_extension_is_shared_within_a_container_only(container_factory):
    first = container_factory(BindingService)
    second = container_factory(BindingService)

    first_shared = {ep.shared for ep in first.entrypoints}
    second_shared = {ep.shared for ep in second.entrypoints}
    assert len(first_shared) == len(second_shared) == 1
    assert first_shared != second_shared
    assert first_shared <= first.subextensions


def test_extensions_lists_every_bound_extension(container_factory):
    container = container_factory(BindingService)
    everything = container.dependencies | container.entrypoints | container.subextensions
    assert container.extensions == everything
    assert len(container.extensions) == 4  # provider, two entrypoints, one shared


# --- workers ----------------------------------------------------------------


class SleepyService:
    name = "sleepy"
    running = 0
    peak = 0

    @dummy
    def nap(self, seconds):
        cls = type(self)
        cls.running += 1
        cls.peak = max(cls.peak, cls.running)
        try:
            eventlet.sleep(seconds)
        finally:
            cls.running -= 1
        return seconds


def test_workers_run_concurrently_up_to_max_workers(container_factory):
    SleepyService.peak = 0
    container = container_factory(SleepyService, {"max_workers": 10})
    container.start()

    with entrypoint_hook(container, "nap") as nap:
        started = time.monotonic()
        calls = [eventlet.spawn(nap, 0.5) for _ in range(20)]
        assert [call.wait() for call in calls] == [0.5] * 20
        elapsed = time.monotonic() - started

    # Two waves of ten: about 1 s. Sequential would take 10 s.
    assert 0.9 < elapsed < 3
    assert SleepyService.peak == 10


def test_spawn_worker_blocks_while_the_pool_is_full(container_factory):
    container = container_factory(SleepyService, {"max_workers": 2})
    container.start()
    (entrypoint,) = container.entrypoints

    container.spawn_worker(entrypoint, (0.3,), {})
    container.spawn_worker(entrypoint, (0.3,), {})
    assert container.free_worker_slots == 0
    started = time.monotonic()
    container.spawn_worker(entrypoint, (0,), {})
    assert time.monotonic() - started > 0.2
    container.stop()


class CountingProvider(DependencyProvider):
    calls = []

    def get_dependency(self, worker_ctx):
        self.calls.append("get_dependency")

    def worker_setup(self, worker_ctx):
        self.calls.append("worker_setup")


class StrictService:
    name = "strict"
    counter = CountingProvider()
    instances = 0

    def __init__(self):
        type(self).instances += 1

    @dummy
    def add(self, a, b):
        return a + b


def test_incorrect_signature_is_raised_before_any_worker_code_runs(container_factory):
    CountingProvider.calls.clear()
    StrictService.instances = 0
    container = container_factory(StrictService)
    container.start()
    (entrypoint,) = container.entrypoints

    with pytest.raises(IncorrectSignature, match="argument"):
        container.spawn_worker(entrypoint, (1, 2, 3), {})
    with pytest.raises(IncorrectSignature):
        container.spawn_worker(entrypoint, (1,), {"c": 2})
    eventlet.sleep(0.05)
    assert CountingProvider.calls == []
    assert StrictService.instances == 0
    assert container.free_worker_slots == container.max_workers


def test_expected_exceptions_are_logged_as_warnings(container_factory, caplog):
    class Expected(Exception):
        pass

    class Service:
        name = "expecting"

        @dummy(expected_exceptions=Expected)
        def expected(self):
            raise Expected("fine")

        @dummy
        def unexpected(self):
            raise ValueError("bad")

    container = container_factory(Service)
    container.start()
    with caplog.at_level(logging.WARNING, logger="nameko_like.containers"):
        with entrypoint_hook(container, "expected") as expected, pytest.raises(Expected):
            expected()
        with entrypoint_hook(container, "unexpected") as unexpected, pytest.raises(ValueError):
            unexpected()

    def levels(call):
        prefix = f"expecting.{call}."
        return {record.levelname for record in caplog.records if prefix in record.getMessage()}

    assert levels("expected") == {"WARNING"}
    assert levels("unexpected") == {"ERROR"}


# --- stopping and killing ---------------------------------------------------


class Finisher:
    name = "finisher"
    finished = []

    @dummy
    def work(self, seconds):
        eventlet.sleep(seconds)
        self.finished.append(seconds)


def test_stop_lets_running_workers_finish(container_factory):
    Finisher.finished.clear()
    container = container_factory(Finisher)
    container.start()
    (entrypoint,) = container.entrypoints
    container.spawn_worker(entrypoint, (0.3,), {})

    container.stop()

    assert Finisher.finished == [0.3]
    assert container.wait() is None
    assert not container.running


def test_workers_past_the_shutdown_grace_period_are_killed(container_factory):
    Finisher.finished.clear()
    container = container_factory(Finisher, {"SHUTDOWN_GRACE_PERIOD": 0.2})
    container.start()
    (entrypoint,) = container.entrypoints
    container.spawn_worker(entrypoint, (0.1,), {})
    container.spawn_worker(entrypoint, (30,), {})

    started = time.monotonic()
    container.stop()

    assert time.monotonic() - started < 2
    assert Finisher.finished == [0.1]
    assert container.free_worker_slots == container.max_workers


class ManagedThreadService:
    name = "managed"
    recorder = Recorder(Log())


def test_an_error_in_a_managed_thread_kills_the_container(container_factory):
    container = container_factory(ManagedThreadService)
    container.start()

    def broken():
        eventlet.sleep(0.05)
        raise RuntimeError("thread broke")

    container.spawn_managed_thread(broken, identifier="broken")

    with pytest.raises(RuntimeError, match="thread broke"):
        container.wait()
    assert not container.running
    (provider,) = container.dependencies
    assert provider.log[-1] == "kill"


def test_managed_threads_are_killed_on_stop(container_factory):
    container = container_factory(ManagedThreadService)
    container.start()
    thread = container.spawn_managed_thread(lambda: eventlet.sleep(30))

    container.stop()

    assert thread.dead


def test_kill_with_exc_info_makes_wait_raise_it(container_factory):
    container = container_factory(ManagedThreadService)
    container.start()
    try:
        raise KeyError("why it died")
    except KeyError:
        exc_info = sys.exc_info()

    container.kill(exc_info)

    with pytest.raises(KeyError, match="why it died"):
        container.wait()
    (provider,) = container.dependencies
    assert provider.log[-1] == "kill"

    container.kill()  # killing again is a no-op: the error is for wait() only
    container.stop()


def test_kill_without_error_kills_workers_and_wait_returns(container_factory):
    Finisher.finished.clear()
    container = container_factory(Finisher)
    container.start()
    (entrypoint,) = container.entrypoints
    container.spawn_worker(entrypoint, (30,), {})

    container.kill()

    assert container.wait() is None
    assert Finisher.finished == []
    assert container.free_worker_slots == container.max_workers
    with pytest.raises(ContainerBeingKilled):
        container.spawn_worker(entrypoint, (0,), {})


class FailingSetup(DependencyProvider):
    def worker_setup(self, worker_ctx):
        raise RuntimeError("worker_setup failed")


class FailingSetupService:
    name = "failing_setup"
    failing = FailingSetup()

    @dummy
    def method(self):
        pass


def test_a_provider_failing_outside_the_method_kills_the_container(container_factory):
    container = container_factory(FailingSetupService)
    container.start()
    (entrypoint,) = container.entrypoints

    container.spawn_worker(entrypoint, (), {})

    with pytest.raises(RuntimeError, match="worker_setup failed"):
        container.wait()


# --- container classes and names --------------------------------------------


class CustomContainer(ServiceContainer):
    pass


def test_service_container_cls_picks_a_custom_container(container_factory):
    path = f"{CustomContainer.__module__}.CustomContainer"
    assert get_container_cls({"SERVICE_CONTAINER_CLS": path}) is CustomContainer
    assert get_container_cls({}) is ServiceContainer

    container = container_factory(Finisher, {"SERVICE_CONTAINER_CLS": path})
    assert type(container) is CustomContainer


def test_service_name_must_be_declared():
    class Nameless:
        pass

    assert get_service_name(Finisher) == "finisher"
    with pytest.raises(AttributeError, match="Nameless must define a `name`"):
        get_service_name(Nameless)


# --- errors in worker_result / worker_teardown --------------------------------


class FailingAfterHooks(DependencyProvider):
    """Raises from ``worker_result`` or ``worker_teardown`` (``hook``)."""

    def __init__(self, hook):
        self.hook = hook

    def get_dependency(self, worker_ctx):
        return None

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        if self.hook == "worker_result":
            raise RuntimeError("worker_result bug")

    def worker_teardown(self, worker_ctx):
        if self.hook == "worker_teardown":
            raise RuntimeError("worker_teardown bug")


RUNS = []


class BuggyHooksService:
    name = "buggy_hooks"
    bad_result = FailingAfterHooks("worker_result")
    bad_teardown = FailingAfterHooks("worker_teardown")
    good = Recorder(Log())

    @rpc
    def double(self, value):
        RUNS.append(value)
        return value * 2


@pytest.mark.integration
def test_errors_in_worker_result_and_teardown_neither_kill_nor_race_the_ack(
        container_factory, rabbit_config, rabbit_manager, caplog):
    RUNS.clear()
    caplog.set_level(logging.ERROR, logger="nameko_like.containers")
    container = container_factory(BuggyHooksService, rabbit_config)
    container.start()
    calls = 30

    with ClusterRpcProxy(rabbit_config, timeout=10) as cluster:
        replies = [cluster.buggy_hooks.double.call_async(n) for n in range(calls)]
        assert [reply.result() for reply in replies] == [n * 2 for n in range(calls)]
        # still serving after every worker's hooks raised
        assert cluster.buggy_hooks.double(100) == 200

    assert container.running
    # each request ran once: acked once, never redelivered
    assert sorted(RUNS) == [*range(calls), 100]
    queue_name = "rpc-buggy_hooks"

    def settled():
        queue = rabbit_manager.get_queue(rabbit_config["vhost"], queue_name)
        return queue.get("messages_unacknowledged") == 0 and queue.get("messages_ready") == 0
    wait_for(settled, timeout=10)
    # a double ack would have closed the consumer's channel (PRECONDITION_FAILED)
    assert container.running
    # the other providers' hooks still ran, for every worker
    good_log = container_provider(container, "good").log
    assert good_log.count("worker_teardown") == calls + 1
    # each error logged once, with its traceback
    by_hook = {"worker_result": 0, "worker_teardown": 0}
    for record in caplog.records:
        for hook in by_hook:
            if record.getMessage().startswith(f"{hook} of"):
                assert record.exc_info is not None
                assert f"{hook} bug" in str(record.exc_info[1])
                by_hook[hook] += 1
    assert by_hook == {"worker_result": calls + 1, "worker_teardown": calls + 1}
    assert not any("failed outside its method" in r.getMessage() for r in caplog.records)


def container_provider(container, attr_name):
    """The bound dependency provider ``attr_name`` of ``container``."""
    (provider,) = [dep for dep in container.dependencies if dep.attr_name == attr_name]
    return provider
