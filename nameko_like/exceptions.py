"""Every exception nameko_like raises, and remote errors carried as data.

All exceptions derive from one root, :class:`NamekoLikeException`, through a
few sub-roots (:class:`ContainerError`, :class:`RpcError`,
:class:`RequestError`, :class:`DeliveryError`), so ``except
NamekoLikeException`` catches anything the framework itself raises.

An exception raised inside a remote worker travels to the caller as a plain
dict (see :func:`serialize`). The caller turns it back into an exception with
:func:`deserialize`: types registered with :func:`deserialize_to_instance`
come back as themselves, everything else as a :class:`RemoteError` that keeps
the original type's name and message.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

#: Exception types rebuilt as themselves on the caller, keyed by
#: ``module.QualName`` (see :func:`get_module_path`).
registry: dict[str, type[BaseException]] = {}

#: Stands in for a value whose ``str()`` raised while we serialised it
#: (Nameko's wording, since it travels on the wire).
UNPRINTABLE = "[__unicode__ failed]"

_E = TypeVar("_E", bound=type[BaseException])


def get_module_path(exc_type: type) -> str:
    """Return the dotted path, ``module.QualName``, that identifies a type."""
    return f"{exc_type.__module__}.{exc_type.__qualname__}"


def deserialize_to_instance(exc_type: _E) -> _E:
    """Class decorator: let callers receive ``exc_type`` itself, not a
    :class:`RemoteError`, when a remote worker raises it.

    The type is rebuilt from its ``args``, so its ``__init__`` must accept the
    positional arguments it passes to ``Exception.__init__``.
    """
    registry[get_module_path(exc_type)] = exc_type
    return exc_type


#: Paths that stand for a type on the wire instead of its own module path.
wire_paths: dict[type[BaseException], str] = {}


def nameko_wire_name(exc_type: _E) -> _E:
    """Class decorator: send and accept ``exc_type`` as Nameko's type of the
    same name (``nameko.exceptions.<Name>``), so that Nameko 2.x callers
    rebuild it as their own and Nameko's errors come back as ``exc_type``.

    Apply it on top of :func:`deserialize_to_instance`.
    """
    path = f"nameko.exceptions.{exc_type.__name__}"
    wire_paths[exc_type] = path
    registry[path] = exc_type
    return exc_type


def _safe_str(value: Any) -> str:
    # str() of an arbitrary user object may raise; a failed error report
    # must never hide the error being reported.
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - any failure means "unprintable"
        return UNPRINTABLE


def safe_for_serialization(value: Any) -> Any:
    """Return ``value`` made of types every serializer accepts, as Nameko does.

    Strings pass unchanged; dicts have keys and values made safe; any other
    iterable (list, tuple, set, ...) becomes a list of safe items; every other
    value becomes its ``str()`` (so ``42`` -> ``"42"``, ``None`` ->
    ``"None"``), or :data:`UNPRINTABLE` if that raises. This is what
    ``exc_args`` carry on the wire.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return {
            safe_for_serialization(key): safe_for_serialization(item)
            for key, item in value.items()
        }
    if isinstance(value, Iterable):
        return [safe_for_serialization(item) for item in value]
    return _safe_str(value)


def serialize(exc: BaseException) -> dict[str, Any]:
    """Describe ``exc`` as a dict that can cross the wire.

    Keys: ``exc_type`` (class name), ``exc_path`` (``module.QualName``, or
    Nameko's path for types marked :func:`nameko_wire_name`), ``exc_args``
    (its args, made safe) and ``value`` (its message).
    """
    return {
        "exc_type": type(exc).__name__,
        "exc_path": wire_paths.get(type(exc)) or get_module_path(type(exc)),
        "exc_args": [safe_for_serialization(arg) for arg in exc.args],
        "value": _safe_str(exc),
    }


def deserialize(data: dict[str, Any]) -> BaseException:
    """Rebuild the exception described by a :func:`serialize` dict.

    Registered types come back as themselves; any other type, or a registered
    type that cannot be rebuilt from the given args, comes back as a
    :class:`RemoteError`.
    """
    exc_path = data.get("exc_path")
    exc_args = data.get("exc_args") or []
    exc_type_name = data.get("exc_type")
    value = data.get("value")
    exc_type = registry.get(exc_path) if exc_path else None
    if exc_type is not None:
        try:
            return exc_type(*exc_args)
        except Exception:  # a foreign signature; degrade
            # The remote side may run a different version of the type whose
            # __init__ no longer matches the args; the caller still deserves
            # the error, so fall back rather than raise a TypeError here.
            logger.debug("could not rebuild %s from %r", exc_path, exc_args,
                         exc_info=True)
    return RemoteError(exc_type_name, value, exc_path=exc_path,
                       exc_args=exc_args)


# --- roots --------------------------------------------------------------------


class NamekoLikeException(Exception):
    """Root of every exception nameko_like raises."""


#: Nameko's name for the root, for code being ported.
NamekoException = NamekoLikeException


class ContainerError(NamekoLikeException):
    """Sub-root: a service container or one of its extensions misbehaved."""


class RpcError(NamekoLikeException):
    """Sub-root: an RPC call could not be made or answered."""


class RequestError(NamekoLikeException):
    """Sub-root: a caller sent a request the service cannot handle."""


class BadRequest(RequestError):
    """The request itself is wrong (Nameko's parent of request errors)."""


class DeliveryError(NamekoLikeException):
    """Sub-root: the broker did not take or route a published message."""


# --- general ------------------------------------------------------------------


class RemoteError(NamekoLikeException):
    """An exception raised by a remote worker whose type is not registered.

    ``exc_type`` is the remote exception's class name and ``value`` its
    message; ``exc_path`` and ``exc_args`` are kept when known.
    """

    def __init__(self, exc_type: str | None = None, value: Any = "",
                 exc_path: str | None = None,
                 exc_args: list[Any] | None = None) -> None:
        self.exc_type = exc_type
        self.value = value
        self.exc_path = exc_path
        self.exc_args = list(exc_args) if exc_args is not None else []
        # One argument, the message, as in Nameko: a service that re-raises
        # a RemoteError sends the same exc_args on the wire as Nameko would.
        super().__init__(f"{exc_type} {value}")

    def __str__(self) -> str:
        return f"{self.exc_type} {self.value}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.exc_type, self.value, self.exc_path,
                             self.exc_args))


class ConfigurationError(NamekoLikeException):
    """The configuration is missing, malformed or inconsistent."""


class DeclarationError(ConfigurationError, ValueError):
    """A service, entrypoint or runner is declared wrongly: a bad ``@timer``
    interval, an invalid ``@http`` method or route, a class added twice
    under one name, ...

    Also a ``ValueError``, what these raised before, so existing
    ``except ValueError`` clauses keep catching it.
    """


class ServiceNameError(ConfigurationError, AttributeError):
    """A service class has no ``name`` (or not a non-empty string).

    Also an ``AttributeError``, what this raised before.
    """


class CommandError(NamekoLikeException):
    """A command-line command was used wrongly or could not complete."""


class UnserializableValueError(NamekoLikeException):
    """A value (typically an RPC result) cannot be serialized."""

    def __init__(self, value: Any) -> None:
        try:
            self.repr_value = repr(value)
        except Exception:  # noqa: BLE001 - repr of user objects may fail
            self.repr_value = "[repr() failed]"
        # no args, as in Nameko: its reply carries ``exc_args: []``
        super().__init__()

    def __str__(self) -> str:
        return f"Unserializable value: `{self.repr_value}`"

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilding from the repr would repr it a second time.
        return (_rebuild_unserializable, (self.repr_value,))


def _rebuild_unserializable(repr_value: str) -> UnserializableValueError:
    exc = UnserializableValueError.__new__(UnserializableValueError)
    exc.repr_value = repr_value
    return exc


class ConnectionNotFound(BadRequest):
    """A websocket connection id does not name a live connection."""

    def __init__(self, socket_id: Any = None) -> None:
        self.socket_id = socket_id
        super().__init__(socket_id)

    def __str__(self) -> str:
        return f"Connection not found: {self.socket_id}"


# --- containers ---------------------------------------------------------------


class ContainerBeingKilled(ContainerError):
    """The container is being killed and accepts no new workers."""


class ExtensionNotFound(ContainerError, AttributeError):
    """No extension of the requested kind is bound to the container.

    Also an ``AttributeError``, as in Nameko.
    """


# --- rpc ----------------------------------------------------------------------


@deserialize_to_instance
class RpcTimeout(RpcError):
    """No reply to an RPC call arrived within its timeout."""


class UnknownService(RpcError):
    """An RPC call named a service that has no queue bound to receive it
    (is the service running?).

    Not rebuilt on a remote caller, as in Nameko: a service that lets it
    escape gives its own caller a ``RemoteError`` with ``exc_type ==
    "UnknownService"``.
    """

    def __init__(self, service_name: str) -> None:
        self.service_name = service_name
        super().__init__(service_name)

    def __str__(self) -> str:
        # Nameko's wording: it is the ``value`` remote callers receive.
        return f"Unknown service `{self.service_name}`"


class RpcConnectionError(RpcError):
    """The connection an RPC proxy depends on was lost."""


class ReplyQueueExpiredWithPendingReplies(RpcError):
    """The reply queue expired while replies to it were still awaited."""


@deserialize_to_instance
class ResultTooLarge(RpcError):
    """The broker refused an RPC reply for its size (its ``max_message_size``).

    Sent to the caller in place of the result: the same reply would be
    refused again, so the request is acknowledged, not run again.
    """


# --- requests -----------------------------------------------------------------


@nameko_wire_name
@deserialize_to_instance
class MethodNotFound(BadRequest):
    """The target service has no entrypoint of the requested name."""


@nameko_wire_name
@deserialize_to_instance
class IncorrectSignature(BadRequest):
    """The call's arguments do not match the method's signature."""


@nameko_wire_name
@deserialize_to_instance
class MalformedRequest(BadRequest):
    """An RPC request message could not be parsed."""


# --- delivery -----------------------------------------------------------------


class UndeliverableMessage(DeliveryError):
    """A mandatory publish was returned by the broker as unroutable."""


class PublishConfirmTimeout(DeliveryError, TimeoutError):
    """The broker did not confirm (nor refuse) a publish within the time waited.

    The message may still have been taken: the broker had not answered yet.
    A delivery error, not an ``RpcTimeout``: no RPC reply was being waited for.
    """
