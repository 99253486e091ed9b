"""Health: liveness, readiness and the checks services declare.

Readiness (``/health/ready``) holds when every container of the process has
started, and each one that consumes from the broker is connected and
consuming all its queues. A service adds its own checks, with the
:class:`HealthCheck` dependency (a function of its own) or the
:func:`health_check` decorator (a service method, run as a worker with the
service's dependencies); a failing check marks the service
*degraded*: reported in the body and in the ``nameko_like_health_check_ok``
metric, and a readiness failure only for a check declared ``critical``.

Liveness (``/health/live``) holds while the process answers at all: the
eventlet hub is running, so a probe that times out is what a stuck process
looks like.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from nameko_like._eventlet import eventlet
from nameko_like.exceptions import ConfigurationError, ContainerBeingKilled, IncorrectSignature
from nameko_like.extensions import DependencyProvider, Entrypoint
from nameko_like.messaging import QueueConsumer
from nameko_like.protocols import ExcInfo
from nameko_like.worker_context import WorkerContext

_log = logging.getLogger(__name__)

__all__ = ["CheckResult", "HealthCheck", "HealthCheckEntrypoint", "Readiness", "health_check",
           "readiness"]

#: What a check callable returns: None or True when healthy; False or a
#: string saying what is wrong when degraded.
CheckOutcome = bool | str | None


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one :class:`HealthCheck`: ``ok``, and why not."""

    service: str
    name: str
    ok: bool
    critical: bool
    reason: str | None = None


def _result(service: str, name: str, critical: bool, outcome: object) -> CheckResult:
    """The result of a check that returned ``outcome`` (see :data:`CheckOutcome`)."""
    if outcome is None or outcome is True:
        return CheckResult(service, name, True, critical)
    reason = outcome if isinstance(outcome, str) else "check failed"
    return CheckResult(service, name, False, critical, reason)


def _raised(service: str, name: str, critical: bool, exc: BaseException) -> CheckResult:
    """The result of a check that raised ``exc``: failed, with the error's text."""
    _log.warning("health check %s of %s raised %r", name, service, exc)
    return CheckResult(service, name, False, critical, f"{type(exc).__name__}: {exc}")


class HealthCheck(DependencyProvider):
    """A service's own health check, run on every readiness probe.

    Args:
        check: a callable taking no arguments; it returns None or True when
            healthy, False or a string saying what is wrong when degraded.
            An exception it raises counts as degraded, with its text.
        critical: a failing critical check makes the process *not ready*
            (503); a non-critical one only reports the service degraded.

    The check is named after the service attribute. In a worker the
    attribute is a callable running the check and returning its
    :class:`CheckResult`. Example::

        def disk_has_room():
            free = shutil.disk_usage("/var/spool").free
            return free > 100_000_000 or f"only {free} bytes free"

        class Spooler:
            name = "spooler"
            disk = HealthCheck(disk_has_room)

    Checks run in the operations server's greenthread: keep them quick and
    cooperative (eventlet-friendly I/O only).
    """

    def __init__(self, check: Callable[[], CheckOutcome], critical: bool = False) -> None:
        if not callable(check):
            raise TypeError(f"HealthCheck needs a callable returning bool or str, got {check!r}")
        self.check = check
        self.critical = critical
        super().__init__()

    def run(self) -> CheckResult:
        """Run the check now and return its result (exceptions count as degraded)."""
        service = self.container.service_name
        try:
            outcome = self.check()
        except Exception as exc:  # noqa: BLE001 - a raising check is a failing check
            return _raised(service, self.attr_name, self.critical, exc)
        return _result(service, self.attr_name, self.critical, outcome)

    def get_dependency(self, worker_ctx: WorkerContext) -> Callable[[], CheckResult]:
        """Give the worker the check, to run it on demand."""
        return self.run


class HealthCheckEntrypoint(Entrypoint):
    """A service method that is a health check, run on every readiness probe.

    Declared with :func:`health_check`. The check is named after the method
    and runs as a worker of the service, so it has the service's
    dependencies (a database session, an RPC proxy); it returns what a
    :class:`HealthCheck` callable returns (None or True when healthy, False
    or a string saying what is wrong), and an exception it raises counts as
    a failure with its text (logged by the container as an expected error,
    without a traceback).

    Args:
        critical: a failing critical check makes the process *not ready*
            (503); a non-critical one only reports the service degraded.
        timeout: seconds to wait for the check (a worker slot included);
            a check that takes longer fails, ``timed out after <timeout>s``.
    """

    #: health-check workers start no trace of their own: a probe every few
    #: seconds would otherwise fill the trace backend with them
    traced = False

    def __init__(self, critical: bool = False, timeout: float = 5.0, **kwargs: Any) -> None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ConfigurationError(
                f"@health_check(timeout=...) takes a number of seconds > 0, got {timeout!r}")
        self.critical = critical
        self.timeout = float(timeout)
        # The previous run's "done" event: a check that outlived its timeout
        # keeps its worker (and its max_workers slot) until it returns, so a
        # probe must not start another one meanwhile.
        self._previous_run: eventlet.event.Event | None = None
        # a check that raises reports a failure, it is not a bug of the
        # service: logged as a warning (no traceback at every probe) and
        # counted as an expected error
        kwargs.setdefault("expected_exceptions", Exception)
        super().__init__(**kwargs)

    def setup(self) -> None:
        """Refuse a method that needs arguments: probes pass none."""
        try:
            self.check_signature((), {})
        except IncorrectSignature as exc:
            raise ConfigurationError(
                f"@health_check method {self.container.service_name}.{self.method_name} "
                f"must take no arguments besides self ({exc})") from None

    def run(self) -> CheckResult:
        """Run the check in a worker now and return its result."""
        service, name = self.container.service_name, self.method_name
        if self._previous_run is not None and not self._previous_run.ready():
            return CheckResult(service, name, False, self.critical,
                               f"still running: its previous run outlasted {self.timeout:g}s")
        outcome: list[tuple[object, ExcInfo | None]] = []
        done = eventlet.event.Event()

        def handle_result(worker_ctx: WorkerContext, result: object,
                          exc_info: ExcInfo | None) -> tuple[object, ExcInfo | None]:
            outcome.append((result, exc_info))
            done.send()
            return result, exc_info

        with eventlet.Timeout(self.timeout, False):  # False: leave the block, no error
            try:
                self.container.spawn_worker(self, (), {}, handle_result=handle_result)
            except ContainerBeingKilled:
                return CheckResult(service, name, False, self.critical, "service stopping")
            self._previous_run = done
            done.wait()
        if not outcome:
            return CheckResult(service, name, False, self.critical,
                               f"timed out after {self.timeout:g}s")
        result, exc_info = outcome[0]
        if exc_info is not None:  # the container logged it
            exc = exc_info[1]
            return CheckResult(service, name, False, self.critical,
                               f"{type(exc).__name__}: {exc}")
        return _result(service, name, self.critical, result)


#: Declares a service method a health check: ``@health_check`` or
#: ``@health_check(critical=True, timeout=2)``; see :class:`HealthCheckEntrypoint`.
health_check = HealthCheckEntrypoint.decorator


@dataclass
class Readiness:
    """Whether the process is ready, every reason it is not, and the checks' results."""

    ready: bool = True
    reasons: list[str] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The JSON body of ``/health/ready``."""
        degraded = [check for check in self.checks if not check.ok]
        status = "not ready" if not self.ready else "degraded" if degraded else "ready"
        return {
            "status": status,
            "reasons": self.reasons,
            "checks": [
                {"service": check.service, "check": check.name, "ok": check.ok,
                 "critical": check.critical, "reason": check.reason}
                for check in self.checks
            ],
        }


def container_reasons(container: Any) -> list[str]:
    """Why ``container`` is not ready (empty when it is)."""
    name = container.service_name
    if not container.running:
        return [f"{name}: not started"]
    reasons = []
    for extension in container.subextensions:
        if isinstance(extension, QueueConsumer) and not extension.consuming:
            reasons.append(f"{name}: not connected to the broker and consuming")
    return reasons


def _run_checks(container: Any) -> list[CheckResult]:
    """Run ``container``'s checks, both forms, in the order of their names."""
    checks: list[HealthCheck | HealthCheckEntrypoint] = [
        dependency for dependency in container.dependencies
        if isinstance(dependency, HealthCheck)]
    if container.running:  # a check method needs a worker: not before start
        checks.extend(entrypoint for entrypoint in container.entrypoints
                      if isinstance(entrypoint, HealthCheckEntrypoint))
    checks.sort(key=lambda check: check.attr_name if isinstance(check, HealthCheck)
                else check.method_name)
    return [check.run() for check in checks]


def readiness(containers: Iterable[Any], starting: Iterable[Any] = ()) -> Readiness:
    """Evaluate readiness of ``containers``; ``starting`` ones are not ready yet."""
    containers, starting = list(containers), list(starting)
    result = Readiness()
    for container in starting:
        result.reasons.append(f"{container.service_name}: starting")
    for container in containers:
        result.reasons.extend(container_reasons(container))
        for check in _run_checks(container):
            result.checks.append(check)
            if check.critical and not check.ok:
                result.reasons.append(
                    f"{check.service}: critical check {check.name} failed: {check.reason}")
    if not result.reasons and not (containers or starting):
        result.reasons.append("no service running")
    result.ready = not result.reasons
    return result
