"""WorkerContext: call ids, the call id stack and context data."""

import uuid

import pytest

from nameko_like.testing.services import dummy, entrypoint_hook
from nameko_like.worker_context import WorkerContext


class Service:
    name = "service"

    @dummy
    def method(self):
        pass


@pytest.fixture
def entrypoint(container_factory):
    container = container_factory(Service, {"parent_calls_tracked": 3})
    (entrypoint,) = container.entrypoints
    return entrypoint


def make_context(entrypoint, data=None):
    return WorkerContext(entrypoint.container, Service(), entrypoint, data=data)


def test_call_id_names_service_method_and_a_unique_id(entrypoint):
    first, second = make_context(entrypoint), make_context(entrypoint)

    service, method, unique = first.call_id.split(".", 2)
    assert (service, method) == ("service", "method")
    uuid.UUID(unique)
    assert first.call_id != second.call_id
    assert first.call_id_stack == [first.call_id]
    assert first.origin_call_id == first.call_id
    assert first.immediate_parent_call_id is None


def test_predictable_call_ids(entrypoint, predictable_call_ids):
    ids = [make_context(entrypoint).call_id for _ in range(3)]

    assert ids == ["service.method.0", "service.method.1", "service.method.2"]
    assert predictable_call_ids.call_count == 3


def test_call_id_stack_extends_the_callers(entrypoint, predictable_call_ids):
    context = make_context(entrypoint, {"call_id_stack": ["a.x.1", "b.y.2"]})

    assert context.call_id_stack == ["a.x.1", "b.y.2", "service.method.0"]
    assert context.origin_call_id == "a.x.1"
    assert context.immediate_parent_call_id == "b.y.2"


def test_call_id_stack_is_bounded_by_parent_calls_tracked(entrypoint, predictable_call_ids):
    parents = [f"caller.m.{i}" for i in range(10)]

    context = make_context(entrypoint, {"call_id_stack": parents})

    # Three ancestors (the config says so), then this call.
    assert context.call_id_stack == ["caller.m.7", "caller.m.8", "caller.m.9", "service.method.0"]


@pytest.mark.parametrize("tracked, expected_length", [(0, 1), (-1, 11), (20, 11)])
def test_parent_calls_tracked_limits(container_factory, tracked, expected_length):
    container = container_factory(Service, {"parent_calls_tracked": tracked})
    (entrypoint,) = container.entrypoints
    parents = [f"caller.m.{i}" for i in range(10)]

    context = WorkerContext(container, Service(), entrypoint, data={"call_id_stack": parents})

    assert len(context.call_id_stack) == expected_length
    assert context.call_id_stack[-1] == context.call_id


def test_context_data_carries_data_and_the_stack(entrypoint, predictable_call_ids):
    sent = {"language": "fr", "call_id_stack": ["a.x.1"]}

    context = make_context(entrypoint, sent)

    assert context.data == {"language": "fr"}
    assert context.context_data == {
        "language": "fr", "call_id_stack": ["a.x.1", "service.method.0"],
    }
    assert sent == {"language": "fr", "call_id_stack": ["a.x.1"]}  # caller's dict untouched
    assert context.service_name == "service"
    assert context.config is entrypoint.container.config


def test_workers_get_the_context_data_they_were_spawned_with(container_factory):
    class Echo:
        name = "echo"

        @dummy
        def method(self):
            return None

    seen = []
    container = container_factory(Echo)
    original = container.spawn_worker

    def spy(*args, **kwargs):
        seen.append(original(*args, **kwargs))
        return seen[-1]

    container.spawn_worker = spy
    container.start()

    with entrypoint_hook(container, "method", context_data={"user_id": 7}) as method:
        method()

    assert seen[0].data == {"user_id": 7}
