"""When the pytest plugin monkey-patches a test session, and why.

The plugin is loaded by every pytest run in an environment where
nameko_like is installed, including runs of projects that have nothing to
do with it; those must run exactly as they would without it. So the plugin
patches (``eventlet.monkey_patch()``, as ``nameko_like run`` does for a
service process) only sessions that use nameko_like, decided before any
conftest or test module is imported (patching later would leave modules
holding blocking primitives):

1. ``NAMEKO_LIKE_NO_MONKEY_PATCH=1`` in the environment: never patch.
2. The ini option ``nameko_like_monkey_patch`` (in ``pytest.ini``,
   ``setup.cfg``'s ``[tool:pytest]``, ``tox.ini`` or ``pyproject.toml``, or
   ``-o nameko_like_monkey_patch=...`` on the command line): ``true`` always
   patches, ``false`` never does.
3. Otherwise (``auto``, the default) the session is patched when one of
   these files mentions ``nameko_like``: the ini file, a ``conftest.py`` in
   the root directory or on the way from it to the paths given to pytest,
   or a test file given by name.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

_log = logging.getLogger(__name__)

#: The ini option that switches patching on or off.
INI_OPTION = "nameko_like_monkey_patch"
#: The ini option that chooses eventlet's hub (``asyncio`` or ``default``).
HUB_INI_OPTION = "nameko_like_eventlet_hub"
#: Set to ``1`` to never patch (overrides the ini option).
ENV_OFF = "NAMEKO_LIKE_NO_MONKEY_PATCH"
#: What a file must contain for ``auto`` to patch.
MARKER = b"nameko_like"

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def add_ini_option(parser: pytest.Parser) -> None:
    """Register :data:`INI_OPTION`."""
    parser.addini(
        HUB_INI_OPTION,
        "eventlet's hub for the session: asyncio (async def service methods) or default; "
        "EVENTLET_HUB in the environment, when set, wins",
        default="",
    )
    parser.addini(
        INI_OPTION,
        "eventlet-monkey-patch the test session: true, false or auto (patch when the "
        "ini file, a conftest.py or a named test file mentions nameko_like)",
        default="auto",
    )


def choose_hub(config: pytest.Config) -> None:
    """Choose eventlet's hub as :data:`HUB_INI_OPTION` says, before patching makes it.

    Raises:
        pytest.UsageError: the option names no hub nameko_like knows.
    """
    hub = str(config.getini(HUB_INI_OPTION) or "").strip().lower()
    if not hub or os.environ.get("EVENTLET_HUB"):
        return
    if hub not in ("asyncio", "default"):
        raise pytest.UsageError(
            f"{HUB_INI_OPTION} = {hub!r}: use asyncio, default, or leave it unset")
    if hub == "asyncio":
        os.environ["EVENTLET_HUB"] = hub


def decide(config: pytest.Config) -> tuple[bool, str]:
    """Whether to patch this session, and the reason (for ``-v`` output and errors).

    Raises:
        pytest.UsageError: the ini option has a value other than true,
            false or auto.
    """
    if os.environ.get(ENV_OFF) == "1":
        return False, f"{ENV_OFF}=1"
    setting = str(config.getini(INI_OPTION)).strip().lower() or "auto"
    if setting in _TRUE:
        return True, f"{INI_OPTION} = {setting}"
    if setting in _FALSE:
        return False, f"{INI_OPTION} = {setting}"
    if setting != "auto":
        raise pytest.UsageError(
            f"{INI_OPTION} = {setting!r}: use true, false or auto")
    for path in _files_to_look_at(config):
        if _mentions_us(path):
            return True, f"{path} mentions nameko_like ({INI_OPTION} = auto)"
    return False, (f"neither the ini file nor a conftest.py mentions nameko_like "
                   f"({INI_OPTION} = auto)")


def _mentions_us(path: Path) -> bool:
    try:
        return MARKER in path.read_bytes()
    except OSError:  # unreadable: it cannot tell us anything
        return False


def _files_to_look_at(config: pytest.Config) -> Iterator[Path]:
    if config.inipath is not None:
        yield Path(config.inipath)
    root = Path(config.rootpath)
    folders: dict[Path, None] = {root: None}
    for target in _targets(config):
        if target.is_file():
            if target.suffix == ".py":
                yield target
            target = target.parent
        for folder in (target, *target.parents):
            folders[folder] = None
            if folder == root:
                break
    for folder in folders:
        conftest = folder / "conftest.py"
        if conftest.is_file():
            yield conftest


def _targets(config: pytest.Config) -> Iterable[Path]:
    """The paths this session will collect from, as far as known before collection."""
    given = list(getattr(config.known_args_namespace, "file_or_dir", None) or [])
    if not given:
        given = list(config.getini("testpaths")) or [str(config.invocation_params.dir)]
    base = Path(config.invocation_params.dir)
    for arg in given:
        path = (base / str(arg).split("::", 1)[0]).resolve()
        if path.exists():
            yield path


def patch_if_wanted(config: pytest.Config) -> bool:
    """Monkey-patch the process if :func:`decide` says so; return whether it did."""
    wanted, reason = decide(config)
    _log.debug("eventlet monkey patch %s: %s", "on" if wanted else "off", reason)
    config.stash[REASON_KEY] = reason
    if wanted:
        from nameko_like._eventlet import eventlet

        eventlet.monkey_patch()
    return wanted


#: Where the plugin keeps the reason for its decision on the config.
REASON_KEY = pytest.StashKey[str]()


def is_patched() -> bool:
    """Whether the process is eventlet-monkey-patched (by anyone)."""
    from nameko_like._eventlet import eventlet

    return any(eventlet.patcher.is_monkey_patched(name) for name in ("os", "socket", "thread"))
