"""``nameko_like test``: run pytest with eventlet monkey-patched first."""

from __future__ import annotations

import argparse

NAME = "test"
HELP = "run pytest, monkey-patched as services run"
DESCRIPTION = """\
Run pytest with every argument after `test` passed through unchanged. The
standard library is monkey-patched by eventlet before pytest (or any test
module) is imported, exactly as `nameko_like run` does for services. The exit
status is pytest's.
"""
EPILOG = """\
examples:
  nameko_like test
  nameko_like test -x -k rpc test/unit
  nameko_like test -- --help       (pytest's own help)
"""
MONKEY_PATCH = True
PASS_THROUGH = True


def init_parser(parser: argparse.ArgumentParser) -> None:
    """Document the pass-through arguments (main.py collects them verbatim)."""
    parser.add_argument("pytest_args", nargs=argparse.REMAINDER, metavar="PYTEST_ARGS",
                        help="arguments for pytest")


def main(args: argparse.Namespace) -> int:
    """Run pytest with ``args.passthrough``; return its exit status."""
    import pytest

    return int(pytest.main(args.passthrough))
