"""Finding the service classes ``nameko_like run`` was asked to run.

Every failure is a :class:`CommandError` with a one-line message that says
which module or attribute was at fault, and tells a module that does not
exist apart from one that exists but fails while being imported.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import sys
import traceback
from types import ModuleType

from nameko_like.exceptions import CommandError
from nameko_like.extensions import ENTRYPOINT_EXTENSIONS_ATTR

_log = logging.getLogger(__name__)


def add_cwd_to_path() -> None:
    """Make modules in the current directory importable, as ``python -m`` does."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)


def _where(exc: BaseException) -> str:
    """``file:line`` of the innermost frame outside the import machinery."""
    frames = [frame for frame in traceback.extract_tb(exc.__traceback__)
              if not frame.filename.startswith("<frozen")]
    if not frames:
        return ""
    filename = frames[-1].filename
    try:
        relative = os.path.relpath(filename)
        filename = relative if not relative.startswith("..") else filename
    except ValueError:  # another drive, on Windows
        pass
    return f" ({filename}:{frames[-1].lineno})"


def import_module(name: str) -> ModuleType:
    """Import module ``name``, turning every failure into a one-line CommandError."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        # Only the target (or a package on its way) missing means "not found";
        # a module the target itself imports being missing is the user's error.
        missing = exc.name or ""
        if missing and (name == missing or name.startswith(missing + ".")):
            if name.endswith(".py") or os.sep in name:
                dotted = name.removesuffix(".py").strip(os.sep).replace(os.sep, ".")
                hint = f"; give a dotted module name, not a file path: did you mean {dotted!r}?"
            else:
                hint = " (looked in the current directory and on sys.path)"
            raise CommandError(f"module {name!r} not found{hint}") from None
        raise CommandError(_import_failure(name, exc)) from None
    except SyntaxError as exc:
        # The message already says where (file, line).
        raise CommandError(f"importing module {name!r} failed: "
                           f"SyntaxError: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - whatever the user's module raised while importing
        raise CommandError(_import_failure(name, exc)) from None


def _import_failure(name: str, exc: Exception) -> str:
    message = " ".join(str(exc).split())
    return (f"importing module {name!r} failed: {type(exc).__name__}: "
            f"{message}{_where(exc)}")


def has_entrypoints(cls: type) -> bool:
    """Whether any method of ``cls`` is decorated with an entrypoint."""
    return any(getattr(method, ENTRYPOINT_EXTENSIONS_ATTR, None)
               for _, method in inspect.getmembers(cls, inspect.isfunction))


def is_service_class(obj: object) -> bool:
    """Whether ``obj`` looks like a service: a class with a ``name`` and an entrypoint."""
    return (inspect.isclass(obj)
            and isinstance(getattr(obj, "name", None), str)
            and has_entrypoints(obj))


def find_services(module: ModuleType) -> list[type]:
    """The service classes a module defines or imports, in definition order."""
    return [obj for obj in vars(module).values() if is_service_class(obj)]


def _named_service(module: ModuleType, module_name: str, attr_path: str) -> type:
    obj: object = module
    owner = f"module {module_name!r}"
    done: list[str] = []
    for attr in attr_path.split("."):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            raise CommandError(f"{owner} has no attribute {attr!r}") from None
        done.append(attr)
        owner = f"{module_name}:{'.'.join(done)}"
    spec = f"{module_name}:{attr_path}"
    if not inspect.isclass(obj):
        raise CommandError(f"{spec} is a {type(obj).__name__}, not a service class")
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not name:
        raise CommandError(f"{spec} is not a service class: it has no `name` attribute")
    return obj


def resolve_services(specs: list[str]) -> list[type]:
    """The service classes named by ``module[:Class]`` specs, duplicates removed.

    A bare module contributes every service class found in it, and must
    contain at least one.
    """
    add_cwd_to_path()
    services: list[type] = []
    for spec in specs:
        module_name, _, attr_path = spec.partition(":")
        if not module_name:
            raise CommandError(f"{spec!r}: expected module[:ServiceClass]")
        module = import_module(module_name)
        if attr_path:
            found = [_named_service(module, module_name, attr_path)]
        else:
            found = find_services(module)
            if not found:
                raise CommandError(
                    f"no services found in module {module_name!r}: a service is a class "
                    "with a `name` attribute and at least one entrypoint")
        for cls in found:
            if cls not in services:
                services.append(cls)
    _log.debug("found services: %s", ", ".join(cls.__name__ for cls in services))
    return services
