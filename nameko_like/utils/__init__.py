"""Small helpers shared across nameko_like: argument redaction, importing by
dotted path and hiding passwords in URLs."""

from __future__ import annotations

import importlib
import inspect
import logging
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from nameko_like.extensions import Entrypoint

logger = logging.getLogger(__name__)

#: Replaces sensitive values in logs, traces and URLs.
REDACTED = "********"

# A path opens with an argument name, then has steps ``.key`` or ``[index]``.
_PATH_HEAD = re.compile(r"[^.\[\]]+")
_PATH_STEP = re.compile(r"\.([^.\[\]]+)|\[(-?\d+)\]")


def _parse_path(spec: str) -> list[str | int] | None:
    """Split ``"a.b[0]"`` into ``["a", "b", 0]``; None if it does not parse."""
    head = _PATH_HEAD.match(spec)
    if head is None:
        return None
    steps: list[str | int] = [head.group()]
    pos = head.end()
    while pos < len(spec):
        match = _PATH_STEP.match(spec, pos)
        if match is None:
            return None
        key, index = match.groups()
        steps.append(key if key is not None else int(index))
        pos = match.end()
    return steps


def _redact(value: Any, steps: list[str | int]) -> Any:
    """Return a copy of ``value`` with the item at ``steps`` redacted.

    Containers along the path are copied, never changed in place, so the
    caller's arguments stay intact; an unknown path returns ``value`` as is.
    """
    if not steps:
        return REDACTED
    step, rest = steps[0], steps[1:]
    if isinstance(value, dict):
        if step not in value:
            return value
        copied = dict(value)
        copied[step] = _redact(value[step], rest)
        return copied
    if isinstance(value, (list, tuple)) and isinstance(step, int):
        if not -len(value) <= step < len(value):
            return value
        items = list(value)
        items[step] = _redact(value[step], rest)
        if isinstance(value, list):
            return items
        if type(value) is tuple:
            return tuple(items)
        # A namedtuple takes its fields as positional arguments.
        return type(value)(*items)
    return value


def get_redacted_args(entrypoint: Entrypoint, *args: Any,
                      **kwargs: Any) -> dict[str, Any]:
    """Return a call's arguments by parameter name, sensitive parts redacted.

    The arguments are bound to the signature of the service method that
    ``entrypoint`` decorates, defaults included. Each entry of
    ``entrypoint.sensitive_arguments`` names an argument (``"password"``) or a
    part of one: a key of a dict argument (``"credentials.password"``) or an
    index of a list argument (``"items[0]"``), combinable
    (``"users[0].token"``). Those parts are replaced by :data:`REDACTED`;
    paths that match nothing are ignored.

    Only the containers along a redacted path are copied (not the whole
    argument), so arguments that cannot be deep-copied still work and the
    caller's objects are never changed.

    Raises:
        TypeError: the arguments do not fit the method's signature.
    """
    method = getattr(entrypoint.container.service_cls, entrypoint.method_name)
    signature = inspect.signature(method)
    # The method is a plain function looked up on the class, so its first
    # parameter is the instance; None stands in for it.
    bound = signature.bind(None, *args, **kwargs)
    bound.apply_defaults()
    callargs = dict(bound.arguments)
    self_name = next(iter(signature.parameters))
    del callargs[self_name]

    sensitive = getattr(entrypoint, "sensitive_arguments", None) or ()
    if isinstance(sensitive, str):
        sensitive = (sensitive,)
    for spec in sensitive:
        steps = _parse_path(spec)
        if steps is None or steps[0] not in callargs:
            logger.debug("sensitive argument %r matches no argument", spec)
            continue
        name = steps[0]
        callargs[name] = _redact(callargs[name], steps[1:])
    return callargs


def _import_module(name: str, path: str) -> Any:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        # Only a missing *target* module is "not found"; a missing module
        # that the target itself imports is a real error and keeps its
        # own message.
        if exc.name is not None and (name == exc.name
                                     or name.startswith(exc.name + ".")):
            raise ImportError(f"`{path}` could not be imported: no module "
                              f"named `{exc.name}`") from exc
        raise


def _get_attributes(obj: Any, module_name: str, attrs: list[str],
                    path: str) -> Any:
    owner = module_name
    for attr in attrs:
        try:
            obj = getattr(obj, attr)
        except AttributeError as exc:
            raise ImportError(f"`{path}` could not be imported: `{owner}` has "
                              f"no attribute `{attr}`") from exc
        owner = f"{owner}.{attr}"
    return obj


def import_from_path(path: str | None) -> Any:
    """Import and return the object named by ``path``.

    ``path`` is ``"package.module:Name"`` or ``"package.module.Name"`` (the
    name may itself be dotted, as in ``"module:Class.attr"``). A path that
    names a module returns the module; ``None`` returns ``None``.

    Raises:
        ImportError: the module or attribute does not exist; the message names
            the part that was not found.
    """
    if path is None:
        return None
    if not path or path.startswith((".", ":")):
        raise ImportError(f"`{path}` could not be imported: expected "
                          f"'package.module:Name' or 'package.module.Name'")
    if ":" in path:
        module_name, _, attr_path = path.partition(":")
        module = _import_module(module_name, path)
        attrs = attr_path.split(".") if attr_path else []
        return _get_attributes(module, module_name, attrs, path)

    parts = path.split(".")
    # Without a colon we cannot tell where the module ends, so try the
    # longest prefix first and fall back one component at a time.
    for split in range(len(parts), 0, -1):
        module_name = ".".join(parts[:split])
        try:
            module = _import_module(module_name, path)
        except ImportError as exc:
            if split == 1 or not isinstance(exc.__cause__,
                                            ModuleNotFoundError):
                raise
            continue
        return _get_attributes(module, module_name, parts[split:], path)
    raise AssertionError("unreachable")  # pragma: no cover


def sanitize_url(url: str) -> str:
    """Return ``url`` with its password, if any, replaced by :data:`REDACTED`.

    The scheme, user, host, port, path and query are kept, so the result is
    still useful in logs: ``amqp://guest:secret@host:5672/vh`` becomes
    ``amqp://guest:********@host:5672/vh``.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        # We cannot tell where a password would be; hide everything after
        # the scheme rather than risk printing it.
        scheme, sep, _ = url.partition("://")
        return f"{scheme}{sep}{REDACTED}" if sep else REDACTED
    userinfo, at, hostinfo = parts.netloc.rpartition("@")
    if not at:
        return url
    # Usernames cannot hold an unencoded colon, so the first one ends it.
    user, colon, password = userinfo.partition(":")
    if not colon or not password:
        return url
    netloc = f"{user}:{REDACTED}@{hostinfo}"
    return urlunsplit(parts._replace(netloc=netloc))
