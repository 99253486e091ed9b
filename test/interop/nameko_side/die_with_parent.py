"""Run a script or module as ``python`` would, but die with the parent process.

    python die_with_parent.py -m nameko run ...
    python die_with_parent.py nk_client.py

The interop tests start Nameko through this, so a test process killed
outright (pytest-timeout, kill -9), which runs no teardown, leaves no Nameko
behind. The parent's pid comes in ``INTEROP_PARENT_PID``: if the parent is
already gone when this starts, it exits at once.
"""

import ctypes
import os
import runpy
import signal
import sys

PR_SET_PDEATHSIG = 1


def main():
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    parent = os.environ.get("INTEROP_PARENT_PID")
    if parent and os.getppid() != int(parent):
        sys.exit("die_with_parent: the parent process is gone")
    args = sys.argv[1:]
    if args[:1] == ["-m"]:
        sys.argv = args[1:]
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = args
        runpy.run_path(args[0], run_name="__main__")


if __name__ == "__main__":
    main()
