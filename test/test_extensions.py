"""The extension model: binding, shared extensions, entrypoint declaration."""

from unittest.mock import Mock

import pytest

from nameko_like._eventlet import eventlet
from nameko_like.exceptions import IncorrectSignature
from nameko_like.extensions import (
    ENTRYPOINT_EXTENSIONS_ATTR,
    DependencyProvider,
    Entrypoint,
    Extension,
    ProviderCollector,
    SharedExtension,
    is_dependency,
    is_entrypoint,
    is_extension,
    iter_extensions,
    register_entrypoint,
)


class Leaf(Extension):
    def __init__(self, label):
        self.label = label


class Branch(Extension):
    leaf = Leaf("class-level")

    def __init__(self, label):
        self.label = label
        self.own_leaf = Leaf(f"{label}-own")


def test_bind_makes_a_bound_copy_from_the_declaration_args(mock_container):
    declaration = Leaf("x")

    bound = declaration.bind(mock_container)

    assert bound is not declaration
    assert type(bound) is Leaf and bound.label == "x"
    assert bound.container is mock_container
    assert bound.is_bound() and not declaration.is_bound()
    assert "[bound]" in repr(bound) and "[declaration]" in repr(declaration)


def test_bind_reruns_init_so_init_must_only_store_arguments(mock_container):
    class Counting(Extension):
        inits = 0

        def __init__(self, value):
            type(self).inits += 1
            self.value = value

    declaration = Counting(value=3)
    declaration.bind(mock_container)
    declaration.bind(mock_container)

    assert Counting.inits == 3


def test_sub_extensions_are_bound_too(mock_container):
    declaration = Branch("b")

    bound = declaration.bind(mock_container)

    assert bound.leaf is not Branch.leaf and bound.leaf.container is mock_container
    assert bound.leaf.label == "class-level"
    assert bound.own_leaf is not declaration.own_leaf
    assert bound.own_leaf.container is mock_container
    assert set(iter_extensions(bound)) == {bound.leaf, bound.own_leaf}


def test_iter_extensions_walks_depth_first_once_each(mock_container):
    class Root(Extension):
        branch = Branch("deep")

    root = Root().bind(mock_container)

    found = list(iter_extensions(root))

    assert len(found) == len(set(map(id, found))) == 3
    assert {type(ext) for ext in found} == {Branch, Leaf}


class Shared(SharedExtension):
    pass


class Keyed(SharedExtension):
    def __init__(self, key):
        self.key = key

    @property
    def sharing_key(self):
        return (type(self), self.key)


def test_shared_extension_has_one_instance_per_container(mock_container):
    first = Shared().bind(mock_container)
    again = Shared().bind(mock_container)
    elsewhere = Shared().bind(Mock(shared_extensions={}))

    assert first is again
    assert elsewhere is not first
    assert mock_container.shared_extensions == {Shared: first}


def test_sharing_key_decides_what_is_shared(mock_container):
    a1 = Keyed("a").bind(mock_container)
    a2 = Keyed("a").bind(mock_container)
    b = Keyed("b").bind(mock_container)

    assert a1 is a2 and b is not a1


def test_dependency_provider_binds_with_its_attribute_name(mock_container):
    declaration = DependencyProvider()

    bound = declaration.bind(mock_container, "database")

    assert bound.attr_name == "database"
    assert bound.container is mock_container


class Simple(Entrypoint):
    pass


def test_entrypoint_decorator_works_bare_and_with_arguments():
    class Service:
        @Simple.decorator
        def bare(self):
            pass

        @Simple.decorator(expected_exceptions=KeyError, sensitive_arguments="password")
        def configured(self, password):
            pass

    (bare,) = getattr(Service.bare, ENTRYPOINT_EXTENSIONS_ATTR)
    (configured,) = getattr(Service.configured, ENTRYPOINT_EXTENSIONS_ATTR)
    assert type(bare) is Simple and bare.expected_exceptions == ()
    assert configured.expected_exceptions is KeyError
    assert configured.sensitive_arguments == ("password",)


def test_one_method_may_have_several_entrypoints():
    def method(self):
        pass

    register_entrypoint(method, Simple())
    register_entrypoint(method, Simple())

    assert len(getattr(method, ENTRYPOINT_EXTENSIONS_ATTR)) == 2


def test_entrypoint_binds_to_its_method(mock_container):
    class Service:
        def add(self, a, b=0):
            return a + b

    mock_container.service_cls = Service
    mock_container.service_name = "calc"

    entrypoint = Simple().bind(mock_container, "add")

    assert entrypoint.method_name == "add"
    assert "calc.add" in repr(entrypoint)
    entrypoint.check_signature((1,), {"b": 2})
    with pytest.raises(IncorrectSignature) as raised:
        entrypoint.check_signature((), {})
    assert str(raised.value) == "add() missing 1 required positional argument: 'a'"
    with pytest.raises(IncorrectSignature) as raised:
        entrypoint.check_signature((1,), {"c": 2})
    assert str(raised.value) == "add() got an unexpected keyword argument 'c'"
    with pytest.raises(IncorrectSignature) as raised:
        entrypoint.check_signature((1, 2, 3), {})
    assert str(raised.value) == "add() takes from 2 to 3 positional arguments but 4 were given"


def test_check_signature_takes_what_a_decorators_wrapper_takes(mock_container):
    import functools

    def logged(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            return fn(*args, **kwargs)
        return wrapper

    class Service:
        @logged
        def add(self, a):
            return a

    mock_container.service_cls = Service
    mock_container.service_name = "calc"
    entrypoint = Simple().bind(mock_container, "add")
    # the wrapper's (*args, **kwargs) decides, as in Nameko; the method
    # itself raises TypeError later, in the worker
    entrypoint.check_signature((1, 2, 3), {"x": 1})


class NoSuperEntrypoint(Entrypoint):
    """An entrypoint whose __init__ skips Entrypoint.__init__ (allowed in Nameko)."""

    def __init__(self, label):
        self.label = label


def test_entrypoint_without_super_init_works(mock_container):
    class Service:
        def add(self, a, b):
            return a + b

    mock_container.service_cls = Service
    mock_container.service_name = "calc"
    entrypoint = NoSuperEntrypoint("x").bind(mock_container, "add")
    assert entrypoint.label == "x"
    assert entrypoint.expected_exceptions == ()
    assert entrypoint.sensitive_arguments == ()
    entrypoint.check_signature((1, 2), {})
    with pytest.raises(IncorrectSignature, match=r"add\(\) takes 3 positional arguments but 4"):
        entrypoint.check_signature((1, 2, 3), {})


def test_kind_predicates():
    assert is_extension(Leaf("x")) and not is_extension(object())
    assert is_dependency(DependencyProvider()) and not is_dependency(Simple())
    assert is_entrypoint(Simple()) and not is_entrypoint(DependencyProvider())


class Collector(ProviderCollector, SharedExtension):
    pass


def test_provider_collector_stop_waits_for_every_provider(mock_container):
    collector = Collector().bind(mock_container)
    first, second = object(), object()
    collector.register_provider(first)
    collector.register_provider(second)

    stopping = eventlet.spawn(collector.stop)
    eventlet.sleep(0.01)
    collector.unregister_provider(first)
    eventlet.sleep(0.01)
    assert not stopping.dead

    collector.unregister_provider(second)
    with eventlet.Timeout(1):
        stopping.wait()


def test_provider_collector_with_no_providers_stops_at_once(mock_container):
    collector = Collector().bind(mock_container)
    with eventlet.Timeout(1):
        collector.stop()
