"""The extension model: everything a service can use is an ``Extension``.

An extension is *declared* once on a service class (``rpc_proxy =
RpcProxy("other")``) and *bound* to each container that hosts the class.
Binding makes a fresh instance by calling the class again with the arguments
the declaration was made with, so ``__init__`` of an extension must only store
its arguments and must not do work with side effects: real work belongs in
``setup()`` and ``start()``.

Typing: ``container``, ``Entrypoint.method_name`` and
``DependencyProvider.attr_name`` are None on a declaration and set by
``bind()``. They are typed for the bound case, the only one lifecycle hooks
and workers ever see; ``is_bound()`` tells the two apart at run time.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeGuard, TypeVar, cast, overload

from nameko_like._eventlet import eventlet
from nameko_like.exceptions import IncorrectSignature

if TYPE_CHECKING:
    from nameko_like.protocols import ContainerInterface, ExcInfo
    from nameko_like.worker_context import WorkerContext

_log = logging.getLogger(__name__)

#: Attribute on a service method that lists the entrypoints decorating it.
ENTRYPOINT_EXTENSIONS_ATTR = "nameko_entrypoints"

_ExtensionT = TypeVar("_ExtensionT", bound="Extension")
_SharedT = TypeVar("_SharedT", bound="SharedExtension")
_DependencyT = TypeVar("_DependencyT", bound="DependencyProvider")
_EntrypointT = TypeVar("_EntrypointT", bound="Entrypoint")
_P = ParamSpec("_P")
_InitP = ParamSpec("_InitP")
_R = TypeVar("_R")
_R_co = TypeVar("_R_co", covariant=True)


class Extension:
    """Base of entrypoints, dependency providers and their helpers.

    Lifecycle hooks are no-ops; override the ones you need. They are called
    by the container in this order: ``setup``, ``start``, then ``stop`` for a
    graceful shutdown or ``kill`` for an immediate one.
    """

    # None on a declaration (see the module docstring for why not Optional).
    container: ContainerInterface = None  # type: ignore[assignment]
    _init_args: tuple[tuple[Any, ...], dict[str, Any]]

    def __new__(cls: type[_ExtensionT], *args: Any, **kwargs: Any) -> _ExtensionT:
        instance = super().__new__(cls)
        # Remembered so bind() can build an identical, unbound twin.
        instance._init_args = (args, kwargs)
        return instance

    def setup(self) -> None:
        """Called once on a bound extension before the container starts."""

    def start(self) -> None:
        """Called when the container starts; begin serving here."""

    def stop(self) -> None:
        """Called on graceful stop; finish outstanding work, then return."""

    def kill(self) -> None:
        """Called when the container is killed; stop at once."""

    def bind(self: _ExtensionT, container: ContainerInterface) -> _ExtensionT:
        """Return a copy of this declaration bound to ``container``.

        Sub-extensions declared as class attributes are bound too, so an
        extension can itself be built from extensions.
        """
        args, kwargs = self._init_args
        instance = type(self)(*args, **kwargs)
        instance.container = container
        for name, declared in _declared_subextensions(instance):
            setattr(instance, name, declared.bind(container))
        return instance

    def is_bound(self) -> bool:
        """Whether this instance belongs to a container."""
        return self.container is not None

    def __repr__(self) -> str:
        state = "bound" if self.is_bound() else "declaration"
        return f"<{type(self).__name__} [{state}] at 0x{id(self):x}>"


def _declared_subextensions(extension: Extension) -> Iterator[tuple[str, Extension]]:
    """Yield (name, extension) for unbound extensions held by ``extension``.

    Looks at class attributes (through the MRO) and instance attributes
    directly, never through ``getattr``, so properties are not evaluated.
    """
    found: dict[str, object] = {}
    for klass in reversed(type(extension).__mro__):
        found.update(vars(klass))
    found.update(vars(extension))
    for name, value in sorted(found.items(), key=lambda item: item[0]):
        if isinstance(value, Extension) and not value.is_bound():
            yield name, value


class SharedExtension(Extension):
    """An extension of which a container holds one instance per ``sharing_key``.

    Entrypoints of a container that all need, say, one AMQP consumer declare
    the same SharedExtension; binding returns the container's existing
    instance instead of a new one.
    """

    @property
    def sharing_key(self) -> object:
        """Key under which instances are shared; the class by default."""
        return type(self)

    def bind(self: _SharedT, container: ContainerInterface) -> _SharedT:
        """Return the container's instance for this key, creating it once."""
        existing = container.shared_extensions.get(self.sharing_key)
        if existing is not None:
            # Whoever shares a key declares the same extension (the key
            # defaults to the class), so the instance is of this type.
            return cast("_SharedT", existing)
        instance = super().bind(container)
        container.shared_extensions[self.sharing_key] = instance
        return instance


class DependencyProvider(Extension):
    """Injects an object into each worker's service instance.

    Declared as a class attribute of a service; ``get_dependency`` is called
    for every worker and its return value replaces the attribute on that
    worker's service instance.
    """

    # None on a declaration (see the module docstring for why not Optional).
    attr_name: str = None  # type: ignore[assignment]

    # Nameko's signature: a provider's binding needs the attribute name, so
    # it can't be called as Extension.bind(container) is.
    def bind(  # type: ignore[override]
        self: _DependencyT, container: ContainerInterface, attr_name: str
    ) -> _DependencyT:
        """Bind to ``container`` as the service attribute ``attr_name``."""
        instance = super().bind(container)
        instance.attr_name = attr_name
        self.attr_name = attr_name
        return instance

    def get_dependency(self, worker_ctx: WorkerContext) -> Any:
        """Return the object the worker sees as the service attribute."""

    def get_async_dependency(self, worker_ctx: WorkerContext) -> Any:
        """What a worker of an ``async def`` method sees as the service attribute.

        By default the same as ``get_dependency``. A provider whose
        dependency blocks (waits on the network the eventlet way) overrides
        this to return an awaitable variant, e.g.
        ``nameko_like.asyncio_support.AwaitingProxy(self.get_dependency(worker_ctx))``.
        """
        return self.get_dependency(worker_ctx)

    def worker_setup(self, worker_ctx: WorkerContext) -> None:
        """Called before the service method runs."""

    def worker_result(
        self, worker_ctx: WorkerContext, result: Any = None, exc_info: ExcInfo | None = None
    ) -> None:
        """Called with the method's result, or ``exc_info`` if it raised."""

    def worker_teardown(self, worker_ctx: WorkerContext) -> None:
        """Called after the worker finished, whatever the outcome."""


class ProviderCollector:
    """Mixin for shared extensions that serve several entrypoints.

    Entrypoints register on start and unregister when they stop; ``stop()``
    waits until every registered provider is gone so that a shared consumer,
    say, outlives the entrypoints that feed it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._providers: set[Extension] = set()
        self._providers_gone = eventlet.event.Event()
        super().__init__(*args, **kwargs)

    def register_provider(self, provider: Extension) -> None:
        """Add ``provider`` to the set this collector serves."""
        self._providers.add(provider)

    def unregister_provider(self, provider: Extension) -> None:
        """Remove ``provider``; wakes ``wait_for_providers`` when none remain."""
        self._providers.discard(provider)
        if not self._providers and not self._providers_gone.ready():
            self._providers_gone.send(None)

    def wait_for_providers(self) -> None:
        """Block until every registered provider has unregistered."""
        if self._providers:
            self._providers_gone.wait()

    def stop(self) -> None:
        """Wait for the providers, then stop."""
        self.wait_for_providers()


class _Function(Protocol[_P, _R_co]):
    """A function (a service method, maybe behind functools.wraps): a named callable."""

    __name__: str

    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> _R_co: ...


class Entrypoint(Extension):
    """Something that makes the container run a service method.

    Args:
        expected_exceptions: exception classes the method may raise as part of
            its contract; they are logged as warnings, not errors.
        sensitive_arguments: argument names (or ``"arg.key"`` paths) whose
            values are redacted wherever call arguments are logged.
    """

    # None on a declaration (see the module docstring for why not Optional).
    method_name: str = None  # type: ignore[assignment]
    # Class-level defaults, so that a subclass whose ``__init__`` does not
    # call ``super().__init__()`` (allowed in Nameko) still works.
    expected_exceptions: type[BaseException] | tuple[type[BaseException], ...] = ()
    sensitive_arguments: tuple[str, ...] = ()
    _signature: inspect.Signature | None = None
    _positional_range: tuple[int, int] | None = None

    def __init__(
        self,
        expected_exceptions: type[BaseException] | tuple[type[BaseException], ...] = (),
        sensitive_arguments: str | tuple[str, ...] = (),
        **kwargs: Any,
    ) -> None:
        if isinstance(sensitive_arguments, str):
            sensitive_arguments = (sensitive_arguments,)
        self.expected_exceptions = expected_exceptions
        self.sensitive_arguments = tuple(sensitive_arguments)
        self._signature: inspect.Signature | None = None
        self._positional_range: tuple[int, int] | None = None
        super().__init__(**kwargs)

    # Nameko's signature: an entrypoint's binding needs the method name, so
    # it can't be called as Extension.bind(container) is.
    def bind(  # type: ignore[override]
        self: _EntrypointT, container: ContainerInterface, method_name: str
    ) -> _EntrypointT:
        """Bind to ``container`` as the entrypoint of ``method_name``."""
        instance = super().bind(container)
        instance.method_name = method_name
        return instance

    def check_signature(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Raise ``IncorrectSignature`` if the method can't take these arguments.

        The message is the one Python gives for the failed call (as in
        Nameko: ``add() takes 3 positional arguments but 4 were given``).
        """
        signature = self._signature
        if signature is None:
            method = getattr(self.container.service_cls, self.method_name)
            # Not following __wrapped__: a method behind a decorator takes
            # what the decorator's wrapper takes, as Nameko judges it.
            signature = inspect.signature(method, follow_wrapped=False)
            self._signature = signature
            self._positional_range = _positional_range(signature)
        # Most calls pass positional arguments only to a plain method: a
        # length check answers those without binding (which costs ~10 us).
        bounds = self._positional_range
        if bounds is not None and not kwargs and bounds[0] <= len(args) <= bounds[1]:
            return
        try:
            signature.bind(None, *args, **kwargs)
        except TypeError as exc:
            raise IncorrectSignature(self._signature_error(args, kwargs, exc)) from None

    def _signature_error(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], bind_error: TypeError
    ) -> str:
        """Python's own message for the failed call; only built on failure."""
        method = getattr(self.container.service_cls, self.method_name)
        getcallargs = getattr(inspect, "getcallargs", None)
        if getcallargs is not None:
            try:
                getcallargs(method, None, *args, **kwargs)
            except TypeError as exc:
                return str(exc)
        # inspect.getcallargs is gone (or accepted the call): bind's wording
        return str(bind_error)

    # Typed so that a decorated method keeps its signature for mypy and
    # IDEs, and ``@rpc(...)``'s arguments are checked against __init__.
    # A bare use gets a function (`_Function` has a __name__, which a kombu
    # Queue, another callable, has not); the overlap with entrypoints whose
    # __init__ takes anything (``@once``) is settled at run time, the same way.
    @overload
    @classmethod
    def decorator(  # type: ignore[overload-overlap]  # settled at run time, see above
        cls, fn: _Function[_P, _R], /
    ) -> Callable[_P, _R]: ...

    @overload
    @classmethod
    def decorator(
        cls: Callable[_InitP, Entrypoint], *args: _InitP.args, **kwargs: _InitP.kwargs
    ) -> Callable[[_Function[_P, _R]], Callable[_P, _R]]: ...

    @classmethod
    def decorator(cls, *args: Any, **kwargs: Any) -> Callable[..., Any]:
        """Return a decorator registering an instance of ``cls`` on a method.

        Works bare (``@rpc``) and with arguments (``@rpc(expected_exceptions=...)``).
        """

        def register(fn: _Function[_P, _R]) -> Callable[_P, _R]:
            register_entrypoint(fn, cls(*args, **kwargs))
            return fn

        if len(args) == 1 and not kwargs and inspect.isfunction(args[0]):
            fn = args[0]
            args = ()
            return register(fn)
        return register

    def __repr__(self) -> str:
        if not self.is_bound():
            return f"<{type(self).__name__} [declaration] at 0x{id(self):x}>"
        where = f"{self.container.service_name}.{self.method_name}"
        return f"<{type(self).__name__} [{where}] at 0x{id(self):x}>"


def _positional_range(signature: inspect.Signature) -> tuple[int, int] | None:
    """(required, accepted) positional counts after ``self``, for plain signatures.

    None when the signature has ``*args``, ``**kwargs``, keyword-only or
    positional-only parameters: those calls are checked by binding.
    """
    parameters = list(signature.parameters.values())[1:]
    if any(p.kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD for p in parameters):
        return None
    required = sum(1 for p in parameters if p.default is inspect.Parameter.empty)
    return required, len(parameters)


def register_entrypoint(fn: Callable[..., Any], entrypoint: Entrypoint) -> None:
    """Declare ``entrypoint`` on the service method ``fn``."""
    entrypoints = getattr(fn, ENTRYPOINT_EXTENSIONS_ATTR, None)
    if entrypoints is None:
        entrypoints = set()
        setattr(fn, ENTRYPOINT_EXTENSIONS_ATTR, entrypoints)
    entrypoints.add(entrypoint)


def is_extension(obj: object) -> TypeGuard[Extension]:
    """Whether ``obj`` is an Extension."""
    return isinstance(obj, Extension)


def is_dependency(obj: object) -> TypeGuard[DependencyProvider]:
    """Whether ``obj`` is a DependencyProvider."""
    return isinstance(obj, DependencyProvider)


def is_entrypoint(obj: object) -> TypeGuard[Entrypoint]:
    """Whether ``obj`` is an Entrypoint."""
    return isinstance(obj, Entrypoint)


def iter_extensions(extension: Extension) -> Iterator[Extension]:
    """Yield every sub-extension of ``extension``, depth first, once each."""
    seen: set[int] = {id(extension)}
    stack = [extension]
    while stack:
        current = stack.pop()
        for name in sorted(vars(current)):
            value = vars(current)[name]
            if isinstance(value, Extension) and id(value) not in seen:
                seen.add(id(value))
                yield value
                stack.append(value)
