"""The mock library the testing helpers make their mocks with.

Nameko makes them with the ``mock`` package, so suites written for it check
``isinstance(x, mock.Mock)`` with that package's classes, which
``unittest.mock``'s are not instances of. When ``mock`` is installed (it
comes with the ``testing`` extra) we use it too; a suite that imports it has
it installed. Without it, the standard library's ``unittest.mock`` serves.
"""

from __future__ import annotations

from types import ModuleType
from unittest import mock as _stdlib_mock

mock_lib: ModuleType
try:
    import mock as mock_lib  # noqa: UP026 - the package itself, on purpose (see above)
except ImportError:  # the optional package is absent: the stdlib twin works alike
    mock_lib = _stdlib_mock

#: ``DEFAULT`` sentinels of both libraries: a side effect may return either.
DEFAULT_SENTINELS: tuple[object, ...] = (mock_lib.DEFAULT, _stdlib_mock.DEFAULT)

__all__ = ["DEFAULT_SENTINELS", "mock_lib"]
