"""``python die_with_parent.py -m nameko_like ARGS...``: run a module, die with the test.

The alias tests start ``nameko_like run`` and pytest through this, so a test
process killed outright (pytest-timeout, kill -9), which runs no teardown,
leaves nothing behind. The parent's pid comes in ``ALIAS_PARENT_PID``.
"""

import ctypes
import os
import runpy
import signal
import sys

PR_SET_PDEATHSIG = 1


def main() -> None:
    """Ask the kernel for SIGKILL when the parent dies, then run the module."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    parent = os.environ.get("ALIAS_PARENT_PID")
    if parent and os.getppid() != int(parent):
        sys.exit("die_with_parent: the parent process is gone")
    if sys.argv[1:2] != ["-m"] or len(sys.argv) < 3:
        sys.exit("usage: die_with_parent.py -m MODULE [ARGS...]")
    sys.argv = sys.argv[2:]
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
