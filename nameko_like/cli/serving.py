"""Serving services for ``nameko_like run``: the runner and stop signals.

Imported only after eventlet has monkey-patched the standard library.
"""

from __future__ import annotations

import logging
import os
import signal
from types import FrameType
from typing import Any

from nameko_like._eventlet import eventlet
from nameko_like.amqp.connection import safe_uri
from nameko_like.cli.startup_report import log_startup
from nameko_like.exceptions import CommandError, ConfigurationError
from nameko_like.runners import ServiceRunner

_log = logging.getLogger(__name__)

#: Signals that stop the services: gracefully the first time, at once after.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _ignore_signal(signum: int, frame: FrameType | None) -> None:
    """Python-level handler: its only job is to replace the default action."""


class SignalWatcher:
    """Turns stop signals into a graceful stop (first) and a kill (later ones).

    Python runs signal handlers between two bytecodes of whichever greenthread
    is current, where blocking on eventlet primitives is unsafe, and a signal
    arriving while the hub sleeps would not wake it. So the handlers do
    nothing; the signal number is written to a pipe (``signal.set_wakeup_fd``)
    that a greenthread waits on like any socket.
    """

    def __init__(self) -> None:
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)
        self._previous_handlers = {sig: signal.signal(sig, _ignore_signal)
                                   for sig in STOP_SIGNALS}
        self._previous_wakeup_fd = signal.set_wakeup_fd(self._write_fd)
        self._thread: Any = None  # eventlet's GreenThread, untyped
        #: The signal that made us kill the services, if one did.
        self.killed_by: int | None = None

    def watch(self, runner: ServiceRunner) -> None:
        """Act on signals for ``runner`` from a new greenthread."""
        self._thread = eventlet.spawn(self._watch, runner)

    def _watch(self, runner: ServiceRunner) -> None:
        received = 0
        while True:
            eventlet.hubs.trampoline(self._read_fd, read=True)
            try:
                data = os.read(self._read_fd, 64)
            except BlockingIOError:
                continue
            for signum in data:
                if signum not in STOP_SIGNALS:
                    continue
                received += 1
                name = signal.Signals(signum).name
                # Spawned, so further signals are still read while it runs.
                if received == 1:
                    _log.info("%s received: stopping gracefully (send it again to kill)", name)
                    eventlet.spawn_n(_stop, runner)
                elif self.killed_by is None:
                    _log.warning("%s received again: killing the services", name)
                    self.killed_by = signum
                    eventlet.spawn_n(runner.kill)

    def close(self) -> None:
        """Stop watching and give the signals back their previous handlers."""
        if self._thread is not None:
            self._thread.kill()
        signal.set_wakeup_fd(self._previous_wakeup_fd)
        for sig, handler in self._previous_handlers.items():
            signal.signal(sig, handler)
        os.close(self._read_fd)
        os.close(self._write_fd)


def _stop(runner: ServiceRunner) -> None:
    try:
        runner.stop()
    except Exception:  # noqa: BLE001 - a failed graceful stop must still end the process
        _log.exception("graceful stop failed; killing the services")
        runner.kill()


def serve(services: list[type], config: dict[str, Any],
          backdoor_address: tuple[str, int] | None = None) -> int:
    """Run ``services`` until a stop signal; return the process exit status."""
    runner = ServiceRunner(config)
    for service_cls in services:
        try:
            runner.add_service(service_cls)
        except (AttributeError, ValueError) as exc:  # no name, or a name taken twice
            raise CommandError(str(exc)) from None

    # Installed before starting so a signal during start-up is queued, not lost.
    signals = SignalWatcher()
    backdoor = None
    try:
        if backdoor_address is not None:
            # Imported only when asked for: it loads eventlet's backdoor (and code, pprint).
            from nameko_like.cli.backdoor_server import start_backdoor

            backdoor = start_backdoor(backdoor_address, {"runner": runner})
        try:
            runner.start()
        except Exception as exc:  # noqa: BLE001 - any start-up failure becomes the command's error
            _log.debug("start-up failed", exc_info=True)
            runner.kill()
            # A ConfigurationError's message names the key and the fix already.
            reason = str(exc) if isinstance(exc, ConfigurationError) else (
                f"{type(exc).__name__}: {exc}")
            raise CommandError(f"services failed to start: {reason}") from None
        log_startup(runner.containers, config, backdoor.address if backdoor else None)
        # The last start-up line, which scripts and tests wait for.
        _log.info("running services %s; broker %s", ", ".join(runner.service_names),
                  safe_uri(config))
        signals.watch(runner)
        try:
            runner.wait()
        except Exception as exc:  # noqa: BLE001 - whatever killed a service ends the command
            # The dying container has logged the traceback already.
            runner.kill()
            raise CommandError(f"a service died: {type(exc).__name__}: {exc}") from None
    finally:
        if backdoor is not None:
            backdoor.thread.kill()
        signals.close()
    if signals.killed_by is not None:
        return 128 + signals.killed_by
    _log.info("stopped")
    return 0
