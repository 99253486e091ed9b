"""``nameko_like run --reload``: restart the services when a source file changes.

For development only, never on by default. This process is a supervisor: it
runs the services in a child ``nameko_like run`` (same arguments, without
``--reload``), watches the source tree with watchfiles (inotify and its
equivalents, not polling), and on a change stops the child and starts a new
one. A child that fails (a syntax error just saved) is restarted at the next
change.

The supervisor is not monkey-patched: it runs no services, and watchfiles
blocks in native code that eventlet's hub could not schedule around. The
child runs in its own session, so a terminal's Ctrl-C reaches the
supervisor only; each SIGINT or SIGTERM is forwarded once to the child,
which keeps ``run``'s meaning: the first stops gracefully, a second kills.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from nameko_like.cli.options import config_files
from nameko_like.exceptions import CommandError

_log = logging.getLogger(__name__)

#: Signals that stop the supervisor (each is forwarded to the services).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: Seconds a replaced child gets to stop gracefully before it is told to
#: stop at once, and then again before it is killed: reloads stay quick even
#: when a worker hangs.
RESTART_STOP_TIMEOUT = 5.0
#: Extensions watched besides ``.py`` (config files change behaviour too).
EXTRA_EXTENSIONS = (".yaml", ".yml")
#: How often (ms) the watcher comes back without changes, to notice a child
#: that ended by itself.
_WATCH_TIMEOUT_MS = 500


def child_command(args: argparse.Namespace) -> list[str]:
    """The ``nameko_like run`` command line ``args`` describe, without ``--reload``."""
    command = [sys.executable, "-m", "nameko_like", "run", *args.services]
    for path in config_files(args):
        command += ["--config", path]
    if getattr(args, "broker", None):
        command += ["--broker", args.broker]
    for definition in getattr(args, "define", None) or []:
        command += ["--define", definition]
    backdoor = getattr(args, "backdoor_port", None)
    if isinstance(backdoor, tuple):
        host, port = backdoor
        command += ["--backdoor-port", f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    elif backdoor is not None:
        command += ["--backdoor-port", str(backdoor)]
    return command


def watched_paths(args: argparse.Namespace) -> list[Path]:
    """What ``--reload`` watches: the ``--reload-dir`` directories (default the
    current one, where service modules are imported from) and the config files.

    Raises:
        CommandError: a ``--reload-dir`` that is not a directory.
    """
    directories = [Path(text) for text in (getattr(args, "reload_dirs", None) or ["."])]
    for directory in directories:
        if not directory.is_dir():
            raise CommandError(f"--reload-dir {str(directory)!r} is not a directory")
    return [path.resolve() for path in [*directories, *map(Path, config_files(args))]]


class Supervisor:
    """Runs ``command`` in a child process, restarting it when ``paths`` change."""

    def __init__(self, command: Sequence[str], paths: Sequence[Path]) -> None:
        self.command = list(command)
        self.paths = list(paths)
        self._child: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._child_status: int | None = None

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Runs between bytecodes of the main thread: only flag and forward.
        self._stop.set()
        child = self._child
        if child is not None and child.poll() is None:
            os.kill(child.pid, signum)

    def _start_child(self) -> None:
        if self._stop.is_set():
            return  # a stop signal came while the previous child was stopping
        self._child_status = None
        # Own session: a terminal's Ctrl-C must not reach it beside our forwarding.
        self._child = subprocess.Popen(self.command, start_new_session=True)
        _log.info("reload: started the services (process %s)", self._child.pid)

    def _replace_child(self) -> None:
        """Stop the running child (graceful, then at once, then kill); start a new one."""
        child = self._child
        if child is not None and child.poll() is None:
            for stop in (signal.SIGTERM, signal.SIGTERM, signal.SIGKILL):
                os.kill(child.pid, stop)
                try:
                    child.wait(RESTART_STOP_TIMEOUT)
                    break
                except subprocess.TimeoutExpired:
                    continue
            child.wait()
        self._start_child()

    def run(self) -> int:
        """Supervise until SIGINT or SIGTERM; return the last child's exit status."""
        import watchfiles

        previous = {sig: signal.signal(sig, self._on_signal) for sig in STOP_SIGNALS}
        watch_filter = watchfiles.PythonFilter(extra_extensions=EXTRA_EXTENSIONS)
        _log.info("reload: watching %s for changes to .py, .yaml and .yml files",
                  ", ".join(str(path) for path in self.paths))
        try:
            self._start_child()
            for changes in watchfiles.watch(
                    *self.paths, watch_filter=watch_filter, stop_event=self._stop,
                    raise_interrupt=False, yield_on_timeout=True,
                    rust_timeout=_WATCH_TIMEOUT_MS, debounce=400):
                if self._stop.is_set():
                    break
                self._notice_exit()
                if changes:
                    names = sorted({os.path.relpath(path) for _, path in changes})
                    _log.info("reload: %s changed; restarting the services", ", ".join(names))
                    self._replace_child()
            return self._wait_for_child()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _notice_exit(self) -> None:
        child = self._child
        if child is None or self._child_status is not None:
            return
        status = child.poll()
        if status is not None:
            self._child_status = status
            _log.warning("reload: the services exited with status %s; restarting at the "
                         "next change", status)

    def _wait_for_child(self) -> int:
        """After a stop signal (already forwarded): the child's exit status."""
        child = self._child
        # Still our handler meanwhile: a second signal is forwarded, and kills.
        return 0 if child is None else child.wait()


def supervise(args: argparse.Namespace) -> int:
    """Run ``nameko_like run`` with ``args`` in a child process, reloading on changes.

    Raises:
        CommandError: watchfiles is not installed, or a watched path is wrong.
    """
    try:
        import watchfiles  # noqa: F401 - only checking it is there
    except ImportError:
        raise CommandError(
            "--reload needs the watchfiles package: pip install 'nameko_like[reload]'"
        ) from None
    return Supervisor(child_command(args), watched_paths(args)).run()

