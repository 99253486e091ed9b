"""A service with its own health check: degraded when the spool disk fills up."""

import shutil

from nameko_like.health import HealthCheck
from nameko_like.rpc import rpc

#: Where the spooler writes; a test points it elsewhere.
SPOOL_DIR = "/tmp"
#: Below this many free bytes the service reports itself degraded.
MIN_FREE_BYTES = 100_000_000


def spool_has_room():
    free = shutil.disk_usage(SPOOL_DIR).free
    return free >= MIN_FREE_BYTES or f"only {free} bytes free in {SPOOL_DIR}"


class Spooler:
    name = "spooler"
    spool = HealthCheck(spool_has_room)

    @rpc
    def status(self):
        check = self.spool()
        return {"ok": check.ok, "reason": check.reason}
