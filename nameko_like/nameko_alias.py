"""Opt-in alias that makes ``import nameko...`` give nameko_like's modules.

With ``NAMEKO_LIKE_ALIAS_NAMEKO=1`` in the environment, importing the
``nameko_like`` package calls :func:`install`. From then on ``nameko`` is
``nameko_like`` and ``nameko.<sub>`` is ``nameko_like.<sub>``: the very same
module objects, so ``nameko.rpc.rpc is nameko_like.rpc.rpc``, isinstance
checks hold, and a community extension's ``DependencyProvider`` subclass is a
subclass of ours. This lets extensions written for Nameko (nameko-sqlalchemy,
nameko-redis, ...) run unchanged. Their install requirements pull the real
Nameko in; the alias hides it, and says so once.

How a name is resolved, and why in three places:

* ``nameko`` itself is put in ``sys.modules`` at install, so nothing ever
  searches the file system for it (the installed Nameko would be found).
* :class:`NamekoAliasFinder`, first on ``sys.meta_path``, answers every
  ``nameko.<sub>`` import with a loader that hands back ``nameko_like.<sub>``.
* A marker entry on the ``__path__`` of every aliased package, served by
  :class:`_AliasPathEntryFinder`, gives the same answer to finders that run
  *before* ours and search a package's ``__path__`` themselves. pytest's
  assertion rewriter is one: it inserts itself at ``sys.meta_path[0]`` after
  ``nameko_like test`` has imported us, and, since the Nameko distribution
  declares a pytest plugin, it would otherwise load ``nameko_like``'s files a
  second time under ``nameko.*`` names (two copies of every class).

Nameko's own pytest plugin (entry point ``pytest_nameko`` =
``nameko.testing.pytest``) is loaded by pytest whenever Nameko is installed.
Under the alias it resolves to a module of its own that registers nothing:
nameko_like's plugin already provides the same fixtures and options, and
registering that one module twice would stop pytest. Attribute look-ups on it
(``from nameko.testing.pytest import ...``) are answered by
``nameko_like.testing.pytest``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.metadata
import importlib.util
import logging
import sys
import types
from collections.abc import Sequence
from typing import Any

_log = logging.getLogger(__name__)

#: The environment variable that turns the alias on (value ``1``).
ENV_VAR = "NAMEKO_LIKE_ALIAS_NAMEKO"
#: The name that is aliased, and the package it resolves to.
ALIAS = "nameko"
TARGET = "nameko_like"
#: Nameko's pytest plugin module, which gets a module of its own (see above).
PYTEST_PLUGIN = "nameko.testing.pytest"
#: Our plugin, which answers attribute look-ups on the one above.
OUR_PYTEST_PLUGIN = "nameko_like.testing.pytest"
#: ``__path__`` entry served by :class:`_AliasPathEntryFinder`; not a directory.
PATH_MARKER = "<nameko_like alias of nameko>"


def is_aliased(fullname: str) -> bool:
    """Whether ``fullname`` is ``nameko`` or one of its submodules."""
    return fullname == ALIAS or fullname.startswith(ALIAS + ".")


def target_name(fullname: str) -> str:
    """The nameko_like module that stands in for ``fullname`` (a ``nameko...`` name)."""
    return TARGET + fullname[len(ALIAS):]


def installed_nameko_version() -> str | None:
    """Version of the installed Nameko distribution, None if there is none."""
    try:
        return importlib.metadata.version(ALIAS)
    except importlib.metadata.PackageNotFoundError:
        return None


def startup_message() -> tuple[int, str]:
    """The level and text of the one message the alias logs."""
    message = f"{ENV_VAR}=1: `import {ALIAS}` resolves to {TARGET}"
    version = installed_nameko_version()
    if version is None:
        return logging.INFO, message
    # Code importing nameko gets something else than what is installed: a
    # warning, so it shows even before logging is configured.
    return logging.WARNING, f"{message} (the installed Nameko {version} is hidden)"


class NamekoAliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``nameko.<sub>`` as ``nameko_like.<sub>`` and loads it as that same module."""

    def __init__(self) -> None:
        self._announced = False

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: types.ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        """A spec for an aliased name (None for any other name).

        Raises ModuleNotFoundError, naming the alias, for a Nameko submodule
        that nameko_like does not have.
        """
        if not is_aliased(fullname):
            return None
        return self.alias_spec(fullname)

    def alias_spec(self, fullname: str) -> importlib.machinery.ModuleSpec:
        """The spec that loads ``fullname`` through this loader."""
        self._announce()
        if fullname == PYTEST_PLUGIN:
            return importlib.machinery.ModuleSpec(fullname, self, origin=PATH_MARKER)
        stand_in = target_name(fullname)
        try:
            target_spec = importlib.util.find_spec(stand_in)
        except ModuleNotFoundError:
            target_spec = None
        if target_spec is None:
            raise ModuleNotFoundError(
                f"No module named {fullname!r}: {ENV_VAR}=1 makes `import {ALIAS}...` "
                f"resolve to {TARGET}, which has no {stand_in!r}. Import what you need "
                f"from {TARGET} instead, or unset {ENV_VAR} to use the installed Nameko.",
                name=fullname,
            )
        return importlib.machinery.ModuleSpec(
            fullname, self, origin=target_spec.origin,
            is_package=target_spec.submodule_search_locations is not None,
        )

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        """The nameko_like module itself (imported now if need be)."""
        if spec.name == PYTEST_PLUGIN:
            # Only if someone removed it from sys.modules (see install).
            return _inert_pytest_plugin(self)
        module = importlib.import_module(target_name(spec.name))
        # The import system is about to set module.__spec__ to the alias's
        # spec; keep the real one to put back in exec_module.
        spec.loader_state = module.__spec__
        _mark_path(module)
        if spec.name == PYTEST_PLUGIN.rpartition(".")[0]:
            # In sys.modules before it is imported: loaded through this
            # finder, the import system would also set it as attribute
            # `pytest` of nameko.testing, i.e. of nameko_like.testing, hiding
            # our own plugin there.
            sys.modules.setdefault(PYTEST_PLUGIN, _inert_pytest_plugin(self))
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run: the module is already imported. Restores its own spec."""
        alias_spec = module.__spec__
        if alias_spec is not None and alias_spec.loader_state is not None:
            module.__spec__ = alias_spec.loader_state

    def _announce(self) -> None:
        # Called under the import lock, so the flag cannot race.
        if not self._announced:
            self._announced = True
            level, message = startup_message()
            _log.log(level, message)


class _AliasPathEntryFinder:
    """Path-entry finder for :data:`PATH_MARKER`: the alias for finders ahead of ours."""

    def __init__(self, alias_finder: NamekoAliasFinder) -> None:
        self._alias_finder = alias_finder

    def find_spec(self, fullname: str,
                  target: types.ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        """The alias's spec for a ``nameko...`` name; None for a ``nameko_like...`` one."""
        if not is_aliased(fullname):
            return None
        return self._alias_finder.alias_spec(fullname)

    def invalidate_caches(self) -> None:
        """Nothing is cached."""


def _mark_path(module: types.ModuleType) -> None:
    """Put :data:`PATH_MARKER` first on a package's ``__path__`` (once)."""
    path = getattr(module, "__path__", None)
    if isinstance(path, list) and PATH_MARKER not in path:
        path.insert(0, PATH_MARKER)


def _inert_pytest_plugin(loader: importlib.abc.Loader) -> types.ModuleType:
    """Stand-in for Nameko's pytest plugin: registers nothing, delegates look-ups."""
    name = PYTEST_PLUGIN
    module = types.ModuleType(name, (
        f"Stand-in for Nameko's pytest plugin under {ENV_VAR}=1: the fixtures and "
        f"options come from {OUR_PYTEST_PLUGIN}, which answers attribute look-ups here."
    ))

    def __getattr__(attribute: str) -> Any:
        # Hook and dunder names stay unanswered: pytest would take hooks found
        # here as a second registration of our plugin.
        if attribute.startswith(("pytest_", "__")):
            raise AttributeError(f"module {name!r} has no attribute {attribute!r}")
        return getattr(importlib.import_module(OUR_PYTEST_PLUGIN), attribute)

    module.__getattr__ = __getattr__  # type: ignore[method-assign]
    module.__spec__ = importlib.machinery.ModuleSpec(name, loader, origin=PATH_MARKER)
    module.__loader__ = loader
    module.__package__ = name.rpartition(".")[0]
    return module


def _path_hook(entry: str) -> _AliasPathEntryFinder:
    """``sys.path_hooks`` entry: claims only :data:`PATH_MARKER`."""
    if entry != PATH_MARKER or _finder is None:
        raise ImportError("not the nameko_like alias marker")
    return _AliasPathEntryFinder(_finder)


#: The installed finder, None until :func:`install`.
_finder: NamekoAliasFinder | None = None


def install(package: types.ModuleType) -> None:
    """Alias ``nameko`` to ``package`` (the ``nameko_like`` package); idempotent.

    Raises ImportError if the real Nameko was imported first: its modules
    would coexist with ours and classes would exist twice.
    """
    global _finder
    if _finder is not None:
        return
    already = sorted(name for name in sys.modules if is_aliased(name))
    if already:
        raise ImportError(
            f"{ENV_VAR}=1 but the installed Nameko was imported before {TARGET} "
            f"({', '.join(already[:3])}): import {TARGET} first, e.g. run tests with "
            f"`{TARGET} test` or `pytest -p {TARGET}`, and services with `{TARGET} run`"
        )
    _finder = NamekoAliasFinder()
    sys.path_hooks.insert(0, _path_hook)
    sys.meta_path.insert(0, _finder)
    _mark_path(package)
    # No finder is asked for `nameko` from now on: a search of sys.path would
    # find the installed Nameko.
    sys.modules[ALIAS] = package
