"""Mark the measured part of a benchmark for callgrind.

``bench/run.py --callgrind`` runs one side under ``valgrind --tool=callgrind``
and passes its pid in ``BENCH_CALLGRIND_PID`` (``self`` when the measured
process is this one). The client calls :func:`measure_start` after its
warm-up and :func:`measure_stop` after the measured calls: callgrind's
counters are zeroed, then dumped, so the dump holds exactly the instructions
spent on those calls. Without the variable both are no-ops.
"""

from __future__ import annotations

import os
import subprocess


def _control(flag: str) -> None:
    pid = os.environ.get("BENCH_CALLGRIND_PID")
    if not pid:
        return
    target = str(os.getpid()) if pid == "self" else pid
    subprocess.run(["callgrind_control", flag, target], check=True, capture_output=True, timeout=120)


def measure_start() -> None:
    """Zero the callgrind counters of the measured process."""
    _control("-z")


def measure_stop() -> None:
    """Dump the callgrind counters of the measured process."""
    _control("-d")
