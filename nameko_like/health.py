"""Health: liveness, readiness and the checks services declare.

Readiness (``/health/ready``) holds when every container of the process has
started, and each one that consumes from the broker is connected and
consuming all its queues. A service adds its own checks with the
:class:`HealthCheck` dependency; a failing check marks the service
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

from nameko_like.extensions import DependencyProvider
from nameko_like.messaging import QueueConsumer
from nameko_like.worker_context import WorkerContext

_log = logging.getLogger(__name__)

__all__ = ["CheckResult", "HealthCheck", "Readiness", "readiness"]

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
            _log.warning("health check %s of %s raised %r", self.attr_name, service, exc)
            return CheckResult(service, self.attr_name, False, self.critical,
                               f"{type(exc).__name__}: {exc}")
        if outcome is None or outcome is True:
            return CheckResult(service, self.attr_name, True, self.critical)
        reason = outcome if isinstance(outcome, str) else "check failed"
        return CheckResult(service, self.attr_name, False, self.critical, reason)

    def get_dependency(self, worker_ctx: WorkerContext) -> Callable[[], CheckResult]:
        """Give the worker the check, to run it on demand."""
        return self.run


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


def readiness(containers: Iterable[Any], starting: Iterable[Any] = ()) -> Readiness:
    """Evaluate readiness of ``containers``; ``starting`` ones are not ready yet."""
    containers, starting = list(containers), list(starting)
    result = Readiness()
    for container in starting:
        result.reasons.append(f"{container.service_name}: starting")
    for container in containers:
        result.reasons.extend(container_reasons(container))
        for dependency in container.dependencies:
            if isinstance(dependency, HealthCheck):
                check = dependency.run()
                result.checks.append(check)
                if check.critical and not check.ok:
                    result.reasons.append(
                        f"{check.service}: critical check {check.name} failed: {check.reason}")
    if not result.reasons and not (containers or starting):
        result.reasons.append("no service running")
    result.ready = not result.reasons
    return result
