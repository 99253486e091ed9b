"""Who validates: the ``@validated`` mark and the ``VALIDATE_CONTRACTS`` switch.

Validation is opt-in so that services without it behave exactly as Nameko's
do. A method is validated when it, or its service class, carries the mark,
or when the container's config sets ``VALIDATE_CONTRACTS``. Either way a
method without annotations is left alone.
"""

from __future__ import annotations

from typing import Any, TypeVar

from nameko_like.constants import VALIDATE_CONTRACTS_CONFIG_KEY

#: Attribute the mark sets on a method or a service class.
MARK_ATTR = "__nameko_like_validated__"

_T = TypeVar("_T")


def validated(target: _T) -> _T:
    """Validate the decorated method's payloads (or every method of a class).

    Put it on a service class to validate all its entrypoints, or on one
    method (above or below ``@rpc``, ``@http``...). The target is returned
    unchanged, so signatures stay what type checkers see.
    """
    try:
        setattr(target, MARK_ATTR, True)
    except (AttributeError, TypeError):
        raise TypeError(
            f"@validated marks a service class or method, not {target!r}") from None
    return target


def is_opted_in(service_cls: type, method_name: str, config: dict[str, Any]) -> bool:
    """Whether ``service_cls.method_name`` is to be validated."""
    if config.get(VALIDATE_CONTRACTS_CONFIG_KEY):
        return True
    if any(vars(base).get(MARK_ATTR) for base in service_cls.__mro__):
        return True
    method = getattr(service_cls, method_name, None)
    return bool(getattr(method, MARK_ATTR, False))
